"""Issue 13, part 2: pruning, against the real Distribution registry (deletion enabled) and a stand-in for
GitHub's Packages API (tests/support/packages_api.py: shaped from GitHub's documentation, not GitHub)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import events
from harness.action import SRC, parse_outputs, run_action
from harness.registry import LocalRegistry
from tests.integration.conftest import PASSWORD, USER
from tests.support.packages_api import PackagesStandIn
from tests.support.seed import LAYER, Seeder, key

pytestmark = pytest.mark.integration

DAY = 86400.0


@pytest.fixture
def plain_registry(tmp_path):
    """Pruning talks to the registry only: no engine needed."""
    with LocalRegistry(tmp_path / "registry", username=USER, password=PASSWORD) as reg:
        yield reg


def prune(reg: LocalRegistry, repo: str, tmp_path: Path, *flags: str, token: str = PASSWORD,
          env: dict[str, str] | None = None) -> tuple[int, str, dict[str, str], str]:
    out, summary = tmp_path / f"out-{os.urandom(4).hex()}", tmp_path / "summary.md"
    out.touch()
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    run_env.update({"PYTHONPATH": str(SRC), "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary),
                    "INPUT_GITHUB-TOKEN": token, **(env or {})})
    proc = subprocess.run([sys.executable, "-m", "regcache", "prune", "--cache-image", f"{reg.host}/{repo}",
                           "--registry-username", USER, *flags], env=run_env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout + proc.stderr, parse_outputs(out.read_text()), \
        summary.read_text() if summary.exists() else ""


def test_prune_2000_tags_through_the_registry_api(plain_registry, tmp_path):
    reg, repo, now = plain_registry, "prune/cache", time.time()
    seed = Seeder(reg, repo)
    jobs = ([(key("ci-a", i), now - (20 + i) * DAY, ("linux/amd64",), ()) for i in range(400)]
            + [(key("ci-a", 1000 + i), now - (1 + i / 10) * DAY, ("linux/arm64",), ()) for i in range(100)]
            + [(key("ci-b", i), now - 100 * DAY, ("linux/amd64",), ()) for i in range(480)]
            + [(key("ci-c", i), None, ("linux/amd64",), ()) for i in range(10)]
            + [(key("ci-a", 2000 + i), now - 300 * DAY, ("linux/amd64",), (f"ci-a-linux-amd64-branch-{i}",))
               for i in range(5)]
            + [(key("ci-a", 3000 + i), now - 300 * DAY, ("linux/amd64",), (f"v1.{i}",)) for i in range(5)])
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda job: seed.cache(*job), jobs))
    before = reg.tags(repo)
    assert len(before) == 2000   # 1,000 key tags, 990 records, 5 fallback refs, 5 tags regcache does not write

    code, log, out, summary = prune(reg, repo, tmp_path, "--dry-run", "true")
    assert code == 0, log
    # ci-a amd64: 400, the 3 newest kept; ci-b: 480, 3 kept; ci-a arm64 younger than 14 days; ci-c undated;
    # what a fallback ref or another tag points at: kept. Each deleted cache takes its record along.
    assert out == {"deleted": "0", "would-delete": str(2 * (397 + 477)), "kept": str(1990 - 2 * 874),
                   "freed-bytes": "0"}, log
    assert sorted(reg.tags(repo)) == sorted(before), "a dry run deletes nothing"
    assert f"delete {key('ci-a', 399)}: deleted: written 419.0 days ago" in log
    assert "Dry run" in log and "would delete" in summary

    started = time.monotonic()
    code, log, out, summary = prune(reg, repo, tmp_path)
    took = time.monotonic() - started
    assert code == 0, log
    assert out == {"deleted": "1748", "would-delete": "1748", "kept": "242", "freed-bytes": str(874 * LAYER)}, log
    assert took < 180, f"2,000 tags took {took:.0f}s to prune"
    after = set(reg.tags(repo))
    assert len(after) == 2000 - 1748
    assert {key("ci-a", i) for i in range(3)} | {key("ci-a", 1000 + i) for i in range(100)} <= after
    assert {key("ci-c", i) for i in range(10)} <= after
    assert {f"ci-a-linux-amd64-branch-{i}" for i in range(5)} | {key("ci-a", 2000 + i) for i in range(5)} <= after
    assert {f"v1.{i}" for i in range(5)} <= after
    assert key("ci-a", 3) not in after and sum(t.startswith("ci-b-") for t in after) == 3
    kept = {reg.manifest_digest(repo, t) for t in after if not t.startswith("record-")}
    records = {t.removeprefix("record-").replace("-", ":", 1) for t in after if t.startswith("record-")}
    assert records == kept - {reg.manifest_digest(repo, key("ci-c", i)) for i in range(10)}, \
        "each kept cache keeps its record, and no record outlives its cache"


def test_a_registry_that_refuses_deletion_is_named(tmp_path):
    with LocalRegistry(tmp_path / "nodelete", username=USER, password=PASSWORD, deletion=False) as reg:
        seed = Seeder(reg, "prune/kept")
        for i in range(5):
            seed.cache(key("ci", i), time.time() - 100 * DAY)
        code, log, out, _ = prune(reg, "prune/kept", tmp_path)
        assert code == 0 and out["deleted"] == "0" and out["would-delete"] == "4", log
        assert "this registry does not allow deleting manifests (the Distribution registry: set " \
               "storage.delete.enabled: true)" in log
        assert len(reg.tags("prune/kept")) == 10


def test_prune_through_githubs_packages_api(plain_registry, tmp_path):
    reg, now = plain_registry, time.time()
    seed = Seeder(reg, "rust-lang/ci-cache")
    old = [seed.cache(key("ci", i), now - (30 + i) * DAY) for i in range(150)]
    with PackagesStandIn(reg, owner="rust-lang", kind="users", tokens={"admin-token": "admin", "read-token": "read"}) \
            as api:
        api.created.update({d: now - (30 + i) * DAY for i, d in enumerate(old)})
        env = {"GITHUB_API_URL": api.url}
        flags = ("--packages-api", "github")

        code, log, out, _ = prune(reg, "rust-lang/ci-cache", tmp_path, *flags, token="", env=env)
        assert code == 1 and "HTTP 401" in log, log

        code, log, out, _ = prune(reg, "rust-lang/ci-cache", tmp_path, *flags, token="read-token", env=env)
        assert code == 0 and out["deleted"] == "0" and out["would-delete"] == str(2 * 147), log
        assert out["freed-bytes"] == "0", log
        assert "HTTP 403: the token may not do this" in log and "Manage Actions access" in log

        code, log, out, _ = prune(reg, "rust-lang/ci-cache", tmp_path, *flags, token="admin-token", env=env)
        assert code == 0 and out["deleted"] == str(2 * 147), log
        listed = [c for c in api.calls if c[0] == "GET" and "/versions" in c[1]]
        assert any("page=3" in c[1] for c in listed), "300 versions: three pages of 100"
        assert any(c[1].startswith("/orgs/rust-lang/") and c[2] == 404 for c in api.calls)
        assert sorted(reg.tags("rust-lang/ci-cache")) == sorted(
            [key("ci", i) for i in range(3)] + ["record-" + d.replace(":", "-") for d in old[:3]])

        code, log, _, _ = prune(reg, "rust-lang/no-such-package", tmp_path, *flags, token="admin-token", env=env)
        assert code == 1 and "HTTP 404: no such package" in log, log


def test_after_a_prune_a_pull_request_still_gets_its_fallback_hit(registry, docker_config, tmp_path):
    from tests.integration.test_action_real import FORK_PR, clean_builder
    from tests.integration.test_provenance import inputs_for, slow_workspace

    ws = slow_workspace(tmp_path / "ws", 0)
    clean_builder()
    first = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "prune/real"))
    (ws / "input.txt").write_text("second\n")
    second = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "prune/real"))
    assert first.code == second.code == 0, first.log + second.log
    code, log, out, _ = prune(registry, "prune/real", tmp_path, "--keep-days", "0", "--keep-per-dockerfile", "0")
    assert code == 0 and out["deleted"] == "2", log     # the first key and its record; the fallback ref's kept
    tags = registry.tags("prune/real")
    assert first.outputs["cache-key"] not in tags and second.outputs["cache-key"] in tags

    (ws / "input.txt").write_text("third\n")
    clean_builder()
    pr = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "prune/real"))
    assert pr.code == 0 and pr.outputs["cache-probe"] == "fallback", pr.log
    assert pr.outputs["cache-hit"] == "partial" and "written by auto" in pr.summary, pr.log
