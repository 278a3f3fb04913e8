"""The action on the real engine, real BuildKit and a real registry with htpasswd auth."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness import events
from harness.action import run_action, sample_workspace
from harness.images import own_layers
from harness.registry import LocalRegistry, free_port
from tests.integration.conftest import PASSWORD, USER

pytestmark = pytest.mark.integration

FORK_PR = events.pull_request(head_repo="contributor/rust")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=check)


def clean_builder(image_id: str = "") -> None:
    """As on a fresh runner: no image, no local build cache."""
    if image_id:
        docker("rmi", "-f", image_id, check=False)
    docker("buildx", "prune", "-af")


def inputs_for(reg: LocalRegistry, repo: str, **extra: str) -> dict[str, str]:
    return {"cache-image": f"{reg.host}/{repo}", "registry-username": USER, "github-token": PASSWORD, **extra}


def cache_layers(reg: LocalRegistry, repo: str, tag: str) -> set[str]:
    index = reg.manifest(repo, tag)
    assert index is not None, f"no cache manifest at {repo}:{tag}"
    return {m["digest"] for m in index.get("manifests", index.get("layers", []))
            if "layer" in m.get("mediaType", "")}


def image_layers(reg: LocalRegistry, repo: str, tag: str) -> set[str]:
    manifest = reg.manifest(repo, tag)
    if "manifests" in manifest:  # an index: take the platform manifest
        manifest = reg.manifest(repo, manifest["manifests"][0]["digest"])
    return {layer["digest"] for layer in manifest["layers"]}


def credentials_left(docker_config: Path) -> dict:
    config = docker_config / "config.json"
    return json.loads(config.read_text()).get("auths", {}) if config.exists() else {}


def test_auto_writes_max_cache_then_a_fork_pr_reads_every_step(registry, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    own_layers(ws, os.urandom(8).hex())   # no image or record of another test on this engine holds them
    clean_builder()
    image = f"{registry.host}/app/image:1"
    auto = run_action(ws, "push", events.push("automation/bors/auto"),
                      inputs_for(registry, "app/cache", tags=image, push="true"))
    assert auto.code == 0, auto.log
    out = auto.outputs
    assert (out["build-kind"], out["cache-read"], out["cache-write"]) == ("auto", "true", "true"), auto.log
    assert out["cache-ref"] == f"{registry.host}/app/cache:{out['cache-key']}"
    assert out["imageid"].startswith("sha256:")
    assert int(out["total-steps"]) == 7 and out["cache-hit"] == "none"
    assert credentials_left(docker_config) == {}, "the login must not outlive the run"

    # mode=max: the builder stage's layers are in the cache, though the final image does not have them.
    cached = cache_layers(registry, "app/cache", out["cache-key"])
    final = image_layers(registry, "app/image", "1")
    assert final <= cached
    builder_only = cached - final
    assert len(builder_only) >= 3, (cached, final)   # COPY src/, the data RUN, the "compile" RUN
    digest_before = registry.manifest_digest("app/cache", out["cache-key"])

    clean_builder(out["imageid"])
    pr = run_action(ws, "pull_request", FORK_PR,
                    inputs_for(registry, "app/cache", **{"other-cache": "read-write"}))
    assert pr.code == 0, pr.log
    assert (pr.outputs["build-kind"], pr.outputs["cache-write"]) == ("pr", "false")
    assert pr.outputs["cache-key"] == out["cache-key"]
    assert pr.outputs["cache-hit"] == "full", pr.log
    assert pr.outputs["cached-steps"] == pr.outputs["total-steps"] == "7"
    assert "--cache-to" not in pr.stdout
    assert registry.manifest_digest("app/cache", out["cache-key"]) == digest_before
    assert "pull request #42 from a fork" in pr.summary and "7 of 7 steps cached" in pr.summary
    assert credentials_left(docker_config) == {}


def test_a_run_writes_its_timings_as_data_when_asked(registry, docker_config, tmp_path):
    """REGCACHE_TIMINGS (what bench/ reads instead of the log): each log group's seconds, the build's and
    its exports'."""
    ws = sample_workspace(tmp_path / "ws")
    own_layers(ws, os.urandom(8).hex())
    clean_builder()
    timings = tmp_path / "timings.json"
    run = run_action(ws, "push", events.push("try"), inputs_for(registry, "timings/cache"),
                     extra_env={"REGCACHE_TIMINGS": str(timings)})
    assert run.code == 0, run.log
    data = json.loads(timings.read_text())
    names = [phase["name"] for phase in data["phases"]]
    assert names[:2] == ["Build kind and cache plan", "Engine, platform and cache key"], names
    assert "Build" in names and "Publish" in names
    assert all(phase["seconds"] >= 0 for phase in data["phases"])
    build = next(phase["seconds"] for phase in data["phases"] if phase["name"] == "Build")
    assert 0 < data["build_seconds"] <= build
    assert 0 < data["cache_export_seconds"] <= data["cache_transfer_seconds"]
    assert data["cache_export_seconds"] <= data["build_seconds"]
    assert data["image_export_seconds"] is not None


def test_mode_min_keeps_only_the_final_image_layers(registry, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    clean_builder()
    run = run_action(ws, "push", events.push("try"),
                     inputs_for(registry, "min/cache", tags=f"{registry.host}/min/image:1", push="true",
                                **{"cache-mode": "min"}))
    assert run.code == 0, run.log
    cached = cache_layers(registry, "min/cache", run.outputs["cache-key"])
    assert cached <= image_layers(registry, "min/image", "1")


def test_export_denied_warns_and_the_build_goes_on(tmp_path, engine, docker_config):
    """A read-only registry accepts the login and refuses the push: the image is still built."""
    with LocalRegistry(tmp_path / "ro", read_only=True) as ro:
        ws = sample_workspace(tmp_path / "ws")
        clean_builder()
        run = run_action(ws, "push", events.push("auto"),
                         {"cache-image": f"{ro.host}/x/cache", "github-token": "any-token"})
        assert run.code == 0, run.log
        assert run.outputs["cache-write"] == "false"   # what the run did: it tried and was refused
        assert run.outputs["imageid"].startswith("sha256:")
        assert "::warning::the cache could not be written" in run.stdout, run.log
        assert ro.manifest("x/cache", run.outputs["cache-key"]) is None


def test_wrong_token_warns_and_the_build_goes_on(registry, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    run = run_action(ws, "push", events.push("auto"),
                     {**inputs_for(registry, "denied/cache"), "github-token": "wrong-password-123"})
    assert run.code == 0, run.log
    assert "::warning::could not log in" in run.stdout
    assert run.outputs["cache-write"] == "false"
    assert run.outputs["imageid"].startswith("sha256:")
    assert credentials_left(docker_config) == {}


def test_unreachable_registry_warns_and_the_build_goes_on(engine, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    dead = f"localhost:{free_port()}"
    for payload, name in ((events.push("auto"), "push"), (FORK_PR, "pull_request")):
        run = run_action(ws, name, payload, {"cache-image": f"{dead}/x/cache", "github-token": "tok-123456"})
        assert run.code == 0, run.log
        assert "::warning::" in run.stdout
        assert run.outputs["imageid"].startswith("sha256:")


def test_no_token_downgrades_a_write_run_to_read(registry, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    run = run_action(ws, "push", events.push("auto"),
                     {"cache-image": f"{registry.host}/anon/cache", "github-token": ""})
    assert run.code == 0, run.log
    assert run.outputs["cache-write"] == "false"
    assert "::warning::this run may write the cache but has no registry token" in run.stdout


def test_failing_step_fails_with_an_annotation_on_the_dockerfile(engine, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    dockerfile = ws / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('RUN echo "built:', 'RUN exit 3\nRUN echo "built:'))
    line = dockerfile.read_text().splitlines().index("RUN exit 3") + 1
    run = run_action(ws, "push", events.push("main"), {"cache-image": "localhost:1/x/cache"})
    assert run.code == 1
    assert f"::error file=Dockerfile,line={line}::buildx failed with:" in run.stdout, run.log
    assert "exit code: 3" in run.stdout
    assert run.outputs["build-kind"] == "other"


@pytest.mark.parametrize(("name", "value"), [
    ("cache-mode", "maximum"), ("load", "yes"), ("build-args", "NO_EQUALS_SIGN"),
    ("cache-image", "ghcr.io/Owner/Repo"), ("other-cache", "write"),
])
def test_bad_input_fails_before_any_docker_command(tmp_path, name, value):
    # A docker on PATH that records being called: it must never run.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "docker-was-called"
    shim = bin_dir / "docker"
    shim.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    shim.chmod(0o755)
    ws = sample_workspace(tmp_path / "ws")
    import os

    run = run_action(ws, "push", events.push("auto"), {name: value},
                     extra_env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert run.code == 1
    assert f"::error::input '{name}'" in run.stdout
    assert not marker.exists()
    assert run.outputs == {}


@pytest.mark.only_engine("docker26-containerd")   # the default builder is the long-lived one
def test_a_write_that_misses_layers_is_reported_not_claimed(registry, docker_config, tmp_path):
    """A long-lived builder whose local cache came lazily from another ref's import (a pull request read
    it) exports only the final image's layers to a new ref in max mode (BuildKit 0.13 and 0.34 alike).
    regcache reads the cache back, says so, reports cache-write false and does not move the fallback ref."""
    ws = sample_workspace(tmp_path / "ws")
    clean_builder()
    first = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "lazy/one"))
    assert first.code == 0 and first.outputs["cache-write"] == "true", first.log
    assert "layers for 7 RUN/COPY/ADD steps" in first.log
    clean_builder(first.outputs["imageid"])
    pr = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "lazy/one"))
    assert pr.code == 0 and pr.outputs["cache-hit"] == "full", pr.log

    # The same build to a new cache repository: nothing to import there, so BuildKit exports what it has.
    second = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "lazy/two"))
    assert second.code == 0, second.log
    assert second.outputs["cache-write"] == "false", second.log
    assert f"the cache written to {registry.host}/lazy/two:{second.outputs['cache-key']} is incomplete" \
        in second.log
    assert len(registry.tags("lazy/one")) == 3, "the complete write moved its fallback ref and left its record"
    assert registry.tags("lazy/two") == [second.outputs["cache-key"]], \
        "an incomplete cache must not become the branch's fallback ref, nor get a record"
