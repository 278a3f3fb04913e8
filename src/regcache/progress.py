"""A build, modelled from its rawjson progress events (rawjson.RawJsonStream decodes them from buildx's
stderr: a dict per SolveStatus, a str per text line).

BuildProgress merges the SolveStatus events into per-vertex state, returns readable log lines, and answers
what the build did: the Dockerfile steps, the cache hit, the cache import/export errors, the failed step.

Nothing here prints or touches the engine: the caller runs buildx, feeds the output and prints the lines.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import cast

# "[builder 2/4] RUN make", "[2/4] COPY . .", "[linux/arm64 builder 2/4] RUN make" (multi-platform builds)
_STEP_RE = re.compile(
    r"^\[(?:(?P<platform>[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+) )?(?:(?P<stage>[^\s/\]]+) )?"
    r"(?P<index>\d+)/(?P<total>\d+)\] (?P<instruction>.*)\Z",
    re.DOTALL,
)
# RFC 3339 with any number of fraction digits (Go writes up to 9) and Z or a numeric offset.
_TS_RE = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?$"
)
# "Dockerfile:12" or "build.Dockerfile:12-14" alone on a line, as buildx prints above the excerpt.
_LOCATION_RE = re.compile(r"^\s*(?P<file>[^\s:][^\s]*?):(?P<line>\d+)(?:-\d+)?\s*$")
_SEPARATOR_RE = re.compile(r"^\s*-{4,}\s*$")

# Vertex names of BuildKit's remote cache importers and exporters.
CACHE_IMPORT_PREFIX = "importing cache manifest from "
CACHE_EXPORT_PREFIXES = ("exporting cache to ", "preparing layers for inline cache")
# Vertex names of the image export: BuildKit's image exporter (the docker driver; --push), and its docker and
# oci exporters (a docker-container builder's --load; --output type=docker|oci). With --load that vertex
# completes after buildx's own "importing to docker" vertex: the image is in the engine by then.
IMAGE_EXPORT_NAMES = ("exporting to image", "exporting to docker image format", "exporting to oci image format")


def parse_timestamp(value: object) -> float | None:
    """Seconds since the epoch for an RFC 3339 timestamp (fraction trimmed to microseconds), else None."""
    if not isinstance(value, str):
        return None
    m = _TS_RE.match(value.strip())
    if not m:
        return None
    frac = (m.group("frac") or "")[:6].ljust(6, "0")
    tz = m.group("tz") or "Z"
    if tz in ("Z", "z"):
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    try:
        return datetime.fromisoformat(f"{m.group('base').replace(' ', 'T').replace('t', 'T')}.{frac}{tz}").timestamp()
    except ValueError:
        return None




@dataclass(frozen=True)
class Step:
    """One Dockerfile step, as BuildKit names its vertex: ``[stage index/total] instruction``."""

    digest: str
    name: str
    cached: bool
    duration: float | None  # seconds; None when the step never completed
    error: str | None
    stage: str | None  # "builder" for "[builder 2/4] RUN ...", None for "[2/4] ..."
    index: int | None
    total: int | None
    instruction: str  # "RUN make", "COPY . .", "FROM ..."
    platform: str | None = None  # "linux/arm64" in multi-platform builds


@dataclass
class _Vertex:
    digest: str
    number: int = 0  # buildx-style "#n", given when the vertex first shows in the log (0: not yet)
    name: str = ""
    cached: bool = False
    error: str | None = None
    started: float | None = None  # start of the current run of the vertex
    completed: float | None = None  # end of the current run, None while it runs
    started_raw: str | None = None
    completed_raw: str | None = None
    done_runs: float = 0.0  # seconds of earlier runs (BuildKit may run a vertex more than once)
    ran_before: bool = False
    reported: bool = False  # a completion line was returned
    reported_error: bool = False
    log_tails: dict[int, str] = field(default_factory=dict)  # stream -> text after the last "\n"

    @property
    def ran(self) -> bool:
        """Whether BuildKit got to the vertex at all (False for steps after a failed one)."""
        return self.started_raw is not None or self.completed_raw is not None or self.cached

    @property
    def duration(self) -> float | None:
        if self.completed is None or self.started is None:
            return self.done_runs if self.ran_before else None
        return self.done_runs + max(0.0, self.completed - self.started)


class BuildProgress:
    """Merges SolveStatus events into per-vertex state and answers questions about the build.

    Vertices repeat with partial fields: later non-empty fields win, ``cached`` sticks once true, and a
    vertex that starts again after completing counts the durations of all its runs.
    """

    def __init__(self) -> None:
        self._vertices: dict[str, _Vertex] = {}
        self._steps: list[Step] | None = None   # steps(), until the next update
        self._warnings: list[str] = []
        self._text: list[str] = []
        self._numbered = 0
        self._announced: set[str] = set()       # cache transfers whose start was logged
        self._exported: dict[str, str] = {}     # "manifest list" / "manifest" / "config" -> digest exported

    # -- input ------------------------------------------------------------------------------------------

    def update(self, event: dict | str) -> list[str]:
        """Merge one SolveStatus and return readable lines for it.

        The lines are the vertex's log output (``#7 make: done``), a line for each vertex that just
        completed (``#7 [builder 2/4] RUN make  1.2s``, ``... CACHED``, ``... ERROR: ...``) and warnings.
        A str event (a plain text line from RawJsonStream) is kept for dockerfile_error_location() and
        returned as it is.
        """
        if isinstance(event, str):
            self._text.append(event)
            return [event]
        if not isinstance(event, dict):
            return []
        self._steps = None
        out: list[str] = []
        just_completed: dict[str, _Vertex] = {}
        for raw in _list(event.get("vertexes")):
            vertex = self._merge(raw)
            if vertex is not None:
                just_completed[vertex.digest] = vertex
                # Cache transfers can take minutes: say when one starts, not only when it ends.
                if (vertex.started_raw and vertex.completed_raw is None and vertex.digest not in self._announced
                        and (_is_cache_import(vertex.name) or _is_cache_export(vertex.name))):
                    self._announced.add(vertex.digest)
                    out.append(self._prefixed(vertex, f"{vertex.name} ..."))
        self._note_exports(_list(event.get("statuses")))
        for log in _list(event.get("logs")):
            out.extend(self._log(log))
        for warning in _list(event.get("warnings")):
            out.extend(self._warning(warning))
        for vertex in just_completed.values():
            out.extend(self._flush_logs(vertex))
            line = self._completion_line(vertex)
            if line is not None:
                out.append(line)
        return out

    def _note_exports(self, statuses: list) -> None:
        """Keep the digests the image exporter names ("exporting manifest sha256:..." and the like)."""
        for status in statuses:
            sid = status.get("id") if isinstance(status, dict) else None
            for kind in ("manifest list", "manifest", "config"):
                if isinstance(sid, str) and sid.startswith(f"exporting {kind} sha256:"):
                    self._exported[kind] = sid.rsplit(" ", 1)[1]
                    break

    # -- answers ----------------------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        """Dockerfile steps except FROM, one per step of the Dockerfile, in order of first appearance.

        BuildKit may show one step under two digests (the graph it plans, then the vertex it solves): they
        are merged. A step that never ran, in a build where some step ran and none failed, was not needed
        because a later step came from the cache: it counts as cached.
        """
        if self._steps is None:
            self._steps = self._merged_steps()
        return list(self._steps)

    def _merged_steps(self) -> list[Step]:
        merged: dict[tuple, Step] = {}
        ran: dict[tuple, bool] = {}
        for step in self._dockerfile_steps():
            if _is_from(step):
                continue
            key = (step.platform, step.stage, step.index, step.total, step.instruction)
            ran[key] = ran.get(key, False) or self._vertices[step.digest].ran
            if key in merged:
                old = merged[key]
                durations = [d for d in (old.duration, step.duration) if d is not None]
                step = replace(old, cached=old.cached or step.cached, error=old.error or step.error,
                               duration=max(durations) if durations else None)
            merged[key] = step
        if any(ran.values()) and not any(step.error for step in merged.values()):
            merged = {k: (v if ran[k] else replace(v, cached=True)) for k, v in merged.items()}
        return list(merged.values())

    def cache_transfer_seconds(self) -> float:
        """Seconds the build spent importing and exporting cache (vertices may overlap: an upper bound)."""
        return sum(v.duration or 0.0 for v in self._vertices.values()
                   if _is_cache_import(v.name) or _is_cache_export(v.name))

    def cache_export_seconds(self) -> float | None:
        """Seconds of the registry cache export (`exporting cache to ...`), None when there was none."""
        return self._seconds(lambda name: name.startswith("exporting cache to "))

    def image_export_seconds(self) -> float | None:
        """Seconds of the image export (into the engine, or pushed), None when there was none."""
        return self._seconds(lambda name: name in IMAGE_EXPORT_NAMES)

    def _seconds(self, named: Callable[[str], bool]) -> float | None:
        durations = [v.duration for v in self._vertices.values() if named(v.name) and v.duration is not None]
        return sum(durations) if durations else None

    def bases(self) -> list[str]:
        """The FROM steps as BuildKit names them (the digest it resolved included), once each, in order."""
        return list(dict.fromkeys(step.name for step in self._dockerfile_steps() if _is_from(step)))

    def cache_hit(self) -> str:
        """Return "full" if every step was cached, "partial" if some were, "none" otherwise.

        Steps BuildKit never got to after a failed step are neither.
        """
        steps = self.steps()
        cached = sum(1 for s in steps if s.cached)
        if steps and cached == len(steps):
            return "full"
        return "partial" if cached else "none"

    def cache_import_errors(self) -> list[tuple[str, str]]:
        """(ref, error) for each ``importing cache manifest from <ref>`` vertex that failed.

        A cache that does not exist yet shows as ``... <ref>: not found``.
        """
        return [(v.name.removeprefix(CACHE_IMPORT_PREFIX), v.error) for v in self._vertices.values()
                if v.error and _is_cache_import(v.name)]

    def cache_export_errors(self) -> list[str]:
        """Errors of the cache export vertices (``exporting cache to registry`` and the like).

        With ``ignore-error=true`` the build succeeds and this vertex error is the only trace of a failed
        export; without it the same error is also the ``ERROR: failed to solve: ...`` text line.
        """
        return [v.error for v in self._vertices.values() if v.error and _is_cache_export(v.name)]

    def cache_export_running(self) -> bool:
        """Whether a cache export has started and not finished."""
        return any(_is_cache_export(v.name) and v.started_raw and v.completed_raw is None
                   for v in self._vertices.values())

    def image_exported(self) -> bool:
        """Whether the image itself is done (``exporting to image`` or, with a docker-container builder's
        ``--load``, ``exporting to docker image format`` completed without error)."""
        return any(v.name in IMAGE_EXPORT_NAMES and v.completed_raw and not v.error
                   for v in self._vertices.values())

    def image_digest(self) -> str:
        """The digest the image was exported under (its ID in a containerd image store), if it was."""
        return self._exported.get("manifest list") or self._exported.get("manifest", "")

    def image_id(self, containerd_store: bool) -> str:
        """The image's ID in the engine it was loaded into: the manifest's digest in a containerd image
        store, the config's in the classic store."""
        return self.image_digest() if containerd_store else self._exported.get("config", "")

    def failed_step(self) -> Step | None:
        """The Dockerfile step (FROM included) with an error; a real error wins over a cancellation."""
        failed = [s for s in self._dockerfile_steps() if s.error]
        for step in failed:
            if "canceled" not in cast(str, step.error).lower():  # failed: every error is set
                return step
        return failed[0] if failed else None

    def slowest(self, n: int = 5) -> list[Step]:
        """The n steps that took longest, slowest first (steps that never completed are left out)."""
        timed = [s for s in self.steps() if s.duration is not None]
        return sorted(timed, key=lambda s: cast(float, s.duration), reverse=True)[:n]

    def errors(self) -> list[tuple[str, str]]:
        """(vertex name, error) for every vertex with an error, in order of first appearance."""
        return [(v.name, v.error) for v in self._vertices.values() if v.error]

    def warnings(self) -> list[str]:
        """The short text of each SolveStatus warning (none in buildx 0.13 builds seen so far)."""
        return list(self._warnings)

    def text_lines(self) -> list[str]:
        """The plain text lines given to update()."""
        return list(self._text)

    # -- internals --------------------------------------------------------------------------------------

    def _vertex(self, digest: str) -> _Vertex:
        vertex = self._vertices.get(digest)
        if vertex is None:
            vertex = _Vertex(digest=digest)
            self._vertices[digest] = vertex
        return vertex

    def _number(self, vertex: _Vertex) -> int:
        if not vertex.number:
            self._numbered += 1
            vertex.number = self._numbered
        return vertex.number

    def _merge(self, raw: object) -> _Vertex | None:
        """Merge one vertex record; return the vertex if it completed with this record."""
        if not isinstance(raw, dict) or not isinstance(raw.get("digest"), str) or not raw["digest"]:
            return None
        vertex = self._vertex(raw["digest"])
        if isinstance(raw.get("name"), str) and raw["name"]:
            vertex.name = raw["name"]
        if raw.get("cached") is True:
            vertex.cached = True
        new_error = False
        if isinstance(raw.get("error"), str) and raw["error"] and raw["error"] != vertex.error:
            vertex.error = raw["error"]
            new_error = True
        started_raw = raw.get("started") or None
        completed_raw = raw.get("completed") or None
        if started_raw and started_raw != vertex.started_raw:
            if vertex.started_raw is not None and vertex.completed is not None:
                # It ran before and starts again: keep the earlier run's time.
                vertex.done_runs += max(0.0, vertex.completed - (vertex.started or vertex.completed))
                vertex.ran_before = True
            vertex.started_raw = started_raw
            vertex.started = parse_timestamp(started_raw)
            self._number(vertex)
            vertex.completed = None
            vertex.completed_raw = None
        if completed_raw and completed_raw != vertex.completed_raw:
            vertex.completed_raw = completed_raw
            vertex.completed = parse_timestamp(completed_raw)
            if vertex.started is None:
                vertex.started = vertex.completed
            return vertex
        if new_error and vertex.completed is not None:
            return vertex
        return None

    def _log(self, log: object) -> list[str]:
        if not isinstance(log, dict) or not isinstance(log.get("vertex"), str):
            return []
        vertex = self._vertex(log["vertex"])
        stream = cast(int, log.get("stream")) if isinstance(log.get("stream"), int) else 1
        data = _b64text(log.get("data"))
        if not data:
            return []
        text = vertex.log_tails.pop(stream, "") + data.replace("\r\n", "\n")
        *lines, tail = text.split("\n")
        if tail:
            vertex.log_tails[stream] = tail
        return [self._prefixed(vertex, line) for line in lines]

    def _flush_logs(self, vertex: _Vertex) -> list[str]:
        tails, vertex.log_tails = vertex.log_tails, {}
        return [self._prefixed(vertex, tail) for _, tail in sorted(tails.items())]

    def _warning(self, warning: object) -> list[str]:
        if not isinstance(warning, dict):
            return []
        short = _b64text(warning.get("short")).strip() or "warning"
        self._warnings.append(short)
        digest = warning.get("vertex")
        if isinstance(digest, str) and digest:
            return [f"#{self._number(self._vertex(digest))} WARN: {short}"]
        return [f"WARN: {short}"]

    def _completion_line(self, vertex: _Vertex) -> str | None:
        head = f"#{self._number(vertex)} {_one_line(vertex.name) or vertex.digest}"
        if vertex.error:
            if vertex.reported_error:
                return None
            vertex.reported = vertex.reported_error = True
            return f"{head}  ERROR: {_one_line(vertex.error)}"
        if vertex.reported:
            return None  # BuildKit ran it again (e.g. "load build definition"): say it once
        vertex.reported = True
        if vertex.cached:
            return f"{head}  CACHED"
        duration = vertex.duration
        return f"{head}  {duration:.1f}s" if duration is not None else f"{head}  DONE"

    def _prefixed(self, vertex: _Vertex, line: str) -> str:
        return f"#{self._number(vertex)} {line.rstrip(chr(13))}"

    def _dockerfile_steps(self) -> list[Step]:
        steps: list[Step] = []
        for v in self._vertices.values():
            m = _STEP_RE.match(v.name)
            if not m:
                continue
            steps.append(
                Step(
                    digest=v.digest,
                    name=v.name,
                    cached=v.cached,
                    duration=v.duration,
                    error=v.error,
                    stage=m.group("stage"),
                    index=int(m.group("index")),
                    total=int(m.group("total")),
                    instruction=m.group("instruction"),
                    platform=m.group("platform"),
                )
            )
        return steps


def dockerfile_error_location(text_lines: list[str]) -> tuple[str, int] | None:
    """The ``Dockerfile:12`` location buildx prints above the excerpt of a failed step, if present.

    Returns the file name as printed (buildx prints the base name of ``-f``) and the first line number.
    A candidate counts when the next line is the ``-----`` rule that opens the excerpt; with several,
    the last one before the first ``ERROR:`` line wins (else the last one).
    """
    found: list[tuple[int, tuple[str, int]]] = []
    first_error: int | None = None
    for i, line in enumerate(text_lines):
        if first_error is None and line.lstrip().startswith("ERROR:"):
            first_error = i
        m = _LOCATION_RE.match(line)
        if m and i + 1 < len(text_lines) and _SEPARATOR_RE.match(text_lines[i + 1]):
            found.append((i, (m.group("file"), int(m.group("line")))))
    if not found:
        return None
    if first_error is not None:
        before = [loc for i, loc in found if i < first_error]
        if before:
            return before[-1]
    return found[-1][1]


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _b64text(value: object) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        return base64.b64decode(value).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")) if "\n" in text else text


def _is_from(step: Step) -> bool:
    return step.instruction[:5].upper() == "FROM "


def _is_cache_import(name: str) -> bool:
    return name.startswith(CACHE_IMPORT_PREFIX)


def _is_cache_export(name: str) -> bool:
    return name.startswith(CACHE_EXPORT_PREFIXES)
