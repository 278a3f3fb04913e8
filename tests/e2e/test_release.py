"""A release as scripts/release_action.py makes it: action.yml names the pushed image by digest, and a
workflow runs that image, pulled from the registry (here the local one, standing in for ghcr.io)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import events
from harness.act import ROOT, build_released_image, release_outputs
from tests.conftest import BUILDKIT_IMAGE, missing
from tests.e2e.conftest import PASSWORD, USER, docker

pytestmark = pytest.mark.e2e


def test_a_released_action_yml_pulls_the_pushed_image_by_digest_and_runs_it(e2e, docker_config, tmp_path):
    if not BUILDKIT_IMAGE:
        missing("REGCACHE_TEST_BUILDKIT_IMAGE is not set: the release build needs a BuildKit image "
                "(scripts/buildkit-image.sh makes one; scripts/test sets the variable)")
    reg = e2e.registry
    docker("login", "--username", USER, "--password-stdin", reg.host, input=PASSWORD)
    pushed = f"{reg.host}/e2e/regcache:release-e2e"
    # Built and pushed as release.yml does it (its builder, compression and media types), so what runs
    # below is the image as released, not the one the other e2e tests load into the engine.
    try:
        build_released_image(pushed, reg.host, BUILDKIT_IMAGE, tmp_path / "release-build.log")
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    digest = reg.manifest_digest("e2e/regcache", "release-e2e")
    assert digest and digest.startswith("sha256:")
    pinned = f"{reg.host}/e2e/regcache@{digest}"
    assert docker("image", "inspect", pinned, check=False).returncode != 0

    action_yml = tmp_path / "action.yml"
    action_yml.write_bytes((ROOT / "action.yml").read_bytes())
    script = subprocess.run([sys.executable, str(ROOT / "scripts" / "release_action.py"), pinned,
                             "--action", str(action_yml)], capture_output=True, text=True, timeout=60)
    assert script.returncode == 0, script.stderr
    before, after = (ROOT / "action.yml").read_text().split("\n"), action_yml.read_text().split("\n")
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ("  image: Dockerfile", f"  image: docker://{pinned}")]

    repo = e2e.repo("release", action_yml=action_yml)
    try:
        # act finds no local image by that name and pulls it, with the login in DOCKER_CONFIG.
        run = e2e.act(repo, "push", events.push("automation/bors/auto"), "build.yml",
                      cache_repo="e2e/release-cache")
        assert run.code == 0, run.log[-8000:]
        assert f"docker pull image={pinned}" in run.log
        assert docker("image", "inspect", pinned, check=False).returncode == 0, "act did not pull the image"
        assert run.marker("E2E-CHECKED") == ["auto"], run.log[-8000:]
        assert run.outputs["build-kind"] == "auto"
        assert reg.manifest("e2e/release-cache", run.outputs["cache-key"]) is not None
        layers = (reg.image_manifest("e2e/regcache", digest) or {}).get("layers", [])
        compression = "zstd" if "compression=zstd" in release_outputs() else "gzip"
        assert layers and all(layer["mediaType"].endswith(f"+{compression}") for layer in layers), layers
    finally:
        docker("rmi", pinned, check=False)

