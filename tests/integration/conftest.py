"""Integration tier: the real Docker engine, real BuildKit and real registries on 127.0.0.1.

Without an engine these tests are skipped on a developer machine, but with CI=true a missing engine or
registry fails the run: scripts/test and .ci/run set it all up first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.registry import LocalRegistry

USER, PASSWORD = "ci-bot", "registry-password-7f3a"


def _missing(what: str) -> None:
    message = f"{what}; run scripts/setup-engine.sh (as root) first"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def engine() -> None:
    if shutil.which("docker") is None:
        _missing("no docker CLI")
    info = subprocess.run(["docker", "info", "--format", "{{json .DriverStatus}}"], capture_output=True,
                          text=True, timeout=60)
    if info.returncode != 0:
        _missing(f"the Docker engine is not reachable: {info.stderr.strip()[-300:]}")
    if "io.containerd.snapshotter.v1" not in info.stdout:
        _missing("dockerd runs without the containerd image store")
    if shutil.which("docker-registry") is None:
        _missing("no docker-registry (Debian package docker-registry)")


@pytest.fixture(scope="session")
def registry(engine, tmp_path_factory) -> LocalRegistry:
    """A registry with htpasswd auth, like ghcr.io: writes need a login."""
    with LocalRegistry(tmp_path_factory.mktemp("registry"), username=USER, password=PASSWORD) as reg:
        yield reg


@pytest.fixture
def docker_config(tmp_path, monkeypatch) -> Path:
    """Each test gets its own docker config, so logins are checked per test and root's is untouched."""
    config = tmp_path / "docker-config"
    config.mkdir()
    # Keep the CLI plugins (buildx) and builders visible from the default location.
    home_docker = Path.home() / ".docker"
    if (home_docker / "buildx").exists():
        shutil.copytree(home_docker / "buildx", config / "buildx")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config
