"""Which caches no run will read again: the pruning rule, decided without a registry.

A cache repository holds three kinds of tags that regcache writes, and pruning touches only those:
- key tags, `<dockerfile slug>-<24 hex>`: one per cache key;
- fallback refs, `<dockerfile slug>-<platforms>-<branch>`: moving tags that reads fall back to;
- records, `record-<algorithm>-<hex>`: what a cache saved, beside the cache manifest with that digest.

A cache (a manifest, with every tag on it) is deleted only when all of this holds: each of its tags is a
key tag, the one its record names when it has one (so no fallback ref, and no tag regcache did not write,
points at it); it was written at least
`keep_days` ago, by a date that is known; and it is not among the `keep_per_dockerfile` newest keys of
its Dockerfile slug and platform. A record goes with its cache, and so does a record whose cache is gone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from regcache.provenance import record_subject

KEY_TAG_RE = re.compile(r"^(?P<slug>.+)-(?P<hash>[0-9a-f]{24})$")
DAY = 86400.0


@dataclass(frozen=True)
class Version:
    """One manifest in the repository with the tags that point at it."""

    digest: str
    tags: tuple[str, ...]
    created: float | None = None          # seconds since the epoch, None when unknown
    platforms: tuple[str, ...] = ()       # from the cache's record; () when unknown
    key: str = ""                         # the cache key its record names ("" when unknown)


@dataclass(frozen=True)
class Decision:
    version: Version
    delete: bool
    reason: str


def decide(versions: Sequence[Version], now: float, keep_days: float, keep_per_dockerfile: int) -> list[Decision]:
    """A decision for every version, in the order given. The caches are decided first; a record then goes
    or stays with its cache."""
    caches = [v for v in versions if v.tags and not any(record_subject(t) for t in v.tags)]
    decided = _decide_caches(caches, now, keep_days, keep_per_dockerfile)
    deleted = {digest for digest, d in decided.items() if d.delete}
    remaining = {v.digest for v in caches} - deleted
    return [decided.get(v.digest) or _decide_other(v, deleted, remaining) for v in versions]


def _decide_caches(caches: Sequence[Version], now: float, keep_days: float,
                   keep_per_dockerfile: int) -> dict[str, Decision]:
    decided: dict[str, Decision] = {}
    groups: dict[tuple[str, tuple[str, ...]], list[Version]] = defaultdict(list)
    for v in caches:
        # A fallback ref whose branch ends in 24 hex digits looks like a key: the record tells them apart.
        others = [t for t in v.tags if not KEY_TAG_RE.match(t) or (v.key and t != v.key)]
        if others:
            decided[v.digest] = Decision(v, False, f"kept: {others[0]} points at it (a fallback ref, or a tag "
                                                   "regcache does not write)")
        elif v.created is None:
            decided[v.digest] = Decision(v, False, "kept: when it was written is unknown (no record)")
        else:
            groups[(_slug(v.tags), v.platforms)].append(v)
    for (slug, platforms), group in groups.items():
        group.sort(key=lambda v: (v.created or 0.0, v.digest), reverse=True)
        where = f"{slug} ({', '.join(platforms) or 'platform unknown'})"
        for rank, v in enumerate(group):
            age_days = (now - (v.created or now)) / DAY
            if rank < keep_per_dockerfile:
                decided[v.digest] = Decision(v, False, f"kept: one of the {keep_per_dockerfile} newest keys of {where}")
            elif age_days < keep_days:
                decided[v.digest] = Decision(v, False, f"kept: written {age_days:.1f} days ago (keep-days: "
                                                       f"{keep_days:g})")
            else:
                decided[v.digest] = Decision(v, True, f"deleted: written {age_days:.1f} days ago, and "
                                                      f"{rank} newer keys of {where}")
    return decided


def _decide_other(v: Version, deleted: set[str], remaining: set[str]) -> Decision:
    """A record goes with its cache (or when its cache is gone); a manifest without tags is kept."""
    subjects = {record_subject(t) for t in v.tags} - {None}
    if subjects and subjects & deleted:
        return Decision(v, True, "deleted: the record of a cache deleted now")
    if subjects and not subjects & remaining:
        return Decision(v, True, "deleted: the record of a cache that is gone")
    return Decision(v, False, "kept: the record of a cache that is kept" if subjects else "kept: no tag on it")


def _slug(tags: Sequence[str]) -> str:
    match = KEY_TAG_RE.match(sorted(tags)[0])
    return match["slug"] if match else ""
