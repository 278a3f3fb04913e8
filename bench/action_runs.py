"""Runs: the action run as the runner runs it (Timed: its wall time, its log, its timings as data), the
same build run bare, and the cleaning between measurements (Bench)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plan  # noqa: F401  (puts harness/ and src/ on the path)
from machine import ActivityMonitor, log, run, timed, wait_for_quiet
from plan import ACTION_TIMEOUT, PASSWORD, RETRIES, SAMPLES_DIR, USER

from harness import events
from harness.action import ActionRun, start_action
from regcache.progress import BuildProgress
from regcache.rawjson import RawJsonStream

if TYPE_CHECKING:
    from measurements import Record

    from harness.registry import LocalRegistry



# -- one action run ---------------------------------------------------------------------------------------

# A completion line of a step or a cache transfer in the action's log, kept with the results for reading.
STEP_LINE_RE = re.compile(r"^#\d+ (\[|exporting|importing).*  (CACHED|[\d.]+s|ERROR.*)$")


@dataclass
class Timed:
    """One action run: wall time from spawning the process to its exit, its log, and the timings it wrote
    as data (REGCACHE_TIMINGS: each log group's seconds, the build's and its exports'; empty for a source
    tree from before it wrote them)."""

    seconds: float
    first_docker: float | None
    outputs: dict[str, str]
    lines: list[tuple[float, str]]
    result: ActionRun
    foreign: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_repo(self) -> str:
        return self.inputs["cache-image"].split("/", 1)[1]

    @property
    def buildx_span(self) -> float | None:
        """The action's Build phase: buildx run, its progress read, what it means for the cache said."""
        return next((phase["seconds"] for phase in self.timings.get("phases", []) if phase["name"] == "Build"),
                    None)

    @property
    def export_s(self) -> float | None:
        return self.timings.get("cache_export_seconds")

    @property
    def image_export_s(self) -> float | None:
        return self.timings.get("image_export_seconds")

    @property
    def build_s(self) -> float | None:
        return self.timings.get("build_seconds")

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
        timings = self.tmp / f"timings-{os.urandom(4).hex()}.json"
        extra_env = {"PYTHONUNBUFFERED": "1", "DOCKER_CONFIG": str(self.action_config),
                     "REGCACHE_TIMINGS": str(timings)}
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
                          self.monitor.during(started, time.monotonic()), inputs,
                          json.loads(timings.read_text()) if timings.exists() else {})
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
