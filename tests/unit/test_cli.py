from regcache.cli import apply_flags
from regcache.inputs import env_name


def test_flags_become_the_inputs_a_workflow_would_pass():
    env = apply_flags(["--cache-image", "localhost:5000/c", "--build-args", "A=1", "--build-args", "B=2",
                       "--auto-branches", "main", "--event-name", "push", "--ref", "refs/heads/main"], {"X": "1"})
    assert env[env_name("cache-image")] == "localhost:5000/c"
    assert env[env_name("build-args")] == "A=1\nB=2"
    assert env[env_name("auto-branches")] == "main"
    assert (env["GITHUB_EVENT_NAME"], env["GITHUB_REF"], env["X"]) == ("push", "refs/heads/main", "1")
    assert env_name("load") not in env  # an unset flag leaves the action.yml default to settings


def test_token_comes_from_stdin_never_argv(monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("tok-from-stdin\n"))
    env = apply_flags(["--github-token-stdin"], {})
    assert env[env_name("github-token")] == "tok-from-stdin"
