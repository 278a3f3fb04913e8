"""Whether a max-mode cache write holds what the build produced: read the cache manifest back and count.

BuildKit can claim a complete export that is not: a long-lived builder whose local cache holds records it
can no longer export (after killed builds, abandoned exports and prunes) reports the steps behind them as
CACHED and writes a cache without their layers, with no error. The cache config BuildKit writes
(`application/vnd.buildkit.cacheconfig.v0`) has one record per cached result and the layers they point at;
every RUN, COPY and ADD of the build must have its layer there, whether it ran or came from the cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from regcache.image_ref import split_ref
from regcache.log import Log
from regcache.progress import Step
from regcache.registry import Manifest, RegistryError

CACHE_CONFIG_TYPE = "application/vnd.buildkit.cacheconfig.v0"
# Instructions that always give a layer. WORKDIR and the like may, but are not counted: a check that is
# too lenient only misses a problem, one that is too strict would throw away good caches.
LAYER_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})


class CacheFormatError(ValueError):
    """The manifest or its config is not a BuildKit cache as this module knows it."""


@dataclass(frozen=True)
class WriteCheck:
    expected: int   # RUN, COPY and ADD steps of the build
    written: int    # step results with their layer in the cache (layers_written)

    @property
    def complete(self) -> bool:
        return self.written >= self.expected


def expected_layers(steps: Sequence[Step]) -> int:
    return sum(1 for step in steps if step.instruction.split(" ", 1)[0].upper() in LAYER_INSTRUCTIONS)


def cache_config_digest(manifest: Manifest) -> str:
    """The digest of the cache config a registry cache manifest points to.

    BuildKit 0.13 writes an OCI index whose entries are the layers plus the config; newer releases (and
    `image-manifest=true`) an OCI image manifest whose config is the cache config.
    """
    try:
        body = json.loads(manifest.body)
        config = body.get("config")
        if isinstance(config, dict) and config.get("mediaType") == CACHE_CONFIG_TYPE:
            return str(config["digest"])
        for entry in body.get("manifests") or []:
            if entry.get("mediaType") == CACHE_CONFIG_TYPE:
                return str(entry["digest"])
    except (ValueError, AttributeError, KeyError, TypeError) as e:
        raise CacheFormatError(f"unreadable cache manifest: {e}") from None
    raise CacheFormatError("the manifest has no BuildKit cache config: it is not a registry cache")


def layers_written(config: bytes) -> int:
    """How many step results the cache holds: the records that point at a layer, or the layers themselves
    when there are more of them. BuildKit 0.13 sometimes (1 cold build in 4 here) writes a step's layer
    only as the parent in a later step's chain, its own record without a result: the layer is there, and
    that is no loss. What the check is for is layers that are not there at all."""
    try:
        parsed = json.loads(config)
        records = parsed.get("records") or []
        with_layers = sum(1 for record in records if isinstance(record, dict) and record.get("layers"))
        return max(with_layers, len(parsed.get("layers") or []))
    except (ValueError, AttributeError) as e:
        raise CacheFormatError(f"unreadable cache config: {e}") from None


def check_write(steps: Sequence[Step], manifest: Manifest, read_blob) -> WriteCheck:
    """read_blob(digest) -> bytes of the blob in the cache's repository."""
    return WriteCheck(expected_layers(steps), layers_written(read_blob(cache_config_digest(manifest))))


def read_back(log: Log, registries, cache_ref: str, steps: Sequence[Step],
              export_again: Callable[[], bool]) -> tuple[Manifest | None, str]:
    """Read the cache just written back: a write that misses layers is exported once more from what the
    builder now holds (BuildKit 0.13 now and then drops a layer of a cold build), then reported, never
    claimed complete. Returns the manifest when the write is complete, and why the run must not go on
    to publish it ("" when it may: also when it could not be read back)."""
    host, repository, tag = split_ref(cache_ref)
    client = registries(host)
    for attempt in (1, 2):
        try:
            manifest = client.get_manifest(repository, tag)
            if manifest is None:
                raise RegistryError(f"{cache_ref} is not in the registry after the export")
            check = check_write(steps, manifest, lambda digest: client.get_blob(repository, digest))
        except (RegistryError, CacheFormatError) as e:
            log.warning(f"could not read back the cache written to {cache_ref}: {e}")
            return None, ""
        if check.complete:
            log.info(f"cache written: {check.written} layers for {check.expected} RUN/COPY/ADD steps")
            return manifest, ""
        if attempt == 1:
            log.info(f"the cache written holds {check.written} layers for {check.expected} RUN/COPY/ADD steps: "
                     "exporting it again from the builder")
            if not export_again():
                break
    log.warning(f"the cache written to {cache_ref} is incomplete: {check.written} layers for "
                f"{check.expected} RUN/COPY/ADD steps. BuildKit reported steps as cached from local records "
                "it could not export (a long-lived builder after interrupted builds or prunes). The "
                "fallback ref was not moved. Restarting the builder (or dockerd) clears that state; "
                "a builder made for the run (see the builder input) never has it")
    return None, f"the export missed layers ({check.written} of {check.expected})"
