"""Remote BuildKit, for scale-out: regcache with a `remote` buildx builder on another host.

The other host is a real BuildKit daemon (the pinned version, scripts/buildkit-image.sh) alone in a network
namespace, on TCP with mutual TLS (harness/remote_buildkit.py). Its `localhost:PORT` is forwarded to the
tests' registry on the host, so BuildKit and regcache's own registry client name the cache alike.

A remote builder needs only the buildx client; regcache still asks the engine (`docker info`) at start, and
`--load` loads the image into it. The tests mean the same on both legs of scripts/test: engine 1 (buildx 0.13)
and engine 2 (buildx 0.29, classic store, where the docker driver cannot export but a remote builder can).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from harness import events
from harness.action import ActionRun, run_action, sample_workspace, start_action
from harness.images import BUSYBOX_DOCKERFILE, busybox_context
from harness.registry import LocalRegistry
from harness.remote_buildkit import RemoteBuildkit, builder_exists, missing_tools
from tests.conftest import missing
from tests.integration.conftest import PASSWORD, USER

pytestmark = pytest.mark.integration

FORK_PR = events.pull_request(head_repo="contributor/rust")
# The leg's DOCKER_CONFIG before the docker_config fixture replaces it: engine 2's holds its buildx plugin.
CLIENT_CONFIG = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
DEATH_BOUND = 60.0   # from the daemon's death to the end of the run


def client_config(path: Path) -> Path:
    """A clean client's DOCKER_CONFIG: nothing but the leg's CLI plugins, as the docker_config fixture keeps
    them (engine 2's buildx 0.29 is there; without it the CLI would fall back to the system's buildx 0.13)."""
    path.mkdir(exist_ok=True)
    plugins = CLIENT_CONFIG / "cli-plugins"
    if plugins.is_dir() and not (path / "cli-plugins").exists():
        (path / "cli-plugins").symlink_to(plugins)
    return path


def buildx_version(config: Path) -> str:
    out = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, DOCKER_CONFIG=str(config))).stdout.split()
    return out[1] if len(out) > 1 else "?"


@pytest.fixture
def remote_buildkit(registry: LocalRegistry, docker_config: Path):
    """A fresh daemon per test, its namespace forwarding localhost:PORT to the registry; nothing left after."""
    lacking = missing_tools()
    if lacking:
        missing(f"no remote BuildKit possible here, missing: {', '.join(lacking)} (scripts/buildkit-image.sh)")
    bk = RemoteBuildkit(forward_ports=[registry.port])
    bk.start()
    try:
        yield bk
    finally:
        bk.stop()
        left = bk.leftovers() + [f"builder {name} in {config}" for name, config in bk.builders_made
                                 if builder_exists(name, config)]
        assert left == [], left


@pytest.fixture
def loaded_images():
    """Runs whose image was loaded into the engine; removed at the end under either name it may have there.

    With a remote builder, buildx's --iidfile (regcache's `imageid`) holds the image's config digest; the
    containerd image store (engine 1) names the image by its manifest digest (`digest`), the classic store
    (engine 2) by its config digest. tests/conftest.py removes `imageid` only."""
    runs: list[ActionRun] = []
    yield runs
    names = {run.outputs.get(key, "") for run in runs for key in ("imageid", "digest")} - {""}
    present = [name for name in sorted(names) if docker("image", "inspect", name).returncode == 0]
    if present:
        docker("rmi", "-f", *present)


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def inputs_for(reg: LocalRegistry, repo: str, builder: str, **extra: str) -> dict[str, str]:
    return {"cache-image": f"{reg.host}/{repo}", "registry-username": USER, "github-token": PASSWORD,
            "builder": builder, **extra}


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def test_auto_run_reads_and_writes_the_cache_on_a_remote_builder(registry, docker_config, remote_buildkit,
                                                                 loaded_images, tmp_path):
    bk = remote_buildkit
    ws = sample_workspace(tmp_path / "ws")
    builder = bk.create_builder(unique("rcbk-auto"), docker_config)
    repo = unique("remote/auto")
    started = time.monotonic()
    run = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, repo, builder),
                     extra_env=bk.client_env({}))
    took = time.monotonic() - started
    loaded_images.append(run)
    assert run.code == 0, run.log
    out = run.outputs
    assert (out["build-kind"], out["cache-read"], out["cache-write"]) == ("auto", "true", "true"), run.log
    assert out["cache-hit"] == "none" and out["total-steps"] == "7", run.log
    assert f"builder {builder!r} (remote driver) as asked" in run.stdout, run.log
    assert f"--builder {builder}" in run.stdout
    # The export was BuildKit's, from inside the namespace, through the forwarder: the cache is there, whole.
    assert registry.manifest(repo, out["cache-key"]) is not None, f"no cache manifest at {repo}:{out['cache-key']}"
    assert "cache written: 7 layers for 7 RUN/COPY/ADD steps" in run.stdout, run.log
    assert sum(f.connections for f in bk._forwarders) > 0, "BuildKit never reached the registry"
    assert _du_records(bk), "the build did not run on the remote daemon"
    # Not regcache's builder: it is left as it was.
    assert "buildx rm" not in run.stdout
    assert builder_exists(builder, docker_config), "regcache removed a builder it did not create"
    print(f"\nbuildx {buildx_version(docker_config)}, BuildKit started in {bk.started_in:.2f}s, "
          f"cold auto run {took:.1f}s")
    # --load sent the image to the engine (the builder's daemon is elsewhere).
    # On the containerd store the loaded image is named by its manifest digest, not --iidfile's config digest.
    assert docker("image", "inspect", out["imageid"]).returncode == 0, f"imageid names no image: {out}"


def test_two_clean_clients_share_the_registry_cache(registry, docker_config, remote_buildkit, loaded_images,
                                                    tmp_path):
    bk = remote_buildkit
    ws = sample_workspace(tmp_path / "ws")
    repo = unique("remote/shared")

    first_builder = bk.create_builder(unique("rcbk-one"), docker_config)
    first = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, repo, first_builder),
                       extra_env=bk.client_env({}))
    loaded_images.append(first)
    assert first.code == 0, first.log
    assert first.outputs["cache-write"] == "true", first.log
    key = first.outputs["cache-key"]
    digest = registry.manifest_digest(repo, key)
    assert digest

    # The daemon forgets everything: only the registry holds the cache now.
    bk.buildctl("prune", "--all", timeout=120)
    assert _du_records(bk) == [], bk.buildctl("du").stdout

    # Another client: its own DOCKER_CONFIG (no login, no builder record), its own builder, the same daemon.
    second_config = client_config(tmp_path / "second-client")
    second_builder = bk.create_builder(unique("rcbk-two"), second_config)
    env = {**bk.client_env({}), "DOCKER_CONFIG": str(second_config)}
    started = time.monotonic()
    pr = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, repo, second_builder), extra_env=env)
    took = time.monotonic() - started
    loaded_images.append(pr)
    assert pr.code == 0, pr.log
    assert (pr.outputs["build-kind"], pr.outputs["cache-write"]) == ("pr", "false"), pr.log
    assert pr.outputs["cache-key"] == key
    assert pr.outputs["cache-hit"] == "full", pr.log
    assert pr.outputs["cached-steps"] == pr.outputs["total-steps"] == "7", pr.log
    assert "--cache-to" not in pr.stdout
    assert registry.manifest_digest(repo, key) == digest, "a fork pull request moved the cache"
    assert builder_exists(first_builder, docker_config) and builder_exists(second_builder, second_config)
    print(f"\nbuildx {buildx_version(second_config)}, second client's full cache hit in {took:.1f}s")


def _du_records(bk: RemoteBuildkit) -> list[str]:
    """The record lines of `buildctl du` (ID ... lines), without the header and totals."""
    lines = bk.buildctl("du").stdout.splitlines()
    return [line for line in lines if line.strip() and not re.match(r"^(ID|Reclaimable|Total|Shared|Private)\b",
                                                                    line)]


SLOW_DOCKERFILE = BUSYBOX_DOCKERFILE + 'RUN echo "slow-step-{nonce}" && sleep 30 && echo done\n'


def test_a_remote_builder_that_dies_mid_build_fails_clearly_and_fast(registry, docker_config, remote_buildkit,
                                                                    tmp_path):
    bk = remote_buildkit
    ws = tmp_path / "ws"
    busybox_context(ws)
    nonce = os.urandom(6).hex()
    (ws / "Dockerfile").write_text(SLOW_DOCKERFILE.format(nonce=nonce))
    builder = bk.create_builder(unique("rcbk-dies"), docker_config)
    action = start_action(ws, "push", events.push("automation/bors/auto"),
                          inputs_for(registry, unique("remote/dies"), builder), extra_env=bk.client_env({}))
    try:
        assert action.wait_for(rf"^#\d+ slow-step-{nonce}", timeout=120), action.stdout
        bk.kill()
        died = time.monotonic()
        try:
            run = action.finish(timeout=DEATH_BOUND + 30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run still hangs {DEATH_BOUND + 30:.0f}s after the daemon died:\n{action.stdout}")
        took = time.monotonic() - died
    finally:
        action.kill()
    assert took < DEATH_BOUND, f"{took:.0f}s from the daemon's death to the end of the run\n{run.log}"
    assert run.code != 0, run.log
    assert "Traceback" not in run.log, run.log
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert errors, run.log
    print(f"\nbuildx {buildx_version(docker_config)}: the run ended {took:.1f}s after the daemon died, with:\n"
          + "\n".join(errors))
    # What buildx says when the daemon's connection drops: gRPC's Unavailable ("error reading from server: EOF").
    assert re.search(r"Unavailable|error reading from server|connection", errors[-1]), run.log
    # The builder stays (regcache did not make it), logged out of the registry as on every path.
    assert builder_exists(builder, docker_config)
    config = docker_config / "config.json"
    assert PASSWORD not in (config.read_text() if config.exists() else "")
    # It names the builder whose daemon went away, and is not filed against a Dockerfile line.
    assert builder in errors[-1] and "file=" not in errors[-1].split("::", 2)[1], errors[-1]
