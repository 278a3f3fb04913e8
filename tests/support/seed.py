"""Caches as a write run leaves them, made directly in a registry: thousands in seconds (the prune tests)."""

from __future__ import annotations

import hashlib
import json
import os

import requests

from regcache.provenance import Record, record_manifest
from regcache.registry import Manifest
from tests.conftest import PASSWORD, USER
from tests.support.registry import LocalRegistry

LAYER = 1000   # bytes of each seeded cache's own layer
EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json",
         "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def key(slug: str, n: int) -> str:
    """A cache key tag: `<dockerfile slug>-<24 hex>`."""
    return f"{slug}-{n:024x}"


class Seeder:
    """A cache is a manifest with a layer of its own and, when its date is given, its record beside it
    (written by regcache's own record_manifest, as a write run does)."""

    def __init__(self, reg: LocalRegistry, repo: str):
        self.reg, self.repo = reg, repo
        self.session = requests.Session()
        self.session.auth = (USER, PASSWORD)
        self._blob(b"{}")

    def _blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = self.session.post(f"{self.reg.url}/v2/{self.repo}/blobs/uploads/", timeout=30)
        started.raise_for_status()
        location = started.headers["Location"]
        location = location if location.startswith("http") else f"{self.reg.url}{location}"
        self.session.put(f"{location}{'&' if '?' in location else '?'}digest={digest}", data=data,
                         timeout=30).raise_for_status()
        return digest

    def _manifest(self, tag: str, body: bytes) -> str:
        r = self.session.put(f"{self.reg.url}/v2/{self.repo}/manifests/{tag}", data=body,
                             headers={"Content-Type": MANIFEST}, timeout=30)
        r.raise_for_status()
        return r.headers["Docker-Content-Digest"]

    def cache(self, tag: str, written_at: float | None, platforms=("linux/amd64",), also: tuple[str, ...] = ()) -> str:
        layer = self._blob(os.urandom(LAYER))
        body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": EMPTY, "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": LAYER}]}).encode()
        digest = self._manifest(tag, body)
        for extra in also:
            self._manifest(extra, body)
        if written_at is not None:
            record = Record(kind="auto", branch="auto", commit="c", run_url="", written_at=written_at,
                            builder="docker-container", platforms=tuple(platforms), cache_key=tag,
                            cache_version="1", build_seconds=60.0)
            self._manifest("record-" + digest.replace(":", "-"),
                           record_manifest(record, Manifest(MANIFEST, digest, body)).body)
        return digest
