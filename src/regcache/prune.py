"""`python -m regcache prune` and the prune action: delete the caches no run will read again.

List the repository (the registry's tags, or GitHub's package versions on ghcr.io), read each cache's
manifest and record (when it was written, for which platforms), decide with prune_plan, then delete the
manifests decided on — or, with dry-run, only print the plan. Images of `image-repository` (tagged with
cache keys) are dated by the caches' records and pruned by the same rule. Bad input is an error; a
version that cannot be deleted is a warning and the rest goes on.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from regcache.errors import RegcacheError
from regcache.log import Log
from regcache.provenance import record_subject
from regcache.prune_plan import KEY_TAG_RE, Decision, Version, decide

if TYPE_CHECKING:
    from regcache.settings import PruneSettings

WORKERS = 8   # registry requests in flight while listing


class PruneError(RegcacheError):
    """The repository cannot be listed at all: nothing was deleted."""


@dataclass
class Listing:
    versions: list[Version]
    blobs: dict[str, dict[str, int]] = field(default_factory=dict)   # manifest digest -> {blob digest: size}
    delete: Callable[[Version], None] = lambda v: None


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    from regcache.cli import apply_flags
    from regcache.inputs import PRUNE_INPUTS, env_name
    from regcache.settings import load_prune_settings

    env = apply_flags(sys.argv[2:] if argv is None else argv, os.environ if env is None else env,
                      inputs=PRUNE_INPUTS, prog="python -m regcache prune",
                      description="Delete the caches (and per-key images) no run will read again; the prune "
                                  "action's inputs as flags.")
    log = Log(github=env.get("GITHUB_ACTIONS") == "true")
    log.mask(env.get(env_name("github-token"), "").strip())
    try:
        return prune(load_prune_settings(env), log)
    except RegcacheError as e:
        log.error(str(e))
        return e.exit_code


def prune(s: PruneSettings, log: Log) -> int:
    from regcache.registry import RegistryClients
    from regcache.report import write_outputs

    registries = RegistryClients(s.registry_username, s.github_token)
    now = time.time()
    with log.group(f"List {s.cache_image}"):
        caches = _listing(s, registries, s.cache_image, log)
        log.info(f"{len(caches.versions)} manifests, {sum(len(v.tags) for v in caches.versions)} tags")
    decisions = decide(caches.versions, now, s.keep_days, s.keep_per_dockerfile)
    images: list[Decision] = []
    image_listing = None
    if s.image_repository:
        with log.group(f"List {s.image_repository}"):
            image_listing = _listing(s, registries, s.image_repository, log)
            dated = _dates_by_key(caches.versions)
            image_listing.versions = [_dated(v, dated) for v in image_listing.versions]
        images = decide(image_listing.versions, now, s.keep_days, s.keep_per_dockerfile)
    doomed = [d for d in decisions + images if d.delete]
    kept = [d for d in decisions + images if not d.delete]
    with log.group("Dry run: what a prune would delete" if s.dry_run else "Delete"):
        for d in decisions + images:
            log.info(f"  {'delete' if d.delete else 'keep  '} {', '.join(d.version.tags) or d.version.digest}: "
                     f"{d.reason}")
        chosen = [(caches, decisions), (image_listing, images)] if image_listing else [(caches, decisions)]
        jobs = [(listing, d.version) for listing, ds in chosen for d in ds if d.delete]
        failed = set() if s.dry_run else _delete_all(jobs, log)
        freed = _freed(caches, decisions, failed) + (_freed(image_listing, images, failed) if image_listing else 0)
        verb = "would delete" if s.dry_run else "deleted"
        log.info(f"{verb} {len(doomed) - len(failed)} manifests ({_tags(doomed)} tags), kept {len(kept)}; "
                 f"about {freed / 1e6:.1f} MB of layers that no kept manifest uses")
    deleted = 0 if s.dry_run else len(doomed) - len(failed)
    write_outputs({"deleted": str(deleted), "would-delete": str(len(doomed)), "kept": str(len(kept)),
                   "freed-bytes": str(0 if s.dry_run else freed)}, s.output_file, log)
    _summary(s, doomed, kept, freed, len(failed))
    return 0


def _delete_all(jobs: list[tuple[Listing, Version]], log: Log) -> set[str]:
    """Delete each (listing, version) a few at a time; the digests that could not be deleted, each warned of."""
    with ThreadPoolExecutor(WORKERS) as pool:
        errors = list(pool.map(lambda job: _delete(*job), jobs))
    failed: set[str] = set()
    for (_, v), error in zip(jobs, errors, strict=True):
        if error:
            log.warning(f"could not delete {', '.join(v.tags) or v.digest}: {error}")
            failed.add(v.digest)
    return failed


def _listing(s: PruneSettings, registries, repository: str, log: Log) -> Listing:
    """Every manifest of the repository with its tags, date, platforms and blobs."""
    from regcache.image_ref import split_ref
    from regcache.registry import RegistryError

    host, path, _ = split_ref(f"{repository}:x")
    client = registries(host)
    try:
        if s.packages_api == "github":
            listing = _github_listing(s, path)
        else:
            listing = _oci_listing(client, path)
    except RegistryError as e:
        raise PruneError(f"cannot list {repository}: {e}") from None
    with ThreadPoolExecutor(WORKERS) as pool:
        enriched = list(pool.map(lambda v: _enrich(client, path, v, listing.blobs), listing.versions))
    listing.versions = enriched
    unknown = sum(1 for v in enriched if v.created is None and any(KEY_TAG_RE.match(t) for t in v.tags))
    if unknown:
        log.info(f"{unknown} caches have no record to date them: they are kept")
    return listing


def _oci_listing(client, path: str) -> Listing:
    """Each tag's manifest, read once: its digest groups the tags, its body gives the blobs."""
    from regcache.registry import RegistryError

    tags = client.list_tags(path)
    listing = Listing([], delete=lambda v: client.delete_manifest(path, v.digest))
    by_digest: dict[str, list[str]] = {}
    with ThreadPoolExecutor(WORKERS) as pool:
        for tag, manifest in zip(tags, pool.map(lambda t: client.get_manifest(path, t), tags), strict=True):
            if manifest is None:
                continue   # deleted since the listing
            if not manifest.digest:
                raise RegistryError(f"{path}: the registry gave no digest for {tag} (Docker-Content-Digest)")
            by_digest.setdefault(manifest.digest, []).append(tag)
            listing.blobs[manifest.digest] = _blob_sizes(manifest.body)
    listing.versions = [Version(d, tuple(sorted(t))) for d, t in by_digest.items()]
    return listing


def _github_listing(s: PruneSettings, path: str) -> Listing:
    from regcache.packages_api import PackagesAPI, PackagesError

    owner, _, package = path.partition("/")
    api = PackagesAPI(s.github_api_url, s.github_token, owner, package)
    try:
        found = api.versions()
    except PackagesError as e:
        raise PruneError(f"cannot list the package {path}: {e}") from None
    ids = {v.digest: v for v in found}

    def delete(v: Version) -> None:
        api.delete(ids[v.digest])

    return Listing([Version(v.digest, tuple(sorted(v.tags)), v.created) for v in found], delete=delete)


def _enrich(client, path: str, v: Version, blobs: dict[str, dict[str, int]]) -> Version:
    """A cache's date and platforms from its record (the package's own date wins), and its blobs."""
    from regcache.provenance import RecordError, read_record
    from regcache.registry import RegistryError

    if not any(KEY_TAG_RE.match(t) for t in v.tags) or any(record_subject(t) for t in v.tags):
        return v
    try:
        if v.digest not in blobs:   # the package API lists versions without their manifests
            manifest = client.get_manifest(path, v.digest)
            if manifest is not None:
                blobs[v.digest] = _blob_sizes(manifest.body)
        record = read_record(client, path, v.digest)
    except (RegistryError, RecordError):
        return v
    if record is None:
        return v
    return replace(v, created=v.created if v.created is not None else record.written_at,
                   platforms=tuple(record.platforms), key=record.cache_key)


def _blob_sizes(body: bytes) -> dict[str, int]:
    try:
        data = json.loads(body)
        entries = list(data.get("manifests") or []) + list(data.get("layers") or []) + [data.get("config") or {}]
        return {e["digest"]: int(e.get("size", 0)) for e in entries if isinstance(e, dict) and "digest" in e}
    except (ValueError, TypeError, AttributeError):
        return {}


def _dates_by_key(versions: Sequence[Version]) -> dict[str, Version]:
    return {tag: v for v in versions for tag in v.tags if KEY_TAG_RE.match(tag)}


def _dated(v: Version, by_key: Mapping[str, Version]) -> Version:
    """An image tagged with a cache key takes that cache's date and platforms."""
    for tag in v.tags:
        cache = by_key.get(tag)
        if cache is not None:
            return replace(v, created=v.created if v.created is not None else cache.created,
                           platforms=cache.platforms)
    return v


def _freed(listing: Listing, decisions: Sequence[Decision], failed: set[str]) -> int:
    """Bytes of the blobs that only the deleted manifests use (those whose deletion failed count as kept)."""
    gone = {d.version.digest for d in decisions if d.delete} - failed
    kept = {blob for d in decisions if d.version.digest not in gone for blob in listing.blobs.get(d.version.digest, {})}
    freed: dict[str, int] = {}
    for d in decisions:
        if d.version.digest in gone:
            freed.update({b: size for b, size in listing.blobs.get(d.version.digest, {}).items() if b not in kept})
    return sum(freed.values())


def _delete(listing: Listing, v: Version) -> str:
    """Delete one version; what went wrong, or ""."""
    from regcache.packages_api import PackagesError
    from regcache.registry import RegistryError

    try:
        listing.delete(v)
        return ""
    except (RegistryError, PackagesError) as e:
        return str(e)


def _tags(decisions: Sequence[Decision]) -> int:
    return sum(len(d.version.tags) for d in decisions)


def _summary(s: PruneSettings, doomed: Sequence[Decision], kept: Sequence[Decision], freed: int, failed: int) -> None:
    from regcache.report import write_summary

    head = "would delete" if s.dry_run else "deleted"
    lines = ["## regcache prune", "", f"**{s.cache_image}: {head} {len(doomed) - failed} manifests, kept "
             f"{len(kept)}; about {freed / 1e6:.1f} MB of layers freed**", "",
             f"keep-days: {s.keep_days:g}, keep-per-dockerfile: {s.keep_per_dockerfile}", "",
             "| | tags | why |", "|---|---|---|"]
    for d in list(doomed)[:200]:
        lines.append(f"| {head} | `{', '.join(d.version.tags)}` | {d.reason} |")
    write_summary("\n".join(lines) + "\n", s.summary_file)
