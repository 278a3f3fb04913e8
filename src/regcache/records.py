"""A run's side of records (provenance.py holds their format and rules): read the record of the cache
found, say who wrote it and what it saved (and the likely cause when the build got less from it), and
leave the record of the cache written beside it. Nothing here fails a run: a record is information."""

from __future__ import annotations

import time
from concurrent.futures import Future

from regcache.image_ref import split_ref
from regcache.log import Log
from regcache.provenance import (
    RecordError,
    Run,
    likely_causes,
    new_record,
    read_record,
    saved_seconds,
    shortfall,
    write_record,
    written_by,
)
from regcache.registry import RegistryError
from regcache.report import Outcome
from regcache.settings import Settings


def read_of(registries, ref: str, digest: str):
    """The record of the cache at ref (manifest `digest`), None if it has none."""
    host, repository, _ = split_ref(ref)
    return read_record(registries(host), repository, digest)


def _this_run(s: Settings, o: Outcome, driver: str) -> Run:
    return Run(kind=o.kind.kind, branch=o.kind.branch, commit=s.commit, run_url=s.run_url, builder=driver,
               platforms=o.platforms, cache_key=o.cache_key, cache_version=s.cache_version,
               build_seconds=o.seconds, steps=o.steps, bases=tuple(o.bases), cache_seconds=o.cache_seconds)


def report(s: Settings, log: Log, o: Outcome, driver: str, record_call: Future):
    """Say who wrote the cache read and what it saved; warn with the likely cause when the build got less
    from it than its record promises. Returns the record (None when there is none)."""
    try:
        record = record_call.result(timeout=30)
    except TimeoutError:
        log.info("the cache's record did not arrive in time")
        return None
    except (RegistryError, RecordError) as e:
        log.info(f"could not read the cache's record: {e}")
        return None
    if record is None:
        log.info("the cache read has no record (written before regcache kept records, or by another tool): "
                 "who wrote it and what it saves are unknown")
        return None
    now = time.time()
    o.written_by, o.cache_age = written_by(record, now), max(0.0, now - record.written_at)
    o.time_saved = saved_seconds(record, o.seconds)
    run_url = f" ({record.run_url})" if record.run_url else ""
    log.info(f"cache written by {o.written_by}{run_url}")
    log.info(f"that build takes {record.cold_seconds:.1f}s without the cache (its executed steps and the work "
             f"around them); this run {o.seconds:.1f}s: saved about {o.time_saved:.1f}s")
    missed = shortfall(record, o.steps)
    if o.cache_hit != "none" and not (missed and o.probe == "exact"):
        if missed:   # read through a fallback ref: the key differs, so steps after what changed run again
            log.info(f"{len(missed)} of the steps in that cache were built again (first: {missed[0]}): this run's "
                     "key differs from the cache's")
        return record
    causes = likely_causes(record, _this_run(s, o, driver))
    what = ("none of its steps" if o.cache_hit == "none" else
            f"{len(missed)} of its steps were built again, first {missed[0]}")
    why = ("; ".join(causes) if causes else
           "nothing in the record differs from this run: a file or build arg the steps use changed, or the "
           "cache lost layers")
    log.warning(f"this run got less from the cache than its record promises ({what}; the cache was written by "
                f"{o.written_by}). Likely cause: {why}")
    return record


def write(s: Settings, log: Log, o: Outcome, driver: str, registries, read) -> None:
    """Leave the record of the cache just written beside it (a failure is a warning: the cache is there)."""
    host, repository, tag = split_ref(o.cache_ref)
    client = registries(host)
    try:
        manifest = o.cache_manifest or client.get_manifest(repository, tag)
        if manifest is None or not manifest.digest:
            raise RegistryError(f"{o.cache_ref} has no manifest digest to describe")
        record = new_record(_this_run(s, o, driver), read, time.time())
        written = write_record(client, repository, record, manifest)
        log.info(f"record written: {o.cache_ref.rpartition(':')[0]}:{written} (the build takes "
                 f"{record.cold_seconds:.1f}s without the cache)")
    except (RegistryError, RecordError) as e:
        log.warning(f"could not write the cache's record beside {o.cache_ref}: {e}. The cache itself is written")
