"""The fixes the common registry failures carry (what BuildKit and docker print for them, as captured)."""

import pytest

from regcache import advice

# BuildKit's export error for a push without permission (tests/fixtures/rawjson/export-unauthorized.stderr),
# and what ghcr.io answers a token without packages: write.
UNAUTHORIZED = ("error writing layer blob: unexpected status from HEAD request to "
                "http://localhost:15002/v2/x/cache/blobs/sha256:4f4f: 401 Unauthorized")
GHCR_DENIED = "failed to push ghcr.io/o/r-cache:k: denied: permission_denied: write_package"
REFUSED = "failed to do request: Head \"https://localhost:15003/v2/x/cache/manifests/t\": connection refused"


@pytest.mark.parametrize("error", [UNAUTHORIZED, GHCR_DENIED, "403 Forbidden", "insufficient_scope"])
def test_a_denied_write_to_ghcr_says_which_permission_and_setting(error):
    text = advice.write_denied("ghcr.io", error)
    assert "permissions: packages: write" in text and "Manage Actions access" in text and "fork" in text


def test_a_denied_write_elsewhere_names_the_registry():
    assert "localhost:15002" in advice.write_denied("localhost:15002", UNAUTHORIZED)


def test_other_failures_get_no_advice_they_do_not_need():
    assert advice.write_denied("ghcr.io", REFUSED) == ""
    assert advice.read_denied("ghcr.io", REFUSED) == ""
    assert advice.login_refused("localhost:1", "bot", "connection refused") == ""


def test_a_denied_read_of_ghcr_names_packages_read():
    assert "packages: read" in advice.read_denied("ghcr.io", "401 Unauthorized")


def test_a_refused_login_to_ghcr_says_what_user_and_password_it_takes():
    text = advice.login_refused("ghcr.io", "octocat", "Error response from daemon: denied")
    assert "'octocat'" in text and "github.token" in text and "write:packages" in text
