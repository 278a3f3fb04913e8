"""Which cache refs a run reads and which moving refs it writes: exact key first, then fallbacks.

A content-addressed key changes whenever the Dockerfile or a copied file does, and the next build would
start cold though most layers are unchanged. So every successful write also tags the same cache manifest
as a moving per-branch ref, and reads fall back to those refs when the exact one is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

from regcache.image_ref import MAX_TAG, tag_slug


def branch_tag(dockerfile_slug: str, branch: str) -> str:
    """`<dockerfile slug>-<branch slug>`, always a valid tag: the branch part is cut to fit 128 characters."""
    return f"{dockerfile_slug}-{tag_slug(branch, 'branch', MAX_TAG - len(dockerfile_slug) - 1)}"


def read_refs(cache_image: str, key: str, dockerfile_slug: str, own_branch: str, auto_branches: Sequence[str],
              extra: Sequence[str]) -> list[str]:
    """Refs to import, best first: the exact key, the run's branch, the auto branches, then extra refs."""
    refs = [f"{cache_image}:{key}"]
    for branch in ([own_branch] if own_branch else []) + list(auto_branches):
        refs.append(f"{cache_image}:{branch_tag(dockerfile_slug, branch)}")
    refs += list(extra)
    return list(dict.fromkeys(refs))
