"""What a cache is worth: the record a write run leaves beside the cache, and what a read run makes of it.

A write run stores a small record in the cache's repository: who wrote the cache (build kind, branch,
commit, run), when, with which builder and for which platforms, and what each step cost cold. A read run
fetches the record of the cache it found and says what the cache saved: that build's steps took X cold,
this run took Y, so about X - Y. When it got fewer steps from the cache than the record promises, the
warning names what differs between the two runs.

The record is an OCI artifact: an image manifest with the empty config and layer and the record, JSON, in
one annotation, so that reading it is one small GET. Its `subject` is the cache manifest it describes, and
it is tagged `record-<algorithm>-<hex of the cache manifest's digest>`: every tag that points at that
cache (its key and each branch's fallback ref, which are manifest copies) finds the same record, with
nothing to copy. Cold costs carry over: a step that a write run had from the cache keeps the cold seconds
the record it read gave it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from regcache import __version__
from regcache.progress import Step
from regcache.registry import Manifest, RegistryClient

ARTIFACT_TYPE = "application/vnd.regcache.record.v1+json"
ANNOTATION = "dev.regcache.record"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2}
TAG_PREFIX = "record-"
MAX_STEPS = 400          # a record stays a few tens of kilobytes, far below any registry's manifest limit
MAX_NAME = 300
_DIGEST_RE = re.compile(r"^([a-z0-9]+):([a-f0-9]{32,128})$")
_RECORD_TAG_RE = re.compile(rf"^{TAG_PREFIX}(?P<algorithm>[a-z0-9]+)-(?P<hex>[a-f0-9]{{32,128}})$")


class RecordError(Exception):
    """A record that is not one regcache wrote (or a later version's): the run says so and goes on."""


@dataclass(frozen=True)
class StepCost:
    name: str               # as BuildKit names the step: "[builder 2/4] RUN make"
    seconds: float          # what the step costs cold
    measured: bool = True   # False: it came from the cache in the writing run and no earlier record knew


@dataclass(frozen=True)
class Record:
    kind: str
    branch: str
    commit: str
    run_url: str
    written_at: float                    # seconds since the epoch
    builder: str                         # the buildx driver: docker, docker-container, remote, ...
    platforms: tuple[str, ...]
    cache_key: str
    cache_version: str
    build_seconds: float                 # the writing run's own build, start to end
    steps: tuple[StepCost, ...] = ()
    other_seconds: float = 0.0           # the rest of a cold build: the context, the image export, ...
    bases: tuple[str, ...] = ()          # its FROM steps as BuildKit named them (resolved digests included)
    regcache: str = __version__

    @property
    def cold_seconds(self) -> float:
        """What the build costs without the cache, as far as the records know: every step cold, and the
        work around the steps (sending the context, exporting the image) that every build does."""
        return sum(step.seconds for step in self.steps) + self.other_seconds

    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = 1
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != 1:
                raise RecordError(f"record version {data.get('version') if isinstance(data, dict) else '?'}, "
                                  "this regcache reads version 1")
            steps = tuple(StepCost(str(s["name"]), float(s["seconds"]), bool(s.get("measured", True)))
                          for s in data.get("steps", ()))
            return cls(kind=str(data["kind"]), branch=str(data["branch"]), commit=str(data["commit"]),
                       run_url=str(data["run_url"]), written_at=float(data["written_at"]),
                       builder=str(data["builder"]), platforms=tuple(map(str, data["platforms"])),
                       cache_key=str(data["cache_key"]), cache_version=str(data["cache_version"]),
                       build_seconds=float(data["build_seconds"]), steps=steps,
                       other_seconds=float(data.get("other_seconds", 0.0)),
                       bases=tuple(map(str, data.get("bases", ()))), regcache=str(data.get("regcache", "")))
        except RecordError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RecordError(f"not a regcache record ({type(e).__name__}: {e})") from None


@dataclass(frozen=True)
class Run:
    """What the current run knows about itself when it writes a record or compares with one."""

    kind: str
    branch: str
    commit: str
    run_url: str
    builder: str
    platforms: tuple[str, ...]
    cache_key: str
    cache_version: str
    build_seconds: float
    steps: Sequence[Step] = field(default_factory=tuple)
    bases: tuple[str, ...] = ()
    cache_seconds: float = 0.0    # of build_seconds, importing and exporting cache (no cold build does)


def record_tag(cache_digest: str) -> str:
    """The tag of the record describing the cache manifest with this digest."""
    match = _DIGEST_RE.match(cache_digest)
    if not match:
        raise RecordError(f"not a manifest digest: {cache_digest!r}")
    return f"{TAG_PREFIX}{match.group(1)}-{match.group(2)}"


def record_subject(tag: str) -> str | None:
    """The digest of the cache manifest a record tag describes (record_tag's inverse), None for other tags."""
    match = _RECORD_TAG_RE.match(tag)
    return f"{match['algorithm']}:{match['hex']}" if match else None


def new_record(run: Run, read: Record | None, now: float) -> Record:
    """The record a write run leaves: executed steps at their measured time, cached ones at the cold time
    the record it read gave them (if that record names them)."""
    known = {step.name: step for step in read.steps} if read else {}
    steps_measured = sum(step.duration or 0.0 for step in run.steps)
    other = max(0.0, run.build_seconds - run.cache_seconds - steps_measured)
    costs = []
    for step in run.steps[:MAX_STEPS]:
        name = step.name[:MAX_NAME]
        if not step.cached:
            costs.append(StepCost(name, round(step.duration or 0.0, 3)))
        elif name in known:
            costs.append(known[name])
        else:
            costs.append(StepCost(name, round(step.duration or 0.0, 3), measured=False))
    return Record(kind=run.kind, branch=run.branch, commit=run.commit, run_url=run.run_url, written_at=now,
                  builder=run.builder, platforms=run.platforms, cache_key=run.cache_key,
                  cache_version=run.cache_version, build_seconds=round(run.build_seconds, 3),
                  steps=tuple(costs), other_seconds=round(other, 3), bases=tuple(b[:MAX_NAME] for b in run.bases))


def record_manifest(record: Record, subject: Manifest | None) -> Manifest:
    """The record as an OCI artifact manifest (its blobs: the two-byte empty JSON only)."""
    body: dict = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": EMPTY,
        "layers": [EMPTY],
        "annotations": {
            "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.written_at)),
            ANNOTATION: record.to_json(),
        },
    }
    if subject is not None and subject.digest and subject.media_type:
        body["subject"] = {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.body)}
    return Manifest(OCI_MANIFEST, "", json.dumps(body, separators=(",", ":")).encode())


def parse_manifest(manifest: Manifest) -> Record:
    try:
        body = json.loads(manifest.body)
        text = body["annotations"][ANNOTATION]
    except (ValueError, KeyError, TypeError) as e:
        raise RecordError(f"no regcache record in the manifest ({type(e).__name__})") from None
    if not isinstance(text, str):
        raise RecordError("the record annotation is not a string")
    return Record.from_json(text)


def write_record(client: RegistryClient, repository: str, record: Record, subject: Manifest) -> str:
    """Store the record for the cache manifest `subject`; return its tag. Raises RegistryError."""
    tag = record_tag(subject.digest)
    client.put_blob(repository, EMPTY_DIGEST, EMPTY_JSON)
    client.put_manifest(repository, tag, record_manifest(record, subject))
    return tag


def read_record(client: RegistryClient, repository: str, cache_digest: str) -> Record | None:
    """The record of the cache manifest with this digest; None when it has none (written before records, or
    by another tool). Raises RegistryError or RecordError."""
    manifest = client.get_manifest(repository, record_tag(cache_digest))
    return None if manifest is None else parse_manifest(manifest)


# -- what a read run says ------------------------------------------------------------------------------------

def age_text(seconds: float) -> str:
    """3m 10s, 2h 5m, 4d 3h: two units at most."""
    seconds = max(0, int(seconds))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for i, (unit, size) in enumerate(units[:-1]):
        if seconds >= size:
            small, small_size = units[i + 1]
            rest = seconds % size // small_size
            return f"{seconds // size}{unit}" + (f" {rest}{small}" if rest else "")
    return f"{seconds}s"


def written_by(record: Record, now: float) -> str:
    """`auto` on `auto` 3m 10s ago from 1a2b3c4 — who wrote the cache, for the log and the summary."""
    where = f" on {record.branch!r}" if record.branch else ""
    commit = f" from {record.commit[:12]}" if record.commit else ""
    return f"{record.kind}{where} {age_text(now - record.written_at)} ago{commit}"


def saved_seconds(record: Record, build_seconds: float) -> float:
    """About what the cache saved this run: the cold cost the record knows, less this run's build."""
    return round(max(0.0, record.cold_seconds - build_seconds), 1)


def shortfall(record: Record, steps: Sequence[Step]) -> list[str]:
    """The steps the record holds in the cache that this run built anyway."""
    promised = {step.name for step in record.steps}
    return [step.name for step in steps if not step.cached and step.name[:MAX_NAME] in promised]


def likely_causes(record: Record, run: Run) -> list[str]:
    """What differs between the run that wrote the cache and this one, most likely first."""
    causes = []
    if tuple(record.platforms) != tuple(run.platforms):
        causes.append(f"the cache was written for {', '.join(record.platforms) or '?'}, this run builds "
                      f"{', '.join(run.platforms)}")
    if record.cache_version != run.cache_version:
        causes.append(f"cache-version changed from {record.cache_version!r} to {run.cache_version!r}")
    theirs = _by_image(record.bases)
    for image, digest in _by_image(run.bases).items():
        if image in theirs and theirs[image] != digest:
            causes.append(f"the base image {image} changed ({theirs[image] or 'no digest'} then, "
                          f"{digest or 'no digest'} now)")
    if record.builder != run.builder:
        causes.append(f"another builder: the cache was written by a {record.builder} builder, this run uses "
                      f"a {run.builder} one")
    return causes


def _by_image(bases: Sequence[str]) -> dict[str, str]:
    """{image: digest} from FROM step names such as `[base 1/3] FROM docker.io/library/debian:13@sha256:…`."""
    found = {}
    for name in bases:
        match = re.search(r"FROM\s+(\S+)", name)
        if match:
            image, _, digest = match.group(1).partition("@")
            found[image] = digest
    return found
