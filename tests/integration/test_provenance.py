"""Issue 13, part 1: the record a write run leaves beside its cache, and what a read run makes of it.

Real BuildKit, the real Distribution registry; the times compared are measured here, side by side.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness import events
from harness.action import run_action
from harness.images import BUSYBOX_DOCKERFILE, busybox_context
from harness.registry import LocalRegistry
from tests.integration.conftest import PASSWORD, USER
from tests.integration.test_action_real import FORK_PR, clean_builder

pytestmark = pytest.mark.integration

SLOW = 8  # seconds of the one slow step: what the cache saves, well above the noise of a build


def slow_workspace(dest: Path, slow: int = 2) -> Path:
    """busybox, then a slow step and a quick one after it, each with bytes of its own (no other test's cache
    holds them)."""
    dest.mkdir(parents=True)
    busybox_context(dest)
    salt = os.urandom(8).hex()
    (dest / "input.txt").write_text(f"{salt}\n")
    (dest / "Dockerfile").write_text(BUSYBOX_DOCKERFILE + f"RUN sleep {slow} && echo {salt} > /slow\n"
                                     "COPY input.txt /input.txt\nRUN cat /input.txt /slow > /both\n")
    return dest


def inputs_for(reg: LocalRegistry, repo: str, **extra: str) -> dict[str, str]:
    return {"cache-image": f"{reg.host}/{repo}", "registry-username": USER, "github-token": PASSWORD, **extra}


def timed(fn, *args):
    started = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - started


def record_of(reg: LocalRegistry, repo: str, tag: str) -> dict:
    digest = reg.manifest_digest(repo, tag)
    assert digest, f"no {repo}:{tag}"
    manifest = reg.manifest(repo, "record-" + digest.replace(":", "-"))
    assert manifest is not None, f"no record beside {repo}:{tag} ({reg.tags(repo)})"
    assert manifest["artifactType"] == "application/vnd.regcache.record.v1+json"
    assert manifest["subject"]["digest"] == digest
    return json.loads(manifest["annotations"]["dev.regcache.record"])


def test_a_read_run_says_who_wrote_the_cache_and_what_it_saved(registry, docker_config, tmp_path):
    ws = slow_workspace(tmp_path / "ws", SLOW)
    clean_builder()
    auto = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "prov/cache"),
                      {"GITHUB_SHA": "1234567890abcdef1234567890abcdef12345678", "GITHUB_RUN_ID": "77",
                       "GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "rust-lang/rust"})
    assert auto.code == 0 and auto.outputs["cache-write"] == "true", auto.log
    key = auto.outputs["cache-key"]
    record = record_of(registry, "prov/cache", key)
    assert (record["kind"], record["branch"], record["commit"]) == (
        "auto", "automation/bors/auto", "1234567890abcdef1234567890abcdef12345678")
    assert record["run_url"] == "https://github.example/rust-lang/rust/actions/runs/77"
    assert record["platforms"] == ["linux/amd64"] and record["cache_key"] == key
    slow = [s for s in record["steps"] if "sleep" in s["name"]]
    assert len(slow) == 1 and SLOW <= slow[0]["seconds"] < SLOW + 5, record["steps"]
    # The fallback ref is a copy of the same manifest: it finds the same record.
    assert record_of(registry, "prov/cache", "dockerfile-linux-amd64-automation-bors-auto") == record

    # The same pull request, cold (its cache reading off) and warm, each on a clean builder: what the
    # cache saved, measured here, against what the warm run says it saved.
    clean_builder()
    cold, cold_took = timed(run_action, ws, "pull_request", FORK_PR, inputs_for(registry, "prov/cache", **{
        "pr-cache": "off"}))
    assert cold.code == 0 and cold.outputs["cache-hit"] == "none", cold.log
    assert cold.outputs["time-saved"] == cold.outputs["cache-age"] == ""
    clean_builder(cold.outputs["imageid"])
    warm, warm_took = timed(run_action, ws, "pull_request", FORK_PR, inputs_for(registry, "prov/cache"))
    assert warm.code == 0 and warm.outputs["cache-hit"] == "full", warm.log
    measured = cold_took - warm_took
    saved = float(warm.outputs["time-saved"])
    assert abs(saved - measured) <= 0.2 * measured, (saved, measured, warm.log)
    assert 0 <= int(warm.outputs["cache-age"]) < 600
    assert "written by auto on 'automation/bors/auto'" in warm.summary and " ago from 1234567890ab" in warm.summary
    assert f"saved about {saved:.1f}s" in warm.summary
    assert "https://github.example/rust-lang/rust/actions/runs/77" in warm.stdout
    assert "got less from the cache" not in warm.log


def test_a_fallback_read_finds_the_record_of_the_cache_it_reads(registry, docker_config, tmp_path):
    ws = slow_workspace(tmp_path / "ws")
    clean_builder()
    auto = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "prov/fb"))
    assert auto.code == 0, auto.log

    # A new key (another input.txt) on a clean builder: the exact ref misses, the branch's fallback ref has
    # the slow step. The steps after the changed COPY run again, as a new key means: said, not warned.
    (ws / "input.txt").write_text("changed\n")
    clean_builder()
    pr = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "prov/fb"))
    assert pr.code == 0 and pr.outputs["cache-probe"] == "fallback", pr.log
    assert pr.outputs["cache-hit"] == "partial", pr.log
    assert "written by auto on 'automation/bors/auto'" in pr.summary
    assert "2 of the steps in that cache were built again (first: " in pr.stdout, pr.log
    assert "::warning::" not in pr.stdout, pr.log


def test_a_changed_base_image_is_named_as_the_likely_cause(registry, docker_config, tmp_path):
    """The exact key (the base image's tag has not changed) but nothing from the cache: the record's FROM
    step and this run's resolve the same tag to different digests."""
    base = f"{registry.host}/prov/base:1"

    def push_base(salt: str) -> None:
        ctx = tmp_path / f"base-{salt}"
        ctx.mkdir()
        busybox_context(ctx)
        (ctx / "Dockerfile").write_text(f"{BUSYBOX_DOCKERFILE}RUN echo {salt} > /salt\n")
        pushed = run_action(ctx, "push", events.push("main"), inputs_for(
            registry, "prov/base-cache", tags=base, push="true", **{"other-cache": "off"}))
        assert pushed.code == 0, pushed.log

    push_base(os.urandom(8).hex())
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Dockerfile").write_text(f"FROM {base}\nRUN echo {os.urandom(8).hex()} > /app\nRUN cat /salt /app\n")
    clean_builder()
    auto = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "prov/based"))
    assert auto.code == 0 and auto.outputs["cache-write"] == "true", auto.log

    push_base(os.urandom(8).hex())   # the same tag, another image
    clean_builder()
    pr = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "prov/based"))
    assert pr.code == 0 and pr.outputs["cache-probe"] == "exact", pr.log
    assert pr.outputs["cache-hit"] == "none", pr.log
    assert "this run got less from the cache than its record promises (none of its steps" in pr.stdout
    assert f"Likely cause: the base image {base} changed (sha256:" in pr.stdout, pr.log


def test_a_cache_without_a_record_says_so_and_the_build_goes_on(registry, docker_config, tmp_path):
    ws = slow_workspace(tmp_path / "ws")
    clean_builder()
    auto = run_action(ws, "push", events.push("automation/bors/auto"), inputs_for(registry, "prov/old"))
    assert auto.code == 0, auto.log
    digest = registry.manifest_digest("prov/old", auto.outputs["cache-key"])
    record = registry.manifest_digest("prov/old", "record-" + digest.replace(":", "-"))
    registry.delete_manifest("prov/old", record)   # as a cache written before records were kept

    clean_builder()
    pr = run_action(ws, "pull_request", FORK_PR, inputs_for(registry, "prov/old"))
    assert pr.code == 0 and pr.outputs["cache-hit"] == "full", pr.log
    assert "has no record" in pr.stdout
    assert pr.outputs["time-saved"] == "" and "written by" not in pr.summary
