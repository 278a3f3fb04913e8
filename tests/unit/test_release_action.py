"""scripts/release_action.py: only runs.image changes, byte for byte; bad references and files are refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("release_action", ROOT / "scripts" / "release_action.py")
release_action = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(release_action)

DIGEST = "sha256:" + "0123456789abcdef" * 4
REF = f"ghcr.io/rust-lang/regcache@{DIGEST}"


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.split("\n"), after.split("\n")
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_the_real_action_yml_changes_in_one_line_only():
    text = (ROOT / "action.yml").read_text()
    new = release_action.rewrite_runs_image(text, f"docker://{REF}")
    assert changed_lines(text, new) == [("  image: Dockerfile", f"  image: docker://{REF}")]
    before, after = yaml.safe_load(text), yaml.safe_load(new)
    assert after["runs"] == {"using": "docker", "image": f"docker://{REF}",
                             "post-entrypoint": "/opt/regcache/post", "post-if": "always()"}
    after["runs"]["image"] = "Dockerfile"
    assert after == before


def test_rewriting_back_restores_the_file_exactly():
    text = (ROOT / "action.yml").read_text()
    released = release_action.rewrite_runs_image(text, f"docker://{REF}")
    assert release_action.rewrite_runs_image(released, "Dockerfile") == text


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_comments_quotes_line_endings_and_other_image_keys_are_kept(eol):
    text = eol.join([
        "# image: not this one",
        "name: x",
        "inputs:",
        "  image:",
        "    description: \"an input called image\"",
        "runs:   # the container",
        "  using: 'docker'",
        "  env:",
        "    image: nested-not-this-one",
        "",
        "  image: \"Dockerfile\"   # built on every job",
        "  args: [\"--flag\"]",
        "branding:",
        "  icon: layers",
        "",
    ])
    new = release_action.rewrite_runs_image(text, f"docker://{REF}")
    assert changed_lines(text, new) == [
        (f"  image: \"Dockerfile\"   # built on every job{eol.rstrip(chr(10))}",
         f"  image: docker://{REF}   # built on every job{eol.rstrip(chr(10))}"),
    ]
    assert new.count("\r\n") == text.count("\r\n")
    assert yaml.safe_load(new)["runs"]["image"] == f"docker://{REF}"
    assert yaml.safe_load(new)["runs"]["env"] == {"image": "nested-not-this-one"}


def test_a_file_without_final_newline_keeps_it_that_way():
    text = "name: x\nruns:\n  using: docker\n  image: Dockerfile"
    assert release_action.rewrite_runs_image(text, "docker://a/b@" + DIGEST).endswith(f"image: docker://a/b@{DIGEST}")


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\n", "no top-level 'runs:'"),
    ("runs: {using: docker, image: Dockerfile}\n", "no top-level 'runs:'"),
    ("runs:\n  using: node20\n  main: index.js\n", "runs.using is 'node20'"),
    ("runs:\n  using: docker\n", "runs.image is missing"),
    ("runs:\n  using: docker\n  image: a\n  image: b\n", "more than once"),
    ("runs:\n  using: docker\n  image: |\n    Dockerfile\n", "one-line value"),
    ("runs:\n  using: docker\nimage: Dockerfile\n", "runs.image is missing"),
    ("runs:\n    using: docker\n    image: Dockerfile\n", "no 'using:' key two spaces in"),
])
def test_files_it_cannot_rewrite_are_refused(text, message):
    with pytest.raises(release_action.ReleaseError, match=message):
        release_action.rewrite_runs_image(text, f"docker://{REF}")


@pytest.mark.parametrize("ref", [
    REF,
    f"ghcr.io/rust-lang/regcache:v1.2.3@{DIGEST}",
    f"localhost:5000/e2e/regcache@{DIGEST}",
    f"docker://{REF}",
])
def test_pinned_references_are_accepted(ref):
    assert release_action.check_pinned_ref(ref) == ref.removeprefix("docker://")


@pytest.mark.parametrize("ref", [
    "ghcr.io/rust-lang/regcache",                      # no digest
    "ghcr.io/rust-lang/regcache:v1",                   # a tag is not a pin
    "ghcr.io/Rust-Lang/regcache@" + DIGEST,            # uppercase repository
    "ghcr.io/rust-lang/regcache@sha256:abc",           # short digest
    "ghcr.io/rust-lang/regcache@" + DIGEST.upper().replace("SHA", "sha"),
    "ghcr.io/rust-lang/regcache@sha512:" + "0" * 128,
    "ghcr.io/rust-lang/regcache@" + DIGEST + "\nimage: x",
    "",
])
def test_unpinned_or_malformed_references_are_refused(ref):
    with pytest.raises(release_action.ReleaseError, match="not an image reference pinned by digest"):
        release_action.check_pinned_ref(ref)


@pytest.mark.parametrize("value", ["", " x", "a: b", "x # y", "a\nb", "'q'"])
def test_values_that_are_not_plain_yaml_scalars_are_refused(value):
    with pytest.raises(release_action.ReleaseError, match="plain YAML value"):
        release_action.rewrite_runs_image("runs:\n  using: docker\n  image: Dockerfile\n", value)


def test_main_rewrites_in_place_and_reports(tmp_path, capsys):
    action = tmp_path / "action.yml"
    original = (ROOT / "action.yml").read_bytes()
    action.write_bytes(original)
    assert release_action.main([REF, "--action", str(action)]) == 0
    assert f"runs.image Dockerfile -> docker://{REF}" in capsys.readouterr().out
    new = action.read_bytes()
    assert new == original.replace(b"  image: Dockerfile\n", f"  image: docker://{REF}\n".encode())


def test_main_keeps_crlf_files_crlf(tmp_path):
    action = tmp_path / "action.yml"
    action.write_bytes(b"name: x\r\nruns:\r\n  using: docker\r\n  image: Dockerfile\r\n")
    assert release_action.main([REF, "--action", str(action)]) == 0
    assert action.read_bytes() == f"name: x\r\nruns:\r\n  using: docker\r\n  image: docker://{REF}\r\n".encode()


def test_main_refuses_and_leaves_the_file_alone(tmp_path, capsys):
    action = tmp_path / "action.yml"
    action.write_text("runs:\n  using: docker\n  image: Dockerfile\n")
    assert release_action.main(["ghcr.io/o/r:v1", "--action", str(action)]) == 2
    assert "not an image reference pinned by digest" in capsys.readouterr().err
    assert action.read_text() == "runs:\n  using: docker\n  image: Dockerfile\n"
    assert release_action.main([REF, "--action", str(tmp_path / "missing.yml")]) == 2
