"""No credential outlives the step, even a killed one: the run logs in with a docker config of its own, and
the post step (action.yml post-entrypoint, post-if: always()) removes it and any builder the run made.

A SIGKILL (a runner hitting timeout-minutes) skips every `finally` and signal handler of the main step: the
test kills the whole process group mid-build, then runs the post step as the runner would, with the STATE_*
variables the main step saved.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from harness import events
from harness.action import run_action, run_post, sample_workspace, start_action
from tests.conftest import ENGINE
from tests.integration.test_action_real import credentials_left, inputs_for
from tests.support.leftovers import NOTHING, leftovers, new_since

pytestmark = pytest.mark.integration

AUTO = events.push("automation/bors/auto")
CREATES_A_BUILDER = ENGINE == "docker28-classic"


def auths(config_dir: Path) -> dict:
    path = config_dir / "config.json"
    return json.loads(path.read_text()).get("auths", {}) if path.exists() else {}


def test_sigkill_mid_build_then_the_post_step_leaves_no_credential_and_no_builder(registry, docker_config,
                                                                                   tmp_path):
    before = leftovers()
    ws = sample_workspace(tmp_path / "ws")
    dockerfile = ws / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo slow-step-started && sleep 120\n")
    action = start_action(ws, "push", AUTO, inputs_for(registry, "post/killed"))
    try:
        assert action.wait_for("slow-step-started", timeout=180), action.stdout
        state = action.saved_state()
        private = Path(state["docker_config"])
        # Logged in, with the credential in the run's own config and never in the user's.
        assert registry.host in auths(private), state
        assert credentials_left(docker_config) == {}
        if CREATES_A_BUILDER:
            assert new_since(before) != NOTHING
        action.signal(signal.SIGKILL, group=True)
        killed = action.finish(timeout=60)
    finally:
        action.kill()
    assert killed.code == -signal.SIGKILL
    assert private.exists(), "the kill skipped the main step's cleanup: the post step's job"
    assert killed.state["builder"].startswith("regcache-")

    post = run_post(ws, killed)
    assert post.code == 0, post.log
    assert "Traceback" not in post.log
    assert not private.exists(), post.log
    assert new_since(before) == NOTHING, post.log
    assert credentials_left(docker_config) == {}


def test_after_a_normal_run_the_post_step_finds_nothing_left(registry, docker_config, tmp_path):
    before = leftovers()
    ws = sample_workspace(tmp_path / "ws")
    run = run_action(ws, "push", AUTO, inputs_for(registry, "post/normal"))
    assert run.code == 0, run.log
    private = Path(run.state["docker_config"])
    assert not private.exists(), "the main step removes its own config on a normal exit"
    post = run_post(ws, run)
    assert post.code == 0, post.log
    assert "already gone" in post.stdout, post.log
    assert new_since(before) == NOTHING


def test_the_users_docker_config_keeps_its_builders_but_never_gets_the_credential(registry, docker_config,
                                                                                   tmp_path):
    """A builder defined in the user's config is still usable by name; the login goes elsewhere."""
    (docker_config / "config.json").write_text(json.dumps({"auths": {"other.example": {"auth": "c2VjcmV0"}},
                                                           "detachKeys": "ctrl-e,e"}))
    ws = sample_workspace(tmp_path / "ws")
    action = start_action(ws, "push", AUTO, inputs_for(registry, "post/userconfig"))
    try:
        assert action.wait_for(r"^\$ docker buildx build", timeout=180), action.stdout
        private = Path(action.saved_state()["docker_config"])
        copied = json.loads((private / "config.json").read_text())
        assert copied.get("detachKeys") == "ctrl-e,e" and "other.example" not in json.dumps(copied)
        run = action.finish(timeout=300)
    finally:
        action.kill()
    assert run.code == 0, run.log
    assert set(credentials_left(docker_config)) == {"other.example"}, "the user's own login is untouched"
