"""Decide what kind of build this run is: try, auto, pr or other, and say why.

Trust follows the kind: try and auto builds run on pushes that only maintainers (or bors) can make, so they
may write the cache; pull requests carry code from anyone and only ever read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from regcache.event import Event

Kind = Literal["try", "auto", "pr", "other"]


@dataclass(frozen=True)
class BuildKind:
    kind: Kind
    reason: str        # one sentence for the log and the summary
    fork: bool = False  # the code comes from another repository: never write, whatever the inputs say
    # The branch whose moving cache ref this run reads first (and updates, if it writes): the pushed
    # branch, or the base branch of a pull request or merge queue.
    branch: str = ""


def classify(event: Event, try_branches: Sequence[str], auto_branches: Sequence[str]) -> BuildKind:
    name = event.name
    if name == "push":
        ref = event.ref or _str(event.payload.get("ref"))
        if not ref:
            raise event.error("a push event needs a ref: GITHUB_REF is not set and the payload has no 'ref'")
        if not ref.startswith("refs/heads/"):
            return BuildKind("other", f"push event with ref {ref!r}, not a branch")
        branch = ref.removeprefix("refs/heads/")
        if branch in try_branches:
            return BuildKind("try", f"push to try branch {branch!r}", branch=branch)
        if branch in auto_branches:
            return BuildKind("auto", f"push to auto branch {branch!r}", branch=branch)
        return BuildKind("other", f"push to branch {branch!r}, which is neither a try nor an auto branch",
                         branch=branch)
    if name == "merge_group":
        base = _str(_get(event.payload, "merge_group", "base_ref")).removeprefix("refs/heads/")
        return BuildKind("auto", "merge_group event (merge queue)", branch=base)
    if name in ("pull_request", "pull_request_target"):
        fork = _is_fork(event)
        number = event.payload.get("number") or _get(event.payload, "pull_request", "number")
        number = number if isinstance(number, int) and not isinstance(number, bool) else "?"
        origin = "from a fork" if fork else "from this repository"
        base = _str(_get(event.payload, "pull_request", "base", "ref"))
        return BuildKind("pr", f"{name} event for pull request #{number} {origin}", fork=fork, branch=base)
    if not name:
        return BuildKind("other", "not running in GitHub Actions (no GITHUB_EVENT_NAME)")
    fork = isinstance(event.payload.get("pull_request"), Mapping) and _is_fork(event)
    return BuildKind("other", f"{name!r} event", fork=fork)


def _is_fork(event: Event) -> bool:
    pr = event.payload.get("pull_request")
    if not isinstance(pr, Mapping):
        raise event.error(f"the {event.name} event payload has no 'pull_request' object")
    head_repo = _get(pr, "head", "repo")
    base_repo = _get(pr, "base", "repo") or event.payload.get("repository")
    if not isinstance(head_repo, Mapping):
        # The head repository was deleted (a fork that is gone): treat as untrusted.
        return True
    head_name = _str(head_repo.get("full_name"))
    base_name = _str(base_repo.get("full_name")) if isinstance(base_repo, Mapping) else event.repository
    return not head_name or head_name != (base_name or event.repository)


def _get(obj: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
