import pytest

from regcache.build_kind import BuildKind
from regcache.cache_plan import plan_cache


@pytest.mark.parametrize(("kind", "fork", "pr_cache", "other_cache", "token", "read", "write"), [
    ("try", False, "read", "read", True, True, True),
    ("auto", False, "read", "read", True, True, True),
    ("auto", False, "read", "read", False, True, False),   # no token: downgrade with a warning
    ("pr", False, "read", "read-write", True, True, False),
    ("pr", True, "read", "read-write", True, True, False),
    ("pr", False, "off", "read", True, False, False),
    ("other", False, "read", "read", True, True, False),
    ("other", False, "read", "read-write", True, True, True),
    ("other", False, "read", "off", True, False, False),
    ("other", True, "read", "read-write", True, True, False),  # e.g. workflow_run for a fork's PR
])
def test_plan(kind, fork, pr_cache, other_cache, token, read, write):
    plan = plan_cache(BuildKind(kind, "why", fork=fork), pr_cache=pr_cache, other_cache=other_cache,
                      has_token=token)
    assert (plan.read, plan.write) == (read, write)
    assert plan.reason


def test_write_without_token_warns_and_names_the_input():
    plan = plan_cache(BuildKind("auto", "why"), pr_cache="read", other_cache="read", has_token=False)
    assert "github-token" in plan.warning
