"""Probing, fallback refs and reuse of the image built for a key, on the real engine and registry."""

from __future__ import annotations

import subprocess

import pytest

from harness import events
from harness.action import fallback_tag, run_action, sample_workspace
from tests.integration.test_action_real import FORK_PR, clean_builder, inputs_for

pytestmark = pytest.mark.integration


def test_fallback_ref_keeps_every_step_before_a_late_change(registry, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    clean_builder()
    auto = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "fb/cache"))
    assert auto.code == 0, auto.log
    assert auto.outputs["cache-probe"] == "miss"
    moving = fallback_tag("automation-bors-auto")
    # The moving ref is the same manifest, copied in the registry: nothing rebuilt or uploaded.
    assert registry.manifest_digest("fb/cache", moving) == registry.manifest_digest(
        "fb/cache", auto.outputs["cache-key"])

    # A pull request changes the last line of the Dockerfile: a new key, never written.
    dockerfile = ws / "Dockerfile"
    last = 'CMD ["cat", "/app/VERSION"]'
    dockerfile.write_text(dockerfile.read_text().replace(last, f"RUN echo changed > /app/CHANGED\n{last}"))
    clean_builder(auto.outputs["imageid"])
    pr = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "fb/cache"))
    assert pr.code == 0, pr.log
    assert pr.outputs["cache-key"] != auto.outputs["cache-key"]
    assert pr.outputs["cache-probe"] == "fallback"
    assert pr.outputs["cache-hit"] == "partial"
    assert (pr.outputs["cached-steps"], pr.outputs["total-steps"]) == ("7", "8"), pr.log
    assert "#" in pr.stdout and "RUN echo changed" in pr.stdout
    assert "probe: `fallback`" in pr.summary


def test_exact_probe_and_a_loud_miss(registry, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    miss = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "never/written"))
    assert miss.code == 0, miss.log
    assert miss.outputs["cache-probe"] == "miss"
    warning = next(line for line in miss.stdout.splitlines() if line.startswith("::warning::no cache found"))
    assert f"{registry.host}/never/written:{miss.outputs['cache-key']}" in warning
    assert f"{registry.host}/never/written:{fallback_tag('auto')}" in warning
    assert "private" in warning and "cache-image" in warning

    write = run_action(ws, "push", events.push("try"), inputs_for(registry, "exact/cache"))
    assert write.code == 0, write.log
    read = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "exact/cache"))
    assert read.outputs["cache-probe"] == "exact"
    assert "::warning::" not in read.stdout


def test_reuse_pulls_the_image_for_this_key_instead_of_building(registry, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    repo = f"{registry.host}/reuse/app"
    clean_builder()
    first = run_action(ws, "push", events.push("auto"),
                       inputs_for(registry, "reuse/cache", **{"image-repository": repo}))
    assert first.code == 0, first.log
    assert first.outputs["result"] == "built"
    key = first.outputs["cache-key"]
    assert registry.manifest_digest("reuse/app", key) is not None
    cache_digest = registry.manifest_digest("reuse/cache", key)

    subprocess.run(["docker", "rmi", "-f", f"{repo}:{key}", first.outputs["imageid"]], capture_output=True)
    second = run_action(ws, "push", events.push("auto"),
                        inputs_for(registry, "reuse/cache", **{"image-repository": repo,
                                                               "tags": "local/reused:1"}))
    assert second.code == 0, second.log
    assert second.outputs["result"] == "reused"
    assert "docker buildx build" not in second.stdout          # no build started
    assert registry.manifest_digest("reuse/cache", key) == cache_digest   # nor exported again
    inspect = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", "local/reused:1"],
                             capture_output=True, text=True)
    assert inspect.returncode == 0 and inspect.stdout.strip() == second.outputs["imageid"]
    subprocess.run(["docker", "rmi", "-f", "local/reused:1", f"{repo}:{key}"], capture_output=True)

    # reuse-image: false builds even though the image exists.
    third = run_action(ws, "push", events.push("auto"),
                       inputs_for(registry, "reuse/cache", **{"image-repository": repo, "reuse-image": "false"}))
    assert third.outputs["result"] == "built" and "docker buildx build" in third.stdout
