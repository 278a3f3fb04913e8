"""Decide whether this run reads and writes the cache, and say why."""

from __future__ import annotations

from dataclasses import dataclass

from regcache.build_kind import BuildKind


@dataclass(frozen=True)
class CachePlan:
    read: bool
    write: bool
    reason: str
    warning: str = ""   # something the user should fix, e.g. a write run without a token


def plan_cache(kind: BuildKind, *, pr_cache: str, other_cache: str, has_token: bool) -> CachePlan:
    if kind.kind in ("try", "auto"):
        read, write, reason = True, True, f"{kind.kind} builds are trusted: they read and write the cache"
    elif kind.kind == "pr":
        read, write = pr_cache == "read", False
        reason = ("pull requests only read the cache" if read
                  else "pull requests do not use the cache (pr-cache: off)")
    else:
        read, write = other_cache in ("read", "read-write"), other_cache == "read-write"
        reason = f"other builds follow other-cache: {other_cache}"

    if write and kind.fork:
        return CachePlan(read, False, reason + "; but the code comes from a fork, which never writes")
    if write and not has_token:
        return CachePlan(read, False, reason + "; but there is no token, so the cache is only read",
                         warning="this run may write the cache but has no registry token "
                                 "(input github-token): the cache is only read. Pass a token with "
                                 "packages: write, e.g. github-token: ${{ secrets.GITHUB_TOKEN }}")
    return CachePlan(read, write, reason)
