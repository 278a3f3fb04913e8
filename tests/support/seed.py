"""Caches as a write run leaves them, made directly in a registry: thousands in seconds (the prune tests)."""

from __future__ import annotations

import hashlib
import json
import os

from harness.registry import LocalRegistry
from regcache.provenance import EMPTY, EMPTY_DIGEST, EMPTY_JSON, OCI_MANIFEST, Record, write_record
from regcache.registry import Manifest, RegistryClient
from tests.conftest import PASSWORD, USER

LAYER = 1000   # bytes of each seeded cache's own layer


def key(slug: str, n: int) -> str:
    """A cache key tag: `<dockerfile slug>-<24 hex>`."""
    return f"{slug}-{n:024x}"


class Seeder:
    """A cache is a manifest with a layer of its own and, when its date is given, its record beside it
    (written by regcache's own write_record, as a write run does)."""

    def __init__(self, reg: LocalRegistry, repo: str):
        self.repo = repo
        self.client = RegistryClient(reg.host, username=USER, password=PASSWORD)
        self.client.put_blob(repo, EMPTY_DIGEST, EMPTY_JSON)

    def cache(self, tag: str, written_at: float | None, platforms=("linux/amd64",), also: tuple[str, ...] = ()) -> str:
        data = os.urandom(LAYER)
        layer = "sha256:" + hashlib.sha256(data).hexdigest()
        self.client.put_blob(self.repo, layer, data)
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": EMPTY, "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": LAYER}]}).encode()
        digest = ""
        for name in (tag, *also):
            digest = self.client.put_manifest(self.repo, name, Manifest(OCI_MANIFEST, "", body))
        if written_at is not None:
            record = Record(kind="auto", branch="auto", commit="c", run_url="", written_at=written_at,
                            builder="docker-container", platforms=tuple(platforms), cache_key=tag,
                            cache_version="1", build_seconds=60.0)
            write_record(self.client, self.repo, record, Manifest(OCI_MANIFEST, digest, body))
        return digest
