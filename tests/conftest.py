"""Fixtures shared by the tiers that use the real engine (tests/integration, tests/e2e).

Without an engine or registry these tiers are skipped on a developer machine, but with CI=true a missing
piece fails the run: scripts/test and .ci/run set everything up first.

The tiers run on two engines, as two legs of scripts/test: REGCACHE_TEST_ENGINE names the one the
environment points at (DOCKER_HOST), and the engine fixture checks that it is that engine.
- docker26-containerd: Debian's dockerd 26 with the containerd image store (the default builder exports);
- docker28-classic: dockerd 28 with the classic store, as on GitHub's hosted runners (regcache makes a
  docker-container builder from REGCACHE_TEST_BUILDKIT_IMAGE, the BuildKit image built here).
A test that only means something on one of them is marked ``only_engine("…")`` and deselected on the other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import action
from harness.registry import LocalRegistry
from tests.support.leftovers import NOTHING, leftovers, new_since

USER, PASSWORD = "ci-bot", "registry-password-7f3a"


def missing(what: str) -> None:
    message = f"{what}; run scripts/setup-engine.sh (as root) and scripts/dev-env.sh first"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


ENGINES = {
    # name: (major version of dockerd, containerd image store)
    "docker26-containerd": ("26", True),
    "docker28-classic": ("28", False),
}
ENGINE = os.environ.get("REGCACHE_TEST_ENGINE", "docker26-containerd")
BUILDKIT_IMAGE = os.environ.get("REGCACHE_TEST_BUILDKIT_IMAGE", "")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "only_engine(name): runs only on that engine (see tests/conftest.py)")
    if ENGINE not in ENGINES:
        raise pytest.UsageError(f"REGCACHE_TEST_ENGINE={ENGINE!r}: accepted: {', '.join(ENGINES)}")


def pytest_collection_modifyitems(config, items) -> None:
    elsewhere = [item for item in items
                 if any(m.args[0] != ENGINE for m in item.iter_markers("only_engine"))]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if item not in elsewhere]


@pytest.fixture(scope="session")
def engine() -> Iterator[str]:
    """The engine this leg runs on, checked: its version and image store are the ones ENGINE names.

    At the end of the session, no builder regcache made may be left in it: any test's run that leaked one
    (a container, a volume, a buildx record) fails the session here, whatever test it was."""
    if shutil.which("docker") is None:
        missing("no docker CLI")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}} {{json .DriverStatus}}"],
                          capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        missing(f"the Docker engine is not reachable: {info.stderr.strip()[-300:]}")
    major, containerd_store = ENGINES[ENGINE]
    if not info.stdout.startswith(f"{major}."):
        missing(f"{ENGINE}: the engine at {os.environ.get('DOCKER_HOST', 'the default socket')} is "
                f"dockerd {info.stdout.split()[0]}")
    if ("io.containerd.snapshotter.v1" in info.stdout) != containerd_store:
        missing(f"{ENGINE}: dockerd runs {'without' if containerd_store else 'with'} the containerd image store")
    if not containerd_store and not BUILDKIT_IMAGE:
        missing(f"{ENGINE}: REGCACHE_TEST_BUILDKIT_IMAGE is not set (scripts/buildkit-image.sh makes one)")
    if shutil.which("docker-registry") is None:
        missing("no docker-registry (Debian package docker-registry)")
    before = leftovers()
    yield ENGINE
    leaked = new_since(before)
    if leaked != NOTHING:
        pytest.fail(f"builders regcache made were left in the engine by this session: {leaked}", pytrace=False)


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
    # Keep the builders and CLI plugins (engine 2's buildx) of the leg's own config visible.
    leg_config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    if (leg_config / "buildx").exists():
        shutil.copytree(leg_config / "buildx", config / "buildx")
    if (leg_config / "cli-plugins").exists():
        (config / "cli-plugins").symlink_to(leg_config / "cli-plugins")
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
