"""Image references: the grammar regcache accepts (distribution's, lowercase repositories), which registry
a repository is on, a ref split the way the registry API takes it, and the readable tags regcache makes
from names. Standard library only: scripts/release_action.py uses the grammar too.
"""

from __future__ import annotations

import re

# A path component of a repository (lowercase only).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A first component is a registry host only with a dot, a port, or as localhost (as docker decides).
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:localhost(?::[0-9]+)?|{_LABEL}(?:\.{_LABEL})+(?::[0-9]+)?|{_LABEL}:[0-9]+)"
_REPOSITORY = rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"

REPOSITORY_RE = re.compile(rf"^{_REPOSITORY}$")
TAG_RE = re.compile(rf"^{_TAG}$")
IMAGE_RE = re.compile(rf"^{_REPOSITORY}(?::{_TAG})?(?:@{_DIGEST})?$")
TAGGED_RE = re.compile(rf"^{_REPOSITORY}:{_TAG}$")
PINNED_RE = re.compile(rf"^{_REPOSITORY}(?::{_TAG})?@{_DIGEST}$")
MAX_TAG = 128


def registry_host(repository: str) -> str:
    """The registry a repository lives on, as docker login names it (Docker Hub when there is no host)."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def split_ref(ref: str) -> tuple[str, str, str]:
    """(registry API host, repository path, tag) of an image reference with a tag."""
    name, _, tag = ref.rpartition(":")
    host = registry_host(name)
    path = name.removeprefix(f"{host}/")
    if host == "docker.io":
        return "registry-1.docker.io", path if "/" in path else f"library/{path}", tag
    return host, path, tag


def tag_slug(text: str, empty: str, limit: int = MAX_TAG) -> str:
    """`text` in a tag's characters, readable: lowercase, every other run of characters one "-", at most
    `limit` characters, no separator at either end; `empty` when nothing is left."""
    slug = re.sub(r"[^a-z0-9_.]+", "-", text.lower()).strip("-._")
    return slug[:limit].rstrip("-._") or empty
