"""The GitHub-hosted runner's path: dockerd 28 with the classic image store, where the docker driver cannot
export cache, so regcache makes a docker-container builder from `buildkit-image` (a real BuildKit, built
here from its Go module by scripts/buildkit-image.sh), builds, writes the max-mode cache and removes it.

Runs on the docker28-classic leg of scripts/test. The rest of the integration tier runs there too: every
run_action there takes this path (probe, fallback refs, reuse, faults, secrets).
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from harness import events
from harness.action import run_action, sample_workspace, start_action
from tests.conftest import BUILDKIT_IMAGE
from tests.integration.test_action_real import FORK_PR, clean_builder, credentials_left, docker, inputs_for
from tests.support.leftovers import NOTHING, leftovers, new_since

pytestmark = [pytest.mark.integration, pytest.mark.only_engine("docker28-classic")]

AUTO = events.push("automation/bors/auto")


@pytest.fixture(autouse=True)
def nothing_left_by_this_test():
    """Each test checks what it left itself (new_since); tests/conftest.py checks the whole session."""
    return leftovers()


def test_the_leftovers_check_sees_a_builder(engine, docker_config, nothing_left_by_this_test):
    """The check below would fail if a builder were left: it sees one that is."""
    name = f"regcache-probe-{uuid.uuid4().hex[:6]}"
    docker("buildx", "create", "--name", name, "--driver", "docker-container", "--driver-opt",
           f"image={BUILDKIT_IMAGE}", "--bootstrap")
    try:
        found = new_since(nothing_left_by_this_test)
        assert name in found["builders"]
        assert f"buildx_buildkit_{name}0" in found["containers"]
        assert f"buildx_buildkit_{name}0_state" in found["volumes"]
    finally:
        docker("buildx", "rm", name, check=False)
    assert new_since(nothing_left_by_this_test) == NOTHING


def test_creates_a_builder_writes_every_layer_removes_it_and_a_clean_runner_reads_it_all(
        registry, docker_config, tmp_path, nothing_left_by_this_test):
    ws = sample_workspace(tmp_path / "ws")
    auto = run_action(ws, "push", AUTO, inputs_for(registry, "hosted/cache"))
    assert auto.code == 0, auto.log
    assert "(docker driver, without the containerd image store) cannot export cache: created " \
           "docker-container builder 'regcache-" in auto.log
    out = auto.outputs
    assert (out["cache-write"], out["cache-hit"], out["total-steps"]) == ("true", "none", "7"), auto.log
    assert "cache written: 7 layers for 7 RUN/COPY/ADD steps" in auto.log
    assert sorted(registry.tags("hosted/cache")) == sorted([
        out["cache-key"], "dockerfile-linux-amd64-automation-bors-auto",
        registry.record_tag("hosted/cache", out["cache-key"])]), "the exact ref, the fallback ref, the record"
    assert new_since(nothing_left_by_this_test) == NOTHING
    assert credentials_left(docker_config) == {}

    # A fresh runner: no image, a new builder with an empty cache.
    clean_builder(out["imageid"])
    pr = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "hosted/cache"))
    assert pr.code == 0, pr.log
    assert (pr.outputs["cache-hit"], pr.outputs["cached-steps"], pr.outputs["cache-write"]) == \
        ("full", "7", "false"), pr.log
    assert pr.outputs["cache-probe"] == "exact"
    assert new_since(nothing_left_by_this_test) == NOTHING


def test_a_failing_dockerfile_leaves_no_builder(engine, docker_config, tmp_path, nothing_left_by_this_test):
    ws = sample_workspace(tmp_path / "ws")
    dockerfile = Path(ws) / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN exit 7\n")
    run = run_action(ws, "push", events.push("main"), {"cache-image": "localhost:1/never/cache"})
    assert run.code == 1, run.log
    assert "created docker-container builder" in run.log and "exit code: 7" in run.log
    assert new_since(nothing_left_by_this_test) == NOTHING


def test_sigterm_mid_build_leaves_no_builder(registry, docker_config, tmp_path, nothing_left_by_this_test):
    ws = sample_workspace(tmp_path / "ws")
    dockerfile = Path(ws) / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo slow-step-started && sleep 120\n")
    action = start_action(ws, "push", AUTO, inputs_for(registry, "hosted/sigterm"))
    try:
        assert action.wait_for("slow-step-started", timeout=120), action.stdout
        action.signal(signal.SIGTERM)
        run = action.finish(timeout=90)
    finally:
        action.kill()
    assert run.code == 143, run.log
    assert new_since(nothing_left_by_this_test) == NOTHING
    assert credentials_left(docker_config) == {}


def test_a_named_docker_container_builder_is_used_as_it_is_and_kept(registry, docker_config, tmp_path):
    name = f"team-builder-{uuid.uuid4().hex[:6]}"
    docker("buildx", "create", "--name", name, "--driver", "docker-container", "--driver-opt",
           f"image={BUILDKIT_IMAGE},network=host", "--bootstrap")
    try:
        ws = sample_workspace(tmp_path / "ws")
        run = run_action(ws, "push", AUTO, inputs_for(registry, "hosted/named", builder=name))
        assert run.code == 0, run.log
        assert f"builder '{name}' (docker-container driver) as asked" in run.log
        assert "created docker-container builder" not in run.log
        assert run.outputs["cache-write"] == "true", run.log
        assert name in docker("buildx", "ls", "--format", "{{.Name}}").stdout.split(), "it must be kept"
        running = docker("ps", "--format", "{{.Names}}").stdout.split()
        assert f"buildx_buildkit_{name}0" in running
    finally:
        docker("buildx", "rm", name, check=False)


def test_a_buildkit_image_that_cannot_be_pulled_gives_an_uncached_build(registry, docker_config, tmp_path,
                                                                       nothing_left_by_this_test):
    ws = sample_workspace(tmp_path / "ws")
    inputs = inputs_for(registry, "hosted/unpullable", **{"buildkit-image": "localhost:1/no/buildkit:1"})
    run = run_action(ws, "push", AUTO, inputs)
    assert run.code == 0, run.log
    assert "::warning" in run.log and "could not be created" in run.log
    assert (run.outputs["cache-write"], run.outputs["result"]) == ("false", "built"), run.log
    assert run.outputs["imageid"].startswith("sha256:")
    assert registry.tags("hosted/unpullable") == []
    assert new_since(nothing_left_by_this_test) == NOTHING


def test_the_engine_really_refuses_cache_export_on_its_docker_driver(registry, docker_config, tmp_path):
    """Why the path above exists: the classic store's docker driver cannot export, as on GitHub."""
    ws = sample_workspace(tmp_path / "ws")
    proc = subprocess.run(["docker", "buildx", "build", "--builder", "default", "--cache-to",
                           f"type=registry,ref={registry.host}/hosted/refused:1,mode=max", str(ws)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Cache export is not supported for the docker driver" in proc.stderr
