"""Fixtures shared by the tiers that use the real engine (tests/integration, tests/e2e).

Without an engine or registry these tiers are skipped on a developer machine, but with CI=true a missing
piece fails the run: scripts/test and .ci/run set everything up first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import action
from tests.support.registry import LocalRegistry

USER, PASSWORD = "ci-bot", "registry-password-7f3a"


def missing(what: str) -> None:
    message = f"{what}; run scripts/setup-engine.sh (as root) and scripts/dev-env.sh first"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def engine() -> None:
    if shutil.which("docker") is None:
        missing("no docker CLI")
    info = subprocess.run(["docker", "info", "--format", "{{json .DriverStatus}}"], capture_output=True,
                          text=True, timeout=60)
    if info.returncode != 0:
        missing(f"the Docker engine is not reachable: {info.stderr.strip()[-300:]}")
    if "io.containerd.snapshotter.v1" not in info.stdout:
        missing("dockerd runs without the containerd image store")
    if shutil.which("docker-registry") is None:
        missing("no docker-registry (Debian package docker-registry)")


@pytest.fixture(scope="session")
def registry(engine, tmp_path_factory) -> LocalRegistry:
    """A registry with htpasswd auth, like ghcr.io: writes need a login."""
    with LocalRegistry(tmp_path_factory.mktemp("registry"), username=USER, password=PASSWORD) as reg:
        yield reg
    _remove_images(lambda name: name.startswith(f"{reg.host}/"))


@pytest.fixture
def docker_config(tmp_path, monkeypatch) -> Path:
    """Each test gets its own docker config, so logins are checked per test and root's is untouched."""
    config = tmp_path / "docker-config"
    config.mkdir()
    # Keep the builders visible from the default location.
    home_docker = Path.home() / ".docker"
    if (home_docker / "buildx").exists():
        shutil.copytree(home_docker / "buildx", config / "buildx")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


@pytest.fixture(scope="session", autouse=True)
def _remove_built_images():
    """The engine is the machine's: images the action built in tests do not stay behind."""
    yield
    if action.BUILT_IMAGES and shutil.which("docker"):
        subprocess.run(["docker", "rmi", "-f", *sorted(action.BUILT_IMAGES)], capture_output=True, timeout=300)


def _remove_images(wanted) -> None:
    listing = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                             capture_output=True, text=True, timeout=60)
    names = [name for name in listing.stdout.split() if wanted(name)]
    if names:
        subprocess.run(["docker", "rmi", "-f", *names], capture_output=True, timeout=300)
