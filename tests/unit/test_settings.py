import json
from pathlib import Path

import pytest

from harness import events
from regcache.errors import EventError, InputError
from regcache.main import main
from regcache.settings import load_settings


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def env(ws: Path, **inputs: str) -> dict[str, str]:
    e = events.env_for(ws, "push", events.push("auto"), repository_name="Rust-Lang/Rust")
    e.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
    return e


def test_defaults_match_a_local_run(ws):
    s = load_settings(env(ws))
    assert s.context == ws and s.file == ws / "Dockerfile"
    assert s.cache_image == "ghcr.io/rust-lang/rust-cache"
    assert (s.cache_mode, s.cache_compression, s.cache_version) == ("max", "zstd", "1")
    assert s.try_branches == ("try", "try-perf", "automation/bors/try")
    assert s.auto_branches == ("auto", "automation/bors/auto")
    assert (s.load, s.push, s.fail_on_cache_error) == (True, False, False)
    assert (s.pr_cache, s.other_cache) == ("read", "read")
    assert s.registry_username == "bors"
    assert s.cache_registry == "ghcr.io"


def test_inputs_as_the_runner_passes_them(ws):
    (ws / "ci").mkdir()
    (ws / "ci" / "Dockerfile.x").write_text("FROM scratch\n")
    s = load_settings(env(ws, **{
        "file": "ci/Dockerfile.x", "build-args": "A=1\nB = two=2\n\n", "platforms": "linux/amd64, linux/arm64",
        "tags": "localhost:5000/app:1\nlocalhost:5000/app:2", "cache-image": "localhost:5000/c/cache",
        "load": "False", "push": "TRUE", "try-branches": "  bors/try \n", "github-token": " tok ",
    }))
    assert s.file == ws / "ci" / "Dockerfile.x"
    assert s.build_args == (("A", "1"), ("B", " two=2"))
    assert s.platforms == ("linux/amd64", "linux/arm64")
    assert s.tags == ("localhost:5000/app:1", "localhost:5000/app:2")
    assert (s.load, s.push) == (False, True)
    assert s.try_branches == ("bors/try",)
    assert s.github_token == "tok"
    assert s.cache_registry == "localhost:5000"
    assert "tok" not in repr(s)


BAD = [
    ("cache-mode", "fast", "max | min"),
    ("cache-mode", "MAX", "max | min"),
    ("cache-compression", "lz4", "zstd"),
    ("pr-cache", "write", "read | off"),
    ("other-cache", "rw", "read | read-write | off"),
    ("load", "yes", "true | false"),
    ("push", "1", "true | false"),
    ("fail-on-cache-error", "on", "true | false"),
    ("build-args", "NOEQUALS", "KEY=VALUE"),
    ("build-args", "A=1\nB", "KEY=VALUE"),
    ("build-args", "=value", "KEY=VALUE"),
    ("labels", "just-text", "KEY=VALUE"),
    ("cache-image", "ghcr.io/Owner/Repo-cache", "lowercase"),
    ("cache-image", "ghcr.io/o/r cache", "repository"),
    ("cache-image", "ghcr.io/o/r:tag", "without tag"),
    ("cache-image", "ghcr.io/o/r@sha256:" + "a" * 64, "without tag or digest"),
    ("cache-key", "has space", "at most 128"),
    ("cache-key", "x" * 129, "at most 128"),
    ("cache-version", "1\n2", "one line"),
    ("tags", "app:has space", "image references"),
    ("tags", "UPPER/app", "image references"),
    ("platforms", "amd64", "os/arch"),
    ("buildkit-image", "not an image", "image reference"),
    ("context", "missing-dir", "directory"),
    ("file", "nope/Dockerfile", "Dockerfile path"),
    ("target", "a\nb", "one line"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), BAD)
def test_bad_input_is_an_error_naming_the_input(ws, name, value, accepted):
    with pytest.raises(InputError) as e:
        load_settings(env(ws, **{name: value}))
    assert e.value.name == name
    assert accepted in str(e.value)


@pytest.mark.parametrize(("name", "value", "accepted"), BAD[:6])
def test_main_reports_bad_input_as_error_annotation_exit_1(ws, capsys, name, value, accepted):
    # The unit-test fixture forbids subprocesses: this also proves no docker command ran.
    assert main([], env(ws, **{name: value})) == 1
    out = capsys.readouterr().out
    assert f"::error::input '{name}'" in out
    assert accepted in out


@pytest.mark.parametrize(("content", "match"), [
    (b"{not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe\x00binary", "not valid UTF-8 JSON"),
    (b"[1, 2]", "JSON list"),
    (b"", "not valid"),
])
def test_bad_event_payload(ws, content, match):
    e = env(ws)
    Path(e["GITHUB_EVENT_PATH"]).write_bytes(content)
    with pytest.raises(EventError, match=match):
        load_settings(e)


def test_missing_event_payload(ws):
    e = env(ws)
    e["GITHUB_EVENT_PATH"] = str(ws / "absent.json")
    with pytest.raises(EventError, match="cannot read"):
        load_settings(e)
    del e["GITHUB_EVENT_PATH"]
    with pytest.raises(EventError, match="GITHUB_EVENT_PATH is not set"):
        load_settings(e)


def test_huge_payload_is_refused(ws):
    e = env(ws)
    with open(e["GITHUB_EVENT_PATH"], "w") as f:
        json.dump({"pad": "x" * (26 * 1024 * 1024)}, f)
    with pytest.raises(EventError, match="limit"):
        load_settings(e)


def test_token_is_masked_before_anything_else(ws, capsys):
    assert main([], env(ws, **{"github-token": "s3cret", "cache-mode": "bad"})) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "::add-mask::s3cret"
    assert out.count("s3cret") == 1
