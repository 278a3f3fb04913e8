"""What the run tells its user: step outputs and the job summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from regcache.build_kind import BuildKind
from regcache.cache_plan import CachePlan
from regcache.log import Log
from regcache.progress import Step
from regcache.state import append

if TYPE_CHECKING:
    from regcache.registry import Manifest


@dataclass
class Outcome:
    kind: BuildKind
    plan: CachePlan
    cache_key: str
    cache_ref: str
    dockerfile_slug: str = ""
    platforms: tuple[str, ...] = ()
    fallback_prefix: str = ""     # <dockerfile slug>-<platforms slug>: fallback refs are per platform
    builder_reason: str = ""
    probe: str = "miss"           # exact | fallback | miss
    result: str = "built"         # built | reused
    steps: list[Step] = field(default_factory=list)
    cache_hit: str = "none"
    slowest: list[Step] = field(default_factory=list)
    imageid: str = ""
    digest: str = ""
    seconds: float = 0.0
    failed: str = ""
    bases: list[str] = field(default_factory=list)   # the FROM steps, as BuildKit named them
    cache_seconds: float = 0.0    # of seconds, importing and exporting cache
    cache_export_seconds: float | None = None   # the registry cache export alone
    image_export_seconds: float | None = None
    written_by: str = ""          # who wrote the cache this run read (from its record), "" when unknown
    cache_age: float | None = None
    time_saved: float | None = None
    cache_manifest: Manifest | None = None   # the cache written, as read back

    def outputs(self) -> dict[str, str]:
        cached = sum(1 for s in self.steps if s.cached)
        return {
            "build-kind": self.kind.kind,
            "cache-key": self.cache_key,
            "cache-ref": self.cache_ref,
            "cache-read": str(self.plan.read).lower(),
            "cache-write": str(self.plan.write).lower(),
            "cache-hit": self.cache_hit,
            "cache-probe": self.probe,
            "result": self.result,
            "cached-steps": str(cached),
            "total-steps": str(len(self.steps)),
            "imageid": self.imageid,
            "digest": self.digest,
            "cache-age": "" if self.cache_age is None else str(int(self.cache_age)),
            "time-saved": "" if self.time_saved is None else f"{self.time_saved:.1f}",
        }


def write_outputs(outputs: dict[str, str], output_file: str, log: Log) -> None:
    if not output_file:
        width = max(map(len, outputs))
        for name, value in outputs.items():
            log.info(f"  {name:<{width}}  {value}")
        return
    for name, value in outputs.items():
        append(output_file, name, value)


def summary_markdown(o: Outcome, warnings: list[str]) -> str:
    out = o.outputs()
    status = (f"failed: {o.failed}" if o.failed else "reused the image built for this key" if o.result == "reused"
              else f"built in {o.seconds:.1f}s")
    lines = [
        "## regcache",
        "",
        f"**{status}**",
        "",
        "| | |",
        "|---|---|",
        f"| Build kind | `{o.kind.kind}`: {o.kind.reason} |",
        f"| Cache | read: `{out['cache-read']}`, write: `{out['cache-write']}`: {o.plan.reason} |",
        f"| Cache ref | `{o.cache_ref}` (probe: `{o.probe}`) |",
        f"| Builder | {o.builder_reason} |",
        f"| Cache hit | `{o.cache_hit}`: {out['cached-steps']} of {out['total-steps']} steps cached{_worth(o)} |",
    ]
    if o.imageid:
        lines.append(f"| Image | `{o.imageid}` |")
    if o.slowest:
        lines += ["", "Slowest steps:", "", "| Step | Time | Cached |", "|---|---:|---|"]
        for s in o.slowest:
            took = f"{s.duration:.1f}s" if s.duration is not None else "-"
            name = s.name.replace("|", "\\|")
            lines.append(f"| `{name}` | {took} | {'yes' if s.cached else 'no'} |")
    if warnings:
        lines += ["", "Warnings:", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def _worth(o: Outcome) -> str:
    if not o.written_by:
        return ""
    saved = f"; saved about {o.time_saved:.1f}s" if o.time_saved is not None else ""
    return f"; written by {o.written_by}{saved}"


def write_summary(markdown: str, summary_file: str) -> None:
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as f:
            f.write(markdown)


def write_timings(o: Outcome, phases: list[tuple[str, float]], path: str) -> None:
    """Where a run's time went, as data (REGCACHE_TIMINGS names the file; for bench/, not for users): each
    log group's seconds, and the build's own and its exports'."""
    def ms(seconds: float | None) -> float | None:   # every figure to the millisecond, so they compare
        return None if seconds is None else round(seconds, 3)

    data = {
        "phases": [{"name": name, "seconds": ms(seconds)} for name, seconds in phases],
        "build_seconds": ms(o.seconds),
        "cache_transfer_seconds": ms(o.cache_seconds),
        "cache_export_seconds": ms(o.cache_export_seconds),
        "image_export_seconds": ms(o.image_export_seconds),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.write("\n")
