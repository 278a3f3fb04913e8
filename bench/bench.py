"""regcache benchmark (GitHub issue 6): what the registry cache and the action itself cost and save.

Runs the action the way the runner does (``python -m regcache`` with INPUT_*/GITHUB_* variables, through
harness/action.py) against a real registry on 127.0.0.1 (harness/registry.py, htpasswd auth
like ghcr.io) and the engine's default builder, on the Dockerfiles under bench/samples/. Each measurement
is repeated --runs times; compared measurements are taken side by side in the same run (their order
alternating from run to run), and ratios are computed per run, then their median is reported.
See bench/README.md for what each line means. Run it through bench/run.

Note: every measurement starts from a clean builder: `docker rmi` of the images it made and
`docker buildx prune -af`, which empties this engine's whole build cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from harness import events  # noqa: E402
from harness.action import ActionRun, start_action  # noqa: E402
from harness.registry import LocalRegistry  # noqa: E402
from regcache.progress import BuildProgress  # noqa: E402
from regcache.rawjson import RawJsonStream  # noqa: E402

SAMPLES_DIR = ROOT / "bench" / "samples"
RESULTS_DIR = ROOT / "bench" / "results"
USER, PASSWORD = "bench-bot", "bench-registry-password-5c1e9a"   # long: the action masks it in its log
SAMPLES = ("compute", "rustci")
# Cache settings compared in measurement 4, one factor at a time against the action's default (max, zstd).
VARIANTS = {"max-zstd": ("max", "zstd"), "max-gzip": ("max", "gzip"), "min-zstd": ("min", "zstd")}
DEFAULT_VARIANT = "max-zstd"
# The file a "change in the middle" edits: read by the `check` stage, after `build`, before the final stage.
MIDDLE_CHANGE = {"compute": "check.sh"}
AUTO_PUSH = ("push", "automation/bors/auto")
TARGETS = {
    "warm_over_cold": 0.05,          # compute: warm rebuild <= 0.05 x cold build
    "action_over_bare": 1.10,        # action warm <= 1.10 x bare buildx, or within ...
    "action_minus_bare_s": 1.0,      # ... 1 s, whichever is larger
    "reuse_over_pull": 1.20,         # unchanged-key write with reuse <= 1.2 x bare docker pull
    "first_docker_s": 0.30,          # process start to first docker command
}
ACTION_TIMEOUT = 900.0
RETRIES = 2   # a measurement disturbed by others' builds or tests is repeated at most this many times


# -- small helpers ------------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], *, env: dict[str, str] | None = None, stdin: str | None = None,
        check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, env=env,  # noqa: S603
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return proc


def timed(argv: Sequence[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = run(argv, **kw)
    return time.monotonic() - started, proc


def stats(values: Sequence[float] | dict[int, float]) -> dict[str, Any]:
    if isinstance(values, dict):
        values = [values[k] for k in sorted(values)]
    values = [v for v in values if v is not None]
    if not values:
        return {"samples": [], "median": None, "min": None, "max": None}
    return {"samples": [round(v, 4) for v in values], "median": round(statistics.median(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def rotate(items: Sequence[Any], by: int) -> list[Any]:
    items = list(items)
    by %= len(items) or 1
    return items[by:] + items[:by]


# -- other developers' activity -------------------------------------------------------------------------

def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen


def foreign_activity() -> list[str]:
    """Command lines of builds and test runs on this machine that this benchmark did not start."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if not args:
            continue
        name = os.path.basename(args[0])
        building = any(a == "buildx" and b == "build" for a, b in zip(args, args[1:], strict=False)) or (
            name == "docker" and len(args) > 1 and args[1] == "build")
        testing = any(os.path.basename(a) in ("pytest", "py.test") for a in args[:3]) or "pytest" in args[1:3]
        if (building or testing) and me not in _ancestors(int(entry.name)):
            found.append(f"{entry.name} {' '.join(args)[:160]}")
    return found


def wait_for_quiet(limit: float, interval: float = 15.0) -> dict[str, Any]:
    """Wait (at most `limit` seconds) until no other build or test run is going on."""
    started = time.monotonic()
    seen: list[str] = []
    while True:
        busy = foreign_activity()
        seen += [b for b in busy if b not in seen]
        waited = time.monotonic() - started
        if not busy:
            return {"quiet": True, "waited_s": round(waited, 1), "seen": seen}
        if waited >= limit:
            log(f"still busy after {waited:.0f}s, measuring anyway: {busy}")
            return {"quiet": False, "waited_s": round(waited, 1), "seen": seen, "busy_at_start": busy}
        log(f"waiting for other developers' builds/tests to finish ({waited:.0f}s of {limit:.0f}s): "
            f"{'; '.join(busy)[:300]}")
        time.sleep(interval)


class ActivityMonitor:
    """Polls in the background, so each measurement can say whether someone else was building meanwhile."""

    def __init__(self, interval: float = 2.0):
        self.interval, self.samples = interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), foreign_activity()))
            self._stop.wait(self.interval)

    def __enter__(self) -> ActivityMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def during(self, start: float, end: float) -> list[str]:
        seen: list[str] = []
        for t, busy in list(self.samples):
            if start - self.interval <= t <= end + self.interval:
                seen += [b for b in busy if b not in seen]
        return seen


# -- the machine ------------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    def out(argv: Sequence[str]) -> str:
        try:
            return run(argv, check=False, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    pretty = re.search(r'PRETTY_NAME="([^"]*)"', os_release)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu.group(1).strip() if cpu else "",
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": pretty.group(1) if pretty else "",
        "docker": out(["docker", "version", "--format", "{{.Server.Version}}"]),
        "docker_client": out(["docker", "version", "--format", "{{.Client.Version}}"]),
        "buildx": out(["docker", "buildx", "version"]),
        "storage": out(["docker", "info", "--format", "{{json .DriverStatus}}"]),
        "builder": out(["docker", "buildx", "inspect"]).splitlines()[:3],
        "python": platform.python_version(),
        "registry": out(["docker-registry", "--version"]),
        "git_commit": out(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
        "git_dirty": bool(out(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])),
    }


def tree_hash(src: Path) -> str:
    """The source the action ran from (the working tree may differ from the commit)."""
    digest = hashlib.sha256()
    for path in sorted((src / "regcache").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# -- one action run ---------------------------------------------------------------------------------------

_EXPORT_RE = re.compile(r"^#\d+ exporting cache to \S+\s+([\d.]+)s$")
_IMAGE_RE = re.compile(r"^#\d+ exporting to image\s+([\d.]+)s$")
_STEP_RE = re.compile(r"^#\d+ (\[|exporting|importing).*  (CACHED|[\d.]+s|ERROR.*)$")
_BUILD_RE = re.compile(r"steps cached \(cache-hit: \w+\) in ([\d.]+)s$")


@dataclass
class Timed:
    """One action run: wall time from spawning the process to its exit, and what its log says."""

    seconds: float
    first_docker: float | None
    outputs: dict[str, str]
    lines: list[tuple[float, str]]
    result: ActionRun
    foreign: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def cache_repo(self) -> str:
        return self.inputs["cache-image"].split("/", 1)[1]

    @property
    def buildx_span(self) -> float | None:
        """From echoing `docker buildx build` to the action's summary line after it: the build as the action
        sees it, with its reading of the progress."""
        start = next((t for t, line in self.lines if line.startswith("$ docker buildx build ")), None)
        end = next((t for t, line in self.lines if _BUILD_RE.search(line)), None)
        return end - start if start is not None and end is not None else None

    def _match(self, regex: re.Pattern[str]) -> float | None:
        for _, line in self.lines:
            m = regex.search(line)
            if m:
                return float(m.group(1))
        return None

    @property
    def export_s(self) -> float | None:
        return self._match(_EXPORT_RE)

    @property
    def image_export_s(self) -> float | None:
        return self._match(_IMAGE_RE)

    @property
    def build_s(self) -> float | None:
        return self._match(_BUILD_RE)

    def buildx_argv(self) -> list[str]:
        for _, line in self.lines:
            if line.startswith("$ docker buildx build "):
                return shlex.split(line[2:])
        raise RuntimeError("the action ran no docker buildx build")

    def phases(self) -> list[tuple[str, float]]:
        """Where the time went: each `$ docker` command (until the next log line), the Python in between
        (named after the log group it is in), and the end (the last line until the process exited)."""
        out: list[tuple[str, float]] = [("python start, imports, settings, cache key", self.first_docker or 0.0)]
        group = ""
        ends = [t for t, _ in self.lines[1:]] + [self.seconds]
        for (t, line), t_next in zip(self.lines, ends, strict=True):
            if line.startswith("::group::"):
                group = line.removeprefix("::group::").lower()
            if self.first_docker is None or t < self.first_docker:
                continue
            if line.startswith("$ docker "):
                words = [w for w in line.split()[1:] if not w.startswith("-")]
                name = " ".join(words[:3] if words[1:2] in (["buildx"], ["image"]) else words[:2])
            elif line.startswith("::endgroup::"):
                name = f"python: after {group}"
            else:
                name = f"python: {group}"
            if t_next == self.seconds:
                name += " + exit"
            out.append((name, t_next - t))
        merged: dict[str, float] = {}
        for name, seconds in out:
            merged[name] = merged.get(name, 0.0) + seconds
        return list(merged.items())


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, registry: LocalRegistry, monitor: ActivityMonitor):
        self.args, self.tmp, self.reg, self.monitor = args, tmp, registry, monitor
        self.anomalies: list[str] = []
        self.anomaly_logs: list[dict[str, Any]] = []
        self.retries: list[dict[str, Any]] = []
        self.made_images: set[str] = set()
        self.buildx_argv: dict[str, tuple[str, list[str]]] = {}   # sample -> (cache repo prefix, argv)
        self.protected = {self._image_id("debian:trixie-slim")} - {""}
        # The action logs in and out on every run: its own docker config. Bare commands keep a login.
        self.action_config = self._docker_config("docker-action")
        self.bare_config = self._docker_config("docker-bare")
        self.bare_env = {**os.environ, "DOCKER_CONFIG": str(self.bare_config)}
        run(["docker", "login", "--username", USER, "--password-stdin", self.reg.host], env=self.bare_env,
            stdin=PASSWORD)

    def anomaly(self, message: str, t: Timed | None = None) -> None:
        self.anomalies.append(message)
        if t is not None:
            keep = [line for _, line in t.lines if line.startswith(("$ ", "::warning", "::error", "#"))
                    or "cache" in line]
            self.anomaly_logs.append({"anomaly": message, "log": keep[-60:]})
        log(f"ANOMALY: {message}")

    def _docker_config(self, name: str) -> Path:
        config = self.tmp / name
        config.mkdir()
        home_buildx = Path.home() / ".docker" / "buildx"
        if home_buildx.exists():
            shutil.copytree(home_buildx, config / "buildx")
        return config

    def _image_id(self, ref: str) -> str:
        return run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False).stdout.strip()

    def workspace(self, sample: str) -> Path:
        ws = self.tmp / f"ws-{sample}"
        if not ws.exists():
            shutil.copytree(SAMPLES_DIR / sample, ws)
        return ws

    def inputs(self, repo: str, **extra: str) -> dict[str, str]:
        return {"cache-image": f"{self.reg.host}/{repo}", "registry-username": USER, "github-token": PASSWORD,
                **extra}

    # -- the builder ----------------------------------------------------------------------------------
    def clean(self, *refs: str) -> None:
        """Remove the images this benchmark made and empty the builder's cache: the next build starts clean."""
        for ref in [*refs, *sorted(self.made_images)]:
            if ref and ref not in self.protected:
                run(["docker", "rmi", "-f", ref], check=False)
        self.made_images.clear()
        run(["docker", "buildx", "prune", "-af"], timeout=600)

    # -- runs -----------------------------------------------------------------------------------------
    def action(self, sample: str, event: tuple[str, str], inputs: dict[str, str] | Callable[[int], dict[str, str]],
               what: str, expect: dict[str, str] | None = None, src: Path | None = None, *,
               check: Callable[[Timed], list[str]] | None = None, clean_to_retry: bool = True) -> Timed:
        """One action run, checked: its outputs must be `expect`, it must not warn, and `check` must pass.

        A run that fails those checks while someone else was building or testing (whose `docker buildx
        prune` can pull results from under a running build) is repeated, up to RETRIES times; `inputs` can
        be a function of the attempt (1, 2, ...), e.g. to write a cold build's cache afresh.
        """
        for attempt in range(1, RETRIES + 2):
            attempt_inputs = inputs(attempt) if callable(inputs) else inputs
            t, problems = self._action_once(sample, event, attempt_inputs, what, expect, src)
            problems += check(t) if check and t.result.code == 0 else []
            if not problems:
                return t
            if t.foreign and attempt <= RETRIES:
                self.retries.append({"sample": sample, "measurement": what, "problems": problems,
                                     "others": t.foreign})
                log(f"{sample}: {what}: disturbed by others' builds or tests ({'; '.join(problems)[:200]}): "
                    f"again after they finish")
                wait_for_quiet(min(self.args.wait, 300.0) if self.args.wait else 0.0)
                if clean_to_retry:
                    self.clean()
                continue
            busy = f" (others were building or testing meanwhile: {len(t.foreign)} processes)" if t.foreign else ""
            for problem in problems:
                self.anomaly(f"{sample}: {what}: {problem}{busy}", t)
            if t.result.code != 0:
                raise RuntimeError(f"{sample}: {what}: the action failed ({t.result.code}):\n"
                                   f"{t.result.stdout[-3000:]}\n{t.result.stderr[-2000:]}")
            return t
        raise AssertionError("unreachable")

    def _action_once(self, sample: str, event: tuple[str, str], inputs: dict[str, str], what: str,
                     expect: dict[str, str] | None, src: Path | None) -> tuple[Timed, list[str]]:
        ws = self.workspace(sample)
        payload = (events.push(event[1]) if event[0] == "push"
                   else events.pull_request(head_repo="contributor/rust"))
        started = time.monotonic()
        extra_env = {"PYTHONUNBUFFERED": "1", "DOCKER_CONFIG": str(self.action_config)}
        if src or self.args.src:
            extra_env["PYTHONPATH"] = str(src or self.args.src)
        running = start_action(ws, event[0], payload, inputs, extra_env=extra_env)
        try:
            running.proc.wait(timeout=ACTION_TIMEOUT)
            seconds = time.monotonic() - running.started
            result = running.finish(timeout=60)
        finally:
            running.kill()
        lines = list(running.lines)
        first = next((t for t, line in lines if line.startswith("$ docker")), None)
        timed_run = Timed(seconds, first, result.outputs, lines, result,
                          self.monitor.during(started, time.monotonic()), inputs)
        if result.outputs.get("imageid"):
            self.made_images.add(result.outputs["imageid"])
        problems = [f"the action failed with exit code {result.code}"] if result.code != 0 else []
        # None of the benchmark's runs should warn.
        problems += [line.split("::", 2)[-1][:300] for _, line in lines if line.startswith("::warning")]
        problems += [f"{key}={result.outputs.get(key)!r}, expected {want!r}" for key, want in (expect or {}).items()
                     if result.outputs.get(key) != want]
        log(f"{sample}: {what}: {seconds:.1f}s (first docker command at {first or 0:.3f}s"
            f"{', export ' + str(timed_run.export_s) + 's' if timed_run.export_s is not None else ''})"
            f"{' PROBLEMS: ' + '; '.join(problems)[:300] if problems else ''}")
        return timed_run, problems

    def bare_build(self, sample: str, argv: list[str], rec: Record | None = None) -> float:
        """The action's own buildx command line, run directly (already logged in)."""
        out = self.tmp / f"bare-{os.urandom(3).hex()}"
        out.mkdir()
        argv = list(argv)
        for flag, path in (("--metadata-file", out / "metadata.json"), ("--iidfile", out / "iid")):
            argv[argv.index(flag) + 1] = str(path)
        seconds, proc = timed(argv, env=self.bare_env, timeout=ACTION_TIMEOUT)
        if (out / "iid").exists():
            self.made_images.add((out / "iid").read_text().strip())
        # What reading this progress costs the action (it reads it line by line as it comes).
        parse_started = time.monotonic()
        stream, progress = RawJsonStream(), BuildProgress()
        for line in proc.stderr.splitlines(keepends=True):
            for event in stream.feed(line):
                progress.update(event)
        for event in stream.close():
            progress.update(event)
        if rec is not None:
            rec.add(sample, "rawjson_parse_s", time.monotonic() - parse_started)
            rec.add(sample, "rawjson_bytes", len(proc.stderr))
        if progress.cache_hit() != "full":
            self.anomaly(f"{sample}: bare buildx warm rebuild: cache-hit {progress.cache_hit()}")
        log(f"{sample}: bare docker buildx build (warm): {seconds:.1f}s")
        return seconds

    def bare_pull(self, ref: str) -> float:
        seconds, _ = timed(["docker", "pull", "--quiet", ref], env=self.bare_env, timeout=ACTION_TIMEOUT)
        log(f"bare docker pull {ref}: {seconds:.2f}s")
        return seconds

    def intermediates_missing(self, t: Timed) -> list[str]:
        """A mode=max cache must hold layers the final image does not have (the intermediate stages')."""
        manifest = self.reg.manifest(t.cache_repo, t.outputs.get("cache-key", ""))
        if manifest is None:
            return ["no cache manifest in the registry"]
        cached = {d.get("annotations", {}).get("containerd.io/uncompressed") for d in manifest.get("manifests", [])
                  if "layer" in d.get("mediaType", "")} - {None}
        inspect = run(["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", t.outputs["imageid"]],
                      check=False)
        final = set(json.loads(inspect.stdout or "[]")) if inspect.returncode == 0 else set()
        if final and not cached - final:
            return ["the mode=max cache holds only the final image's layers: the intermediate stages are missing"]
        return []

    def cache_size(self, repo: str, tag: str) -> int | None:
        manifest = self.reg.manifest(repo, tag)
        if manifest is None:
            return None
        blobs = manifest.get("manifests", []) + manifest.get("layers", [])
        if "config" in manifest:
            blobs.append(manifest["config"])
        return sum(int(b.get("size", 0)) for b in blobs)


# -- the measurements ---------------------------------------------------------------------------------------

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
        steps = [line for _, line in t.lines if _STEP_RE.match(line)]
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
        out.append(row.format(name, _s(st), _range(st)))
    for name, st in diffs.items():
        out.append(row.format(name, _s(st, "+s"), _range(st)))
    for label, ph in result["phases"].items():
        items = sorted(ph.items(), key=lambda kv: -(kv[1]["median"] or 0))
        out.append(f"  nothing to do, phases ({label}): " + ", ".join(f"{k} {v['median']:.3f}" for k, v in items))
    return result, "\n".join(out) + "\n"


# -- the report ---------------------------------------------------------------------------------------------

def summarise(rec: Record, start: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    samples: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    anomalies: list[str] = []

    def pair(a: dict[int, Any], b: dict[int, Any], fn: Callable[[float, float], float]) -> dict[str, Any]:
        """fn(a, b) for each run that has both, measured side by side."""
        return stats([fn(a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] and b[k] is not None])

    def med(values: dict[int, Any]) -> float:
        return stats(values)["median"]

    for sample, d in rec.data.items():
        s: dict[str, Any] = {"measurements": {k: stats(v) for k, v in d.items()}, "ratios": {}, "variants": {},
                             "busy_runs": rec.busy_runs.get(sample, {})}
        cold = d.get(f"cold:{DEFAULT_VARIANT}", {})
        r = s["ratios"]
        r["warm/cold"] = pair(cold, d.get("warm", {}), lambda c, w: w / c)
        r["action/bare (warm)"] = pair(d.get("bare_warm", {}), d.get("warm", {}), lambda b_, a: a / b_)
        r["action-bare (warm), s"] = pair(d.get("bare_warm", {}), d.get("warm", {}), lambda b_, a: a - b_)
        r["reuse/pull"] = pair(d.get("pull", {}), d.get("reuse", {}), lambda p, u: u / p)
        r["reuse-pull, s"] = pair(d.get("pull", {}), d.get("reuse", {}), lambda p, u: u - p)
        r["reuse/rebuild"] = pair(d.get("rebuild", {}), d.get("reuse", {}), lambda b_, u: u / b_)
        r["noop-pull_present, s"] = pair(d.get("pull_present", {}), d.get("noop", {}), lambda p, n: n - p)
        for variant in VARIANTS:
            if f"cold:{variant}" not in d:
                continue
            v = {k: stats(d.get(f"{k}:{variant}", {})) for k in ("cold", "export", "image_export", "size",
                                                                  "after_change", "after_change_cached",
                                                                  "after_change_total")}
            if variant != DEFAULT_VARIANT:
                for k in ("cold", "export", "size", "after_change"):
                    v[f"{k} vs {DEFAULT_VARIANT}"] = pair(d.get(f"{k}:{DEFAULT_VARIANT}", {}),
                                                          d.get(f"{k}:{variant}", {}), lambda base, x: x / base)
            s["variants"][variant] = v
        # A mode=max cache holds the intermediate stages too: one no bigger than mode=min lost them (someone
        # else's `docker buildx prune` during the build removes finished intermediate results before export).
        sizes_max, sizes_min = d.get(f"size:{DEFAULT_VARIANT}", {}), d.get("size:min-zstd", {})
        for run_no in sorted(sizes_max.keys() & sizes_min.keys()):
            mx, mn = sizes_max[run_no], sizes_min[run_no]
            if mx and mn and mx <= 1.1 * mn:
                anomalies.append(f"{sample}: run {run_no + 1}: the mode=max cache ({mx / 1e6:.0f} MB) is no bigger "
                                 f"than mode=min ({mn / 1e6:.0f} MB): its intermediate layers are missing")
        samples[sample] = s

        if sample == "compute" and r["warm/cold"]["median"] is not None:
            m = r["warm/cold"]["median"]
            targets.append({"name": "compute: warm rebuild <= 0.05 x cold build", "value": m,
                            "limit": TARGETS["warm_over_cold"], "met": m <= TARGETS["warm_over_cold"],
                            "detail": f"warm {med(d['warm']):.2f}s / cold {med(cold):.1f}s"})
        if r["action/bare (warm)"]["median"] is not None:
            ratio, diff = r["action/bare (warm)"]["median"], r["action-bare (warm), s"]["median"]
            met = ratio <= TARGETS["action_over_bare"] or diff <= TARGETS["action_minus_bare_s"]
            targets.append({"name": f"{sample}: action warm <= 1.10 x bare buildx, or within 1 s", "value": ratio,
                            "limit": TARGETS["action_over_bare"], "met": met,
                            "detail": f"action {med(d['warm']):.2f}s vs bare {med(d['bare_warm']):.2f}s, "
                                      f"difference {diff:+.2f}s"})
        if r["reuse/pull"]["median"] is not None:
            m = r["reuse/pull"]["median"]
            targets.append({"name": f"{sample}: unchanged-key write with reuse <= 1.2 x docker pull", "value": m,
                            "limit": TARGETS["reuse_over_pull"], "met": m <= TARGETS["reuse_over_pull"],
                            "detail": f"reuse {med(d['reuse']):.2f}s vs pull {med(d['pull']):.2f}s, "
                                      f"difference {r['reuse-pull, s']['median']:+.2f}s"})
    every_first = [x for values in rec.first_docker.values() for x in values]
    if every_first:
        m = statistics.median(every_first)
        targets.append({"name": "action start: process start to first docker command <= 0.3 s", "value": m,
                        "limit": TARGETS["first_docker_s"], "met": m <= TARGETS["first_docker_s"],
                        "detail": f"median of {len(every_first)} action runs, max {max(every_first):.2f}s"})
    start["first_docker"] = {k: stats(v) for k, v in rec.first_docker.items()}
    start["first_docker_all"] = stats(every_first)
    phases: dict[str, list[float]] = {}
    for run_phases in rec.phases:
        for name, seconds in run_phases:
            phases.setdefault(name, []).append(seconds)
    start["noop_phases"] = {k: stats(v) for k, v in phases.items()}
    return samples, targets, anomalies


def _s(st: dict[str, Any] | None, unit: str = "s") -> str:
    if not st or st.get("median") is None:
        return "-"
    m = st["median"]
    if unit == "MB":
        return f"{m / 1e6:.0f} MB"
    if unit == "x":
        return f"{m:.3f}"
    if unit == "+s":
        return f"{m:+.2f} s"
    return f"{m:.2f} s" if m < 10 else f"{m:.1f} s"


def _range(st: dict[str, Any] | None) -> str:
    if not st or st.get("min") is None or len(st["samples"]) < 2:
        return ""
    return f"{st['min']:.2f}-{st['max']:.2f}" if st["max"] < 10 else f"{st['min']:.1f}-{st['max']:.1f}"


def render(results: dict[str, Any]) -> str:
    m, quiet, out = results["machine"], results["quiet"], []
    runs = results["runs"]
    out.append(f"regcache benchmark, {results['date']}: median of {runs} run(s) (min-max over runs); "
               "ratios: median of the per-run ratios")
    out.append(f"machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}, "
               f"{m['os']}; docker {m['docker']}, {m['buildx']}")
    out.append(f"quiet at start: {'yes' if quiet['quiet'] else 'NO'} (waited {quiet['waited_s']:.0f}s"
               f"{', seen ' + str(len(quiet['seen'])) + ' build/test processes of others' if quiet['seen'] else ''})"
               f"; measurements with others building or testing meanwhile: {len(results['foreign_activity'])}, "
               f"repeated because of them: {len(results['retries'])}; total {results['duration_s'] / 60:.1f} min")
    row = "  {:<58} {:>9} {:>11} {:>5}  {}"
    for sample, s in results["samples"].items():
        me, ra, busy = s["measurements"], s["ratios"], s["busy_runs"]

        def line(label: str, key: str, note: str = "", _me: dict = me, _busy: dict = busy) -> str:
            n = _busy.get(key, 0)
            return row.format(label, _s(_me.get(key)), _range(_me.get(key)), f"{n}/{runs}" if n else "", note)

        dv = DEFAULT_VARIANT
        out += ["", f"{sample} (bench/samples/{sample})", row.format("measurement", "median", "min-max", "busy", "")]
        out.append(line("1 cold build: action, auto push, writes the cache", f"cold:{dv}",
                        f"cache export {_s(me.get(f'export:{dv}'))}, image export {_s(me.get(f'image_export:{dv}'))}"))
        out.append(line("  warm rebuild: action, PR from a fork, clean builder", "warm",
                        f"warm/cold {_s(ra['warm/cold'], 'x')}"))
        out.append(line("2 warm rebuild: bare docker buildx build, same flags", "bare_warm",
                        f"action/bare {_s(ra['action/bare (warm)'], 'x')}, action-bare "
                        f"{_s(ra['action-bare (warm), s'], '+s')}"))
        span, parse = me.get("warm_buildx_span"), me.get("rawjson_parse_s")
        parse_ms = (parse or {}).get("median") or 0.0
        out.append(row.format("  of which its buildx build (echo to summary line)", _s(span), _range(span), "",
                              f"reading the progress alone: {parse_ms * 1000:.1f} ms "
                              f"({(me.get('rawjson_bytes') or {}).get('median') or 0:.0f} bytes)"))
        out.append(line("3 unchanged key, write run: reuse (pulls the image)", "reuse",
                        f"reuse/pull {_s(ra['reuse/pull'], 'x')}, reuse-pull {_s(ra['reuse-pull, s'], '+s')}"))
        out.append(line("  unchanged key, write run: no reuse (cache, export)", "rebuild",
                        f"reuse/no-reuse {_s(ra['reuse/rebuild'], 'x')}"))
        out.append(line("  bare docker pull of the image for the key", "pull"))
        out.append(line("5 whole action, nothing to do (image here already)", "noop",
                        f"action-pull {_s(ra['noop-pull_present, s'], '+s')}"))
        out.append(line("  bare docker pull of an image that is here", "pull_present"))
        fd = results["start"]["first_docker"].get(sample)
        out.append(row.format("  process start to first docker command, all runs", _s(fd), _range(fd), "", ""))
        if len(s["variants"]) > 1:
            out += ["", f"  4 cache settings: cold build (export included), cache export, cache size, image export, "
                    f"and a PR's warm rebuild after {MIDDLE_CHANGE.get(sample)} changed (from the fallback ref);",
                    "    cached: steps cached in that rebuild, run by run / its steps"]
            vrow = "  {:<10} {:>8} {:>8} {:>8} {:>8} {:>13} {:>7} {:>5}  {}"
            out.append(vrow.format("", "cold", "export", "size", "img exp", "after change", "cached", "busy",
                                   f"per-run ratios to {dv}"))
            for variant, v in s["variants"].items():
                vs = ""
                if variant != dv:
                    vs = ", ".join(f"{k} {_s(v[f'{k} vs {dv}'], 'x')}" for k in ("export", "size", "after_change"))
                n = max(busy.get(f"cold:{variant}", 0), busy.get(f"after_change:{variant}", 0))
                cached = v.get("after_change_cached", {}).get("samples")
                total = v.get("after_change_total", {}).get("median")
                out.append(vrow.format(variant, _s(v["cold"]), _s(v["export"]), _s(v["size"], "MB"),
                                       _s(v["image_export"]), _s(v["after_change"]),
                                       f"{','.join(str(c) for c in cached)}/{total}" if cached else "-",
                                       f"{n}/{runs}" if n else "", vs))
    st = results["start"]
    out += ["", "action start (5): the pieces, measured alone"]
    for name in ("python -c pass", "python -m regcache --version", "docker info --format", "docker buildx inspect"):
        out.append(row.format(f"  {name}", _s(st[name]), _range(st[name]), "", ""))
    for module, v in st["imports"].items():
        out.append(row.format(f"  import {module} (-X importtime)", _s(v), _range(v), "", ""))
    out.append("  'nothing to do', median seconds per phase (a `$ docker` line until the next log line):")
    phases = sorted(st["noop_phases"].items(), key=lambda kv: -(kv[1]["median"] or 0))
    text = ", ".join(f"{name} {v['median']:.3f}" for name, v in phases)
    while text:
        cut = text.rfind(", ", 0, 110) if len(text) > 110 else len(text)
        out.append("    " + text[:cut])
        text = text[cut + 2:]
    out += ["", "targets"]
    for t in results["targets"]:
        out.append(f"  {'✓' if t['met'] else '✗'} {t['name']}: {t['value']:.3f} (limit {t['limit']}; {t['detail']})")
    if results["anomalies"]:
        out += ["", "anomalies (a run did not do what its measurement assumes; details in the JSON)"]
        out += [f"  ! {a}" for a in results["anomalies"]]
    return "\n".join(out) + "\n"


# -- main ---------------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    p.add_argument("--quick", action="store_true", help="1 run, no waiting; results go to *-quick.{json,txt}")
    p.add_argument("--samples", default=",".join(SAMPLES), help=f"comma-separated, default {','.join(SAMPLES)}")
    p.add_argument("--wait", type=float, default=600, help="wait at most this many seconds for other "
                   "developers' builds and test runs to finish before measuring (default 600; 0: don't)")
    p.add_argument("--results", type=Path, default=RESULTS_DIR, help="where to write the results")
    p.add_argument("--src", type=Path, help="run the action from this source tree (the directory holding "
                   "regcache/) instead of src/")
    p.add_argument("--compare-src", type=Path, metavar="DIR", help="measure only the action's fixed cost (warm "
                   "rebuild, nothing to do, start) from src/ and from DIR, interleaved, on the first sample: to "
                   "measure a proposed change to src/")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.wait = 1, 0
    samples = [s.strip() for s in args.samples.split(",") if s.strip()]
    for sample in samples:
        if not (SAMPLES_DIR / sample / "Dockerfile").is_file():
            p.error(f"no sample {sample!r} under {SAMPLES_DIR}")
    if not run(["docker", "image", "inspect", "debian:trixie-slim"], check=False).returncode == 0:
        p.error("debian:trixie-slim is missing: run scripts/base-image.sh (bench/run does, as root)")

    began, date = time.monotonic(), datetime.now(UTC)
    src_at_start = tree_hash(args.src or ROOT / "src")
    machine_at_start = machine()   # the commit and versions measured, before anything can change them
    quiet = wait_for_quiet(args.wait) if args.wait > 0 else {"quiet": not foreign_activity(), "waited_s": 0.0,
                                                             "seen": foreign_activity()}
    rec = Record()
    with tempfile.TemporaryDirectory(prefix="regcache-bench-") as tmp_name, ActivityMonitor() as monitor:
        tmp = Path(tmp_name)
        with LocalRegistry(tmp / "registry", username=USER, password=PASSWORD) as registry:
            b = Bench(args, tmp, registry, monitor)
            log(f"registry {registry.host}; {args.runs} run(s) of {', '.join(samples)}")
            image_ready: dict[str, bool] = {}
            if args.compare_src:
                try:
                    compared, table = compare_sources(b, samples[0], args.compare_src.resolve(), args.runs)
                finally:
                    b.clean()
                compared.update(date=date.isoformat(timespec="seconds"), runs=args.runs, quiet=quiet,
                                machine=machine(), anomalies=b.anomalies, foreign_activity=monitor.during(0, 1e12))
                print(table, end="")
                args.results.mkdir(parents=True, exist_ok=True)
                stem = date.strftime("%Y-%m-%dT%H%M%SZ") + "-compare"
                (args.results / f"{stem}.json").write_text(json.dumps(compared, indent=2) + "\n")
                (args.results / f"{stem}.txt").write_text(table)
                return 0
            try:
                for i in range(args.runs):
                    rec.run = i
                    for sample in rotate(samples, i):
                        log(f"run {i + 1}/{args.runs}: {sample}")
                        try:
                            measure_sample(b, rec, sample, i, image_ready)
                        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                            # One broken run must not throw away half an hour of the others.
                            b.anomaly(f"{sample}: run {i + 1} stopped: {str(e)[:1500]}")
                start = measure_start(rec, args.runs, args.src or ROOT / "src")
            finally:
                b.clean()
            anomalies, anomaly_logs, retries = b.anomalies, b.anomaly_logs, b.retries
    sample_results, targets, more_anomalies = summarise(rec, start)
    anomalies += more_anomalies
    if tree_hash(args.src or ROOT / "src") != src_at_start:
        anomalies.append("the action's source changed while the benchmark ran: runs measured different code")
    results = {
        "date": date.isoformat(timespec="seconds"), "runs": args.runs, "quick": args.quick,
        "samples_run": samples, "src": str(args.src or ROOT / "src"), "src_sha256": src_at_start,
        "machine": machine_at_start, "quiet": quiet,
        "duration_s": round(time.monotonic() - began, 1), "samples": sample_results, "start": start,
        "targets": targets, "anomalies": anomalies, "anomaly_logs": anomaly_logs, "retries": retries,
        "foreign_activity": rec.foreign, "raw": rec.data, "steps": rec.logs,
    }
    table = render(results)
    print(table, end="")
    args.results.mkdir(parents=True, exist_ok=True)
    stem = date.strftime("%Y-%m-%dT%H%M%SZ") + ("-quick" if args.quick else "")
    text = json.dumps(results, indent=2) + "\n"
    (args.results / f"{stem}.json").write_text(text)
    (args.results / f"{stem}.txt").write_text(table)
    if not args.quick:
        (args.results / "latest.json").write_text(text)
        (args.results / "latest.txt").write_text(table)
    log(f"wrote {args.results / (stem + '.json')}{'' if args.quick else ' and latest.{json,txt}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
