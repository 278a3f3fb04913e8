"""The record's content and what a read run concludes from it: pure functions, no registry."""

from __future__ import annotations

import json

import pytest

from regcache.progress import Step
from regcache.provenance import (
    ANNOTATION,
    EMPTY_DIGEST,
    Record,
    RecordError,
    Run,
    StepCost,
    age_text,
    likely_causes,
    new_record,
    parse_manifest,
    record_manifest,
    record_tag,
    saved_seconds,
    shortfall,
    written_by,
)
from regcache.registry import Manifest

DIGEST = "sha256:" + "ab" * 32


def step(name: str, seconds: float | None, cached: bool = False) -> Step:
    instruction = name.split("] ", 1)[1]
    return Step(digest=name, name=name, cached=cached, duration=seconds, error=None, stage=None, index=1,
                total=3, instruction=instruction)


def run(steps, build_seconds=10.0, cache_seconds=0.0, **changes) -> Run:
    fields = dict(kind="auto", branch="auto", commit="c0ffee", run_url="https://github.com/o/r/actions/runs/1",
                  builder="docker-container", platforms=("linux/amd64",), cache_key="dockerfile-1",
                  cache_version="1", build_seconds=build_seconds, steps=steps, cache_seconds=cache_seconds,
                  bases=("[1/3] FROM docker.io/library/debian:13@sha256:" + "11" * 32,))
    fields.update(changes)
    return Run(**fields)


def test_a_cold_write_records_each_step_and_the_work_around_them():
    steps = [step("[1/3] COPY a /a", 0.5), step("[2/3] RUN make", 6.0), step("[3/3] RUN test", 1.5)]
    record = new_record(run(steps, build_seconds=10.0, cache_seconds=1.0), None, now=1000.0)
    assert [(s.name, s.seconds, s.measured) for s in record.steps] == [
        ("[1/3] COPY a /a", 0.5, True), ("[2/3] RUN make", 6.0, True), ("[3/3] RUN test", 1.5, True)]
    assert record.other_seconds == 1.0   # 10 s of build, 1 s of it the cache export, 8 s of steps
    assert record.cold_seconds == 9.0


def test_a_warm_write_keeps_the_cold_cost_the_record_it_read_gave_its_cached_steps():
    earlier = Record(kind="auto", branch="auto", commit="1", run_url="", written_at=0, builder="docker",
                     platforms=("linux/amd64",), cache_key="k0", cache_version="1", build_seconds=9,
                     steps=(StepCost("[2/3] RUN make", 6.0),), other_seconds=1.0)
    steps = [step("[1/3] COPY a /a", 0.5), step("[2/3] RUN make", 0.0, cached=True),
             step("[3/3] RUN test", 0.0, cached=True)]
    record = new_record(run(steps, build_seconds=1.5), earlier, now=1000.0)
    assert [(s.seconds, s.measured) for s in record.steps] == [(0.5, True), (6.0, True), (0.0, False)]
    assert record.cold_seconds == pytest.approx(0.5 + 6.0 + 0.0 + 1.0)


def test_the_record_goes_through_a_manifest_and_back():
    steps = [step("[1/1] RUN make", 3.25)]
    record = new_record(run(steps, build_seconds=4.0), None, now=1_700_000_000.0)
    subject = Manifest("application/vnd.oci.image.index.v1+json", DIGEST, b"{...}")
    manifest = record_manifest(record, subject)
    body = json.loads(manifest.body)
    assert body["config"]["digest"] == EMPTY_DIGEST and body["layers"] == [body["config"]]
    assert body["subject"] == {"mediaType": subject.media_type, "digest": DIGEST, "size": 5}
    assert body["annotations"]["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert parse_manifest(manifest) == record
    assert record_tag(DIGEST) == "record-sha256-" + "ab" * 32


@pytest.mark.parametrize("body", [b"not json", b"{}", json.dumps({"annotations": {ANNOTATION: "[]"}}).encode(),
                                  json.dumps({"annotations": {ANNOTATION: json.dumps({"version": 2})}}).encode(),
                                  json.dumps({"annotations": {ANNOTATION: json.dumps({"version": 1})}}).encode()])
def test_what_is_not_a_record_of_this_version_is_a_record_error(body):
    with pytest.raises(RecordError):
        parse_manifest(Manifest("application/vnd.oci.image.manifest.v1+json", "", body))


@pytest.mark.parametrize("digest", ["", "sha256:xyz", "latest", "sha256:" + "ab" * 8])
def test_only_a_digest_names_a_record(digest):
    with pytest.raises(RecordError):
        record_tag(digest)


def test_what_a_read_run_says():
    record = new_record(run([step("[1/1] RUN make", 9.0)], build_seconds=10.0), None, now=1000.0)
    assert written_by(record, now=1000.0 + 190) == "auto on 'auto' 3m 10s ago from c0ffee"
    assert saved_seconds(record, build_seconds=2.25) == 7.8
    assert saved_seconds(record, build_seconds=30.0) == 0.0
    assert [age_text(s) for s in (0, 59, 60, 3600 + 120, 86400 * 4 + 3600 * 3 + 5)] == [
        "0s", "59s", "1m", "1h 2m", "4d 3h"]


def test_a_shortfall_lists_the_recorded_steps_built_again():
    record = new_record(run([step("[1/2] COPY a /a", 0.1), step("[2/2] RUN make", 5.0)]), None, now=0)
    now = [step("[1/2] COPY a /a", 0.0, cached=True), step("[2/2] RUN make", 5.0), step("[3/3] RUN new", 1.0)]
    assert shortfall(record, now) == ["[2/2] RUN make"]


def test_the_likely_causes_name_what_differs_between_the_writer_and_this_run():
    record = new_record(run([step("[1/1] RUN make", 5.0)]), None, now=0)
    assert likely_causes(record, run([])) == []
    other = run([], platforms=("linux/arm64",), cache_version="2", builder="docker",
                bases=("[1/3] FROM docker.io/library/debian:13@sha256:" + "22" * 32,))
    causes = likely_causes(record, other)
    assert causes[0] == "the cache was written for linux/amd64, this run builds linux/arm64"
    assert causes[1] == "cache-version changed from '1' to '2'"
    assert causes[2].startswith("the base image docker.io/library/debian:13 changed (sha256:1111")
    assert causes[3].startswith("another builder: the cache was written by a docker-container builder")
