"""The image's post step entrypoint (action.yml post-entrypoint), run as the runner runs it: the image with
that entrypoint, the Docker socket mounted and the STATE_* variables the main step saved. It removes a
builder's leftovers (container and state volume) and the run's docker config, and never fails the job.
"""

from __future__ import annotations

import os
import uuid

import pytest
import yaml

from harness.act import ROOT
from tests.e2e.conftest import docker

pytestmark = pytest.mark.e2e


def test_the_post_entrypoint_removes_a_killed_runs_builder_and_config(e2e):
    entrypoint = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["post-entrypoint"]
    name = f"regcache-e2e-{uuid.uuid4().hex[:6]}"
    container, volume = f"buildx_buildkit_{name}0", f"buildx_buildkit_{name}0_state"
    # What a SIGKILLed run leaves in the engine: the builder's container and its volume.
    docker("volume", "create", volume)
    docker("create", "--name", container, "-v", f"{volume}:/var/lib/buildkit", e2e.image)
    try:
        socket = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
        run = docker("run", "--rm", "--entrypoint", entrypoint, "-v", f"{socket}:/var/run/docker.sock",
                     "-e", f"STATE_builder={name}", "-e", "STATE_docker_config=/tmp/regcache-docker-config-x",
                     "-e", "GITHUB_ACTIONS=true", e2e.image, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "::group::Clean up after the build" in run.stdout
        assert docker("container", "inspect", container, check=False).returncode != 0, run.stdout
        assert docker("volume", "inspect", volume, check=False).returncode != 0, run.stdout
        assert "already gone: the run's docker config" in run.stdout
    finally:
        docker("rm", "-f", container, check=False)
        docker("volume", "rm", "-f", volume, check=False)
