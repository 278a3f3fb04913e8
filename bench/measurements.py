"""The measurements (see bench/README.md for each): per sample, the cold and warm builds, the action
against bare buildx, reuse against docker pull, the cache settings; the action's start; a source compared."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import plan  # noqa: F401  (puts harness/ and src/ on the path)
from action_runs import STEP_LINE_RE, Bench, Timed
from machine import run, timed, tree_hash
from plan import AUTO_PUSH, DEFAULT_VARIANT, MIDDLE_CHANGE, ROOT, VARIANTS
from results import fmt_range, fmt_s, stats


class Record:
    """Raw per-run samples: data[sample][name][run index] = value (a run that failed leaves a gap)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, dict[int, Any]]] = {}
        self.run = 0
        self.logs: dict[str, dict[str, dict[int, list[str]]]] = {}
        self.phases: list[list[tuple[str, float]]] = []
        self.first_docker: dict[str, list[float]] = {}
        self.foreign: list[dict[str, Any]] = []
        self.busy_runs: dict[str, dict[str, int]] = {}   # sample -> measurement -> runs with foreign activity

    def add(self, sample: str, name: str, value: Any) -> None:
        self.data.setdefault(sample, {}).setdefault(name, {})[self.run] = value

    def action(self, sample: str, name: str, t: Timed) -> Timed:
        self.add(sample, name, t.seconds)
        # The steps and their times, for looking into a surprising number afterwards.
        steps = [line for _, line in t.lines if STEP_LINE_RE.match(line)]
        self.logs.setdefault(sample, {}).setdefault(name, {})[self.run] = steps
        if t.first_docker is not None:
            self.first_docker.setdefault(sample, []).append(t.first_docker)
        self.busy(sample, name, t.foreign)
        return t

    def busy(self, sample: str, name: str, foreign: list[str]) -> None:
        """Note that other developers were building or testing while this measurement ran."""
        if foreign:
            self.foreign.append({"sample": sample, "measurement": name, "processes": foreign})
            self.busy_runs.setdefault(sample, {}).setdefault(name, 0)
            self.busy_runs[sample][name] += 1


def rotate(items: Sequence[Any], by: int) -> list[Any]:
    items = list(items)
    by %= len(items) or 1
    return items[by:] + items[:by]


def measure_sample(b: Bench, rec: Record, sample: str, i: int, image_ready: dict[str, bool]) -> None:
    variants = rotate(VARIANTS, i) if sample in MIDDLE_CHANGE else [DEFAULT_VARIANT]
    image_repo = f"bench/{sample}-image"
    for variant in variants:
        mode, compression = VARIANTS[variant]

        def cold_inputs(attempt: int, variant: str = variant, mode: str = mode,
                        compression: str = compression) -> dict[str, str]:
            # A repeated cold build writes to a repository of its own: nothing of the disturbed one is read.
            repo = f"bench/{sample}-r{i}-{variant}" + (f"-again{attempt}" if attempt > 1 else "")
            return b.inputs(repo, **{"cache-mode": mode, "cache-compression": compression})

        # 1 (and 4): cold build, writing the cache.
        b.clean()
        multi_stage = sample in MIDDLE_CHANGE
        cold = rec.action(sample, f"cold:{variant}", b.action(
            sample, AUTO_PUSH, cold_inputs, f"cold build ({variant}, writes the cache)",
            {"cache-write": "true", "cache-probe": "miss", "result": "built"},
            check=b.intermediates_missing if mode == "max" and multi_stage else None))
        key, repo = cold.outputs["cache-key"], cold.cache_repo
        rec.add(sample, f"export:{variant}", cold.export_s)
        rec.add(sample, f"image_export:{variant}", cold.image_export_s)
        rec.add(sample, f"size:{variant}", b.cache_size(repo, key))

        if variant == DEFAULT_VARIANT:
            if not image_ready.get(sample):
                # Once: the image for this key, pushed for the reuse measurements (builder still warm).
                b.action(sample, AUTO_PUSH, b.inputs(repo, **{"image-repository": f"{b.reg.host}/{image_repo}"}),
                         "set-up: push the image for this key", {"result": "built"})
                image_ready[sample] = True
            measure_warm(b, rec, sample, i, repo, key, f"{b.reg.host}/{image_repo}")

        if sample in MIDDLE_CHANGE:
            # 4: a change in the middle of the multi-stage build, rebuilt by a pull request from the
            # fallback ref the cold run wrote.
            path = b.workspace(sample) / MIDDLE_CHANGE[sample]
            original = path.read_text()
            path.write_text(original + f"# bench: a change in the middle ({variant}, run {i + 1})\n")
            try:
                b.clean()
                after = rec.action(sample, f"after_change:{variant}", b.action(
                    sample, ("pull_request", ""), b.inputs(repo), f"warm rebuild after a change in "
                    f"{MIDDLE_CHANGE[sample]} ({variant})", {"cache-probe": "fallback", "cache-hit": "partial"}))
                rec.add(sample, f"after_change_cached:{variant}", int(after.outputs.get("cached-steps") or 0))
                rec.add(sample, f"after_change_total:{variant}", int(after.outputs.get("total-steps") or 0))
            finally:
                path.write_text(original)


def measure_warm(b: Bench, rec: Record, sample: str, i: int, repo: str, key: str, image_repo: str) -> None:
    # 1 and 2: the action's warm rebuild from the registry cache vs the same buildx command run bare.
    own = f"{b.reg.host}/{repo}:"

    def action_warm() -> None:
        t = rec.action(sample, "warm", b.action(sample, ("pull_request", ""), b.inputs(repo),
                                                "warm rebuild (pull request, reads the cache)",
                                                {"cache-hit": "full", "cache-probe": "exact"}))
        b.buildx_argv[sample] = (own, t.buildx_argv())
        rec.add(sample, "warm_buildx_span", t.buildx_span)

    def bare_warm() -> None:
        # The action's own command line (from this run, or an earlier one with this run's cache repo).
        if sample not in b.buildx_argv:
            b.clean()
            learned = b.action(sample, ("pull_request", ""), b.inputs(repo), "learn the buildx command line")
            b.buildx_argv[sample] = (own, learned.buildx_argv())
            b.clean()
        learned_for, argv = b.buildx_argv[sample]
        bare(sample, "bare_warm", lambda: b.bare_build(sample, [a.replace(learned_for, own) for a in argv], rec))

    def bare(sample: str, name: str, fn: Callable[[], float]) -> None:
        started = time.monotonic()
        rec.add(sample, name, fn())
        rec.busy(sample, name, b.monitor.during(started, time.monotonic()))

    order = [action_warm, bare_warm]
    for step in rotate(order, i):
        b.clean()
        step()

    # 3: a write run whose key did not change: reuse the image, rebuild from the cache, or a bare pull.
    image_ref = f"{image_repo}:{key}"

    def reuse() -> None:
        rec.action(sample, "reuse", b.action(
            sample, AUTO_PUSH, b.inputs(repo, **{"image-repository": image_repo}),
            "unchanged key, write run with reuse (pulls the image)", {"result": "reused"}))

    def rebuild() -> None:
        rec.action(sample, "rebuild", b.action(
            sample, AUTO_PUSH, b.inputs(repo), "unchanged key, write run without reuse (build from cache, export)",
            {"result": "built", "cache-hit": "full", "cache-write": "true"}))

    def pull() -> None:
        bare(sample, "pull", lambda: b.bare_pull(image_ref))

    for step in rotate([reuse, rebuild, pull], i):
        b.clean(image_ref)
        step()

    # 5: the whole action with nothing to do: a write run whose image exists and is already here.
    if not b._image_id(image_ref):
        b.bare_pull(image_ref)
    noop = rec.action(sample, "noop", b.action(
        sample, AUTO_PUSH, b.inputs(repo, **{"image-repository": image_repo}),
        "nothing to do (image for the key already here)", {"result": "reused"}, clean_to_retry=False))
    rec.phases.append(noop.phases())
    bare(sample, "pull_present", lambda: b.bare_pull(image_ref))
    b.made_images.add(image_ref)


def measure_start(rec: Record, runs: int, src: Path) -> dict[str, Any]:
    """Python's own part of the start: the interpreter, the imports, and python-on-whales."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    py = sys.executable

    def wall(argv: list[str]) -> float:
        return timed(argv, env=env, check=False)[0]

    for _ in range(2):   # compile the bytecode first: the action image ships it compiled too
        wall([py, "-m", "regcache", "--version"])
    result: dict[str, Any] = {
        "python -c pass": stats([wall([py, "-c", "pass"]) for _ in range(runs * 2)]),
        "python -m regcache --version": stats([wall([py, "-m", "regcache", "--version"]) for _ in range(runs * 2)]),
        "docker info --format": stats([wall(["docker", "info", "--format", "{{json .DriverStatus}}"])
                                       for _ in range(runs * 2)]),
        "docker buildx inspect": stats([wall(["docker", "buildx", "inspect"]) for _ in range(runs * 2)]),
    }
    imports: dict[str, list[float]] = {}
    for _ in range(runs):
        for module in ("regcache.main", "python_on_whales", "requests", "actions_toolkit.command"):
            text = run([py, "-X", "importtime", "-c", f"import {module}"], env=env).stderr
            total = 0.0
            for line in text.splitlines():
                parts = line.split("|")
                if len(parts) == 3 and parts[2].strip() == module:
                    total = int(parts[1]) / 1e6
            imports.setdefault(module, []).append(total)
    result["imports"] = {k: stats(v) for k, v in imports.items()}
    return result


def compare_sources(b: Bench, sample: str, other: Path, runs: int) -> tuple[dict[str, Any], str]:
    """The action's fixed cost from src/ and from `other`, interleaved: warm rebuilds and 'nothing to do'."""
    trees = {"src": ROOT / "src", "other": other}
    repo, image_repo = f"bench/{sample}-compare", f"{b.reg.host}/bench/{sample}-compare-image"
    b.clean()
    key = b.action(sample, AUTO_PUSH, b.inputs(repo, **{"image-repository": image_repo}),
                   "set-up: cold build, cache and image for the key", {"result": "built"}).outputs["cache-key"]
    image_ref = f"{image_repo}:{key}"
    data: dict[str, list[float]] = {}
    phases: dict[str, dict[str, list[float]]] = {}
    argv: list[str] = []
    for i in range(runs):
        for label in rotate(list(trees) + ["bare"], i):
            b.clean(image_ref)
            if label == "bare":
                if argv:
                    data.setdefault("warm:bare", []).append(b.bare_build(sample, argv))
                continue
            t = b.action(sample, ("pull_request", ""), b.inputs(repo), f"warm rebuild ({label})",
                         {"cache-hit": "full"}, src=trees[label])
            argv = argv or t.buildx_argv()
            data.setdefault(f"warm:{label}", []).append(t.seconds)
            data.setdefault(f"first docker:{label}", []).append(t.first_docker or 0.0)
        if not b._image_id(image_ref):
            b.bare_pull(image_ref)
        for label in rotate(list(trees), i):
            t = b.action(sample, AUTO_PUSH, b.inputs(repo, **{"image-repository": image_repo}),
                         f"nothing to do ({label})", {"result": "reused"}, src=trees[label])
            data.setdefault(f"noop:{label}", []).append(t.seconds)
            data.setdefault(f"first docker:{label}", []).append(t.first_docker or 0.0)
            for name, seconds in t.phases():
                phases.setdefault(label, {}).setdefault(name, []).append(seconds)
    b.made_images.add(image_ref)
    diffs = {f"{what}: other-src, s": stats([o - s_ for s_, o in zip(data[f"{what}:src"], data[f"{what}:other"],
                                                                    strict=False)])
             for what in ("warm", "noop", "first docker")}
    result = {"sample": sample, "other": str(other), "other_sha256": tree_hash(other),
              "src_sha256": tree_hash(ROOT / "src"), "measurements": {k: stats(v) for k, v in data.items()},
              "differences": diffs,
              "phases": {label: {k: stats(v) for k, v in ph.items()} for label, ph in phases.items()}}
    row = "  {:<44} {:>9} {:>13}"
    out = [f"the action from src/ vs from {other} ({sample}, {runs} interleaved runs; median, min-max)"]
    for name, st in result["measurements"].items():
        out.append(row.format(name, fmt_s(st), fmt_range(st)))
    for name, st in diffs.items():
        out.append(row.format(name, fmt_s(st, "+s"), fmt_range(st)))
    for label, ph in result["phases"].items():
        items = sorted(ph.items(), key=lambda kv: -(kv[1]["median"] or 0))
        out.append(f"  nothing to do, phases ({label}): " + ", ".join(f"{k} {v['median']:.3f}" for k, v in items))
    return result, "\n".join(out) + "\n"


# -- the report ---------------------------------------------------------------------------------------------
