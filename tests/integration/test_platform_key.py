"""The key and the fallback refs name the platforms built for; a reused image must be for the run's platform.

A Dockerfile without RUN builds for any platform on any engine (nothing executes), so another architecture
is built here for real, without emulation.
"""

from __future__ import annotations

import pytest

from harness import events
from harness.action import run_action
from harness.images import busybox_context
from tests.integration.test_action_real import clean_builder, docker, inputs_for

pytestmark = pytest.mark.integration

AUTO = events.push("automation/bors/auto")
NO_RUN = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY data.txt /data.txt\n"


def workspace(tmp_path, name: str = "ws"):
    clean_builder()   # complete max-mode writes need a builder without others' records (ENVIRONMENT 5b)
    ws = tmp_path / name
    busybox_context(ws)
    (ws / "Dockerfile").write_text(NO_RUN)
    (ws / "data.txt").write_text("platform key\n")
    return ws


def native() -> str:
    out = docker("info", "--format", "{{.OSType}}/{{.Architecture}}").stdout.strip()
    return out.replace("x86_64", "amd64").replace("aarch64", "arm64")


def test_empty_platforms_and_the_native_one_share_a_key_another_platform_does_not(registry, docker_config,
                                                                                    tmp_path):
    ws = workspace(tmp_path)
    here = native()
    other = "linux/arm64" if here != "linux/arm64" else "linux/amd64"
    empty = run_action(ws, "push", AUTO, inputs_for(registry, "plat/cache"))
    named = run_action(ws, "push", AUTO, inputs_for(registry, "plat/cache", platforms=here))
    foreign = run_action(ws, "push", AUTO, inputs_for(registry, "plat/cache", platforms=other))
    for run in (empty, named, foreign):
        assert run.code == 0 and run.outputs["cache-write"] == "true", run.log
    assert f"platforms: {here} (the builder's native platform)" in empty.log
    assert empty.outputs["cache-key"] == named.outputs["cache-key"]
    assert foreign.outputs["cache-key"] != empty.outputs["cache-key"]
    # Each platform moves a fallback ref of its own: an arm64 write never takes the one amd64 runs read.
    tags = set(registry.tags("plat/cache"))
    slug = lambda p: p.replace("/", "-")   # noqa: E731
    assert {t for t in tags if t.endswith("-automation-bors-auto")} == {
        f"dockerfile-{slug(here)}-automation-bors-auto", f"dockerfile-{slug(other)}-automation-bors-auto"}


def test_a_reused_image_of_another_platform_is_not_taken(registry, docker_config, tmp_path):
    ws = workspace(tmp_path)
    here = native()
    other = "linux/arm64" if here != "linux/arm64" else "linux/amd64"
    repo = f"{registry.host}/plat/images"
    first = run_action(ws, "push", AUTO, inputs_for(registry, "plat/reuse", **{"image-repository": repo}))
    assert first.code == 0 and first.outputs["result"] == "built", first.log
    key = first.outputs["cache-key"]
    # Someone pushes an image of another platform under this platform's key.
    foreign = run_action(ws, "push", AUTO, inputs_for(registry, "plat/reuse-foreign", platforms=other,
                                                      tags=f"{repo}:{key}", push="true", load="false"))
    assert foreign.code == 0, foreign.log
    again = run_action(ws, "push", AUTO, inputs_for(registry, "plat/reuse", **{"image-repository": repo}))
    assert again.code == 0, again.log
    # Not taken: the pull for this platform finds none (or the image pulled is another platform's).
    assert again.outputs["result"] == "built", again.log
    assert f"::warning::could not reuse {repo}:{key}" in again.log or f"is for {other}, not for {here}" in again.log
    platform = docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", again.outputs["imageid"])
    assert platform.stdout.strip() == here
