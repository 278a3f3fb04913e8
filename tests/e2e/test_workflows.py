"""The action in workflows run by act: events, inputs, outputs and failures as a repository sees them."""

from __future__ import annotations

import pytest

from harness import events
from tests.e2e.conftest import docker

pytestmark = pytest.mark.e2e

FORK_PR = events.pull_request(head_repo="contributor/rust")


def assert_ok(run) -> None:
    assert run.code == 0, f"act exited {run.code}:\n{run.log[-8000:]}"


def test_auto_push_writes_the_cache_then_a_fork_pr_of_the_same_commit_reads_every_step(e2e):
    repo = e2e.repo("auto-then-pr")
    docker("buildx", "prune", "-af")  # a fresh runner: nothing in the builder's cache

    auto = e2e.act(repo, "push", events.push("automation/bors/auto"), "build.yml", cache_repo="e2e/cache")
    assert_ok(auto)
    assert auto.marker("E2E-CHECKED") == ["auto"], auto.log[-8000:]
    out = auto.outputs
    assert (out["build-kind"], out["cache-read"], out["cache-write"]) == ("auto", "true", "true")
    # Cold for this session's sample; only the busybox base stage may come from another test's build on
    # this shared engine.
    assert out["cache-hit"] in ("none", "partial") and out["result"] == "built"
    assert out["cache-ref"] == f"{e2e.registry.host}/e2e/cache:{out['cache-key']}"
    assert "$ docker login --username ci-bot --password-stdin" in auto.log  # the defaults reached the action
    manifest = e2e.registry.manifest("e2e/cache", out["cache-key"])
    assert manifest is not None, "the auto run did not write the cache"
    digest_before = e2e.registry.manifest_digest("e2e/cache", out["cache-key"])

    # A new runner for the pull request: the image and the builder's local cache are gone.
    docker("rmi", "-f", out["imageid"])
    docker("buildx", "prune", "-af")
    pr = e2e.act(repo, "pull_request", FORK_PR, "build.yml", cache_repo="e2e/cache")
    assert_ok(pr)
    assert pr.marker("E2E-CHECKED") == ["pr"], pr.log[-8000:]
    got = pr.outputs
    assert (got["build-kind"], got["cache-read"], got["cache-write"]) == ("pr", "true", "false")
    assert got["cache-key"] == out["cache-key"]
    assert got["cache-probe"] == "exact"
    assert got["cache-hit"] == "full" and got["cached-steps"] == got["total-steps"], pr.log[-8000:]
    assert "--cache-to" not in pr.log
    assert e2e.registry.manifest_digest("e2e/cache", out["cache-key"]) == digest_before


def test_a_merge_group_event_is_an_auto_build_and_writes_the_cache(e2e):
    repo = e2e.repo("merge-group")
    # A fresh runner: on a long-lived docker driver, the pull request's lazily imported cache above would make
    # this max-mode write to another repository incomplete (ENVIRONMENT 5b), which regcache reports as
    # cache-write: false.
    docker("buildx", "prune", "-af")
    run = e2e.act(repo, "merge_group", events.merge_group(), "build.yml", cache_repo="e2e/mq-cache")
    assert_ok(run)
    assert run.marker("E2E-CHECKED") == ["auto"], run.log[-8000:]
    out = run.outputs
    assert (out["build-kind"], out["cache-write"]) == ("auto", "true")
    assert "merge_group event" in run.log
    assert e2e.registry.manifest("e2e/mq-cache", out["cache-key"]) is not None


def test_workflow_dispatch_follows_other_cache_off(e2e):
    repo = e2e.repo("dispatch")
    run = e2e.act(repo, "workflow_dispatch", events.workflow_dispatch(), "dispatch.yml",
                  cache_repo="e2e/dispatch-cache")
    assert_ok(run)
    assert run.marker("E2E-CHECKED") == ["dispatch"], run.log[-8000:]
    out = run.outputs
    assert (out["build-kind"], out["cache-read"], out["cache-write"]) == ("other", "false", "false")
    assert "--cache-from" not in run.log and "--cache-to" not in run.log
    assert e2e.registry.tags("e2e/dispatch-cache") == []


def test_a_bad_input_fails_the_step_and_a_failure_step_sees_it(e2e):
    repo = e2e.repo("bad-input")
    run = e2e.act(repo, "push", events.push("automation/bors/auto"), "bad-input.yml",
                  cache_repo="e2e/bad-cache")
    assert run.code != 0, run.log[-8000:]
    assert run.marker("E2E-FAILURE-SEEN") == ["failure failure"], run.log[-8000:]
    assert run.marker("E2E-NOT-REACHED") == []
    assert "::error::input 'cache-mode'" in run.log and "fastest" in run.log
    assert "$ docker" not in run.log  # stopped before any docker command
    assert e2e.registry.tags("e2e/bad-cache") == []


def test_the_weekly_prune_workflow_deletes_old_caches_and_keeps_the_newest(e2e):
    """The README's scheduled example (tests/e2e/workflows/prune.yml) with `uses: ./prune`, run by act."""
    import time

    from tests.support.seed import Seeder, key

    seed = Seeder(e2e.registry, "e2e/prune-cache")
    for n in range(5):
        seed.cache(key("ci", n), time.time() - (30 + n) * 86400)
    seed.cache(key("ci", 99), time.time() - 86400)
    repo = e2e.repo("prune")
    run = e2e.act(repo, "workflow_dispatch", events.workflow_dispatch(), "prune.yml", cache_repo="e2e/prune-cache")
    assert_ok(run)
    # 6 keys: the 3 newest kept (among them the 1-day-old one); the 3 oldest go, each with its record.
    assert run.outputs == {"deleted": "6", "would-delete": "6", "kept": "6", "freed-bytes": "3000"}, \
        run.log[-8000:]
    assert sorted(t for t in e2e.registry.tags("e2e/prune-cache") if not t.startswith("record-")) == sorted(
        [key("ci", 99), key("ci", 0), key("ci", 1)])
