"""Unit tests for the rawjson progress decoder and the build summary, on real buildx output.

The fixtures in tests/fixtures/rawjson/ were captured from real engines (see their README.md): buildx 0.13.1
with dockerd 26's embedded BuildKit (pretty-printed objects), and in tests/fixtures/rawjson/buildx-0.29.1/
buildx 0.29.1 with BuildKit v0.34.2 in a docker-container builder (one object per line). Every fixture test
runs on both; what legitimately differs between the two lives in the CAPTURES table.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regcache.progress import (
    BuildProgress,
    Step,
    dockerfile_error_location,
    parse_timestamp,
)
from regcache.rawjson import RawJsonStream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rawjson"
FIXTURE_NAMES = ["cold", "warm", "fail", "export-refused", "export-unauthorized", "export-refused-strict"]
EXPORT_VERTEX = "exporting cache to registry"
EMPTY_LAYER = "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1"


@dataclass(frozen=True)
class Capture:
    """One set of captured fixtures and what differs in it from the other set."""

    directory: Path
    pretty: bool                 # each object pretty-printed over many lines (0.13) or one per line
    open_registry: str           # host:port of the open registry, the one with htpasswd, and a closed port
    auth_registry: str
    closed_port: str
    closed_scheme: str           # the scheme BuildKit tried last on the closed port
    solve_error: str             # how buildx starts the last line of a failed build
    image_export_vertex: str     # the vertex of the image export
    completions: int             # completion lines of the cold build (one per vertex that completes)
    cold_image_digest: str       # image_digest() of the cold build
    containerd_store: bool       # the engine's image store, which decides what its image ID is
    cold_image_id: str           # the ID of the cold build's image in that engine
    refused_blob: str            # the blob named by the export error (the first upload to fail)
    unauthorized_blob: str
    strict_blob: str


CAPTURES = {
    "0.13.1": Capture(
        directory=FIXTURES,
        pretty=True,
        open_registry="localhost:15001",
        auth_registry="localhost:15002",
        closed_port="15003",
        closed_scheme="https",
        solve_error="ERROR: failed to solve: ",
        image_export_vertex="exporting to image",           # the docker driver: into the engine's store
        completions=13,
        # containerd image store: a manifest list (image manifest + provenance attestation manifest)
        cold_image_digest="sha256:4d1d886fa60ce1b1b14fbaa0c22b477924c4f97998adb1e467d9070d31e2aa08",
        containerd_store=True,
        cold_image_id="sha256:4d1d886fa60ce1b1b14fbaa0c22b477924c4f97998adb1e467d9070d31e2aa08",
        refused_blob=EMPTY_LAYER,
        unauthorized_blob=EMPTY_LAYER,
        strict_blob=EMPTY_LAYER,
    ),
    "0.29.1": Capture(
        directory=FIXTURES / "buildx-0.29.1",
        pretty=False,
        open_registry="localhost:15101",
        auth_registry="localhost:15102",
        closed_port="15103",
        closed_scheme="http",
        solve_error="ERROR: failed to build: failed to solve: ",
        image_export_vertex="exporting to docker image format",  # docker-container --load: a tarball...
        completions=14,                                          # ...and buildx's own "importing to docker"
        # a single image manifest (no attestation manifest in a --load to the classic store)
        cold_image_digest="sha256:b3fbc0c8afd9d4ee80f982ad8708a0169c13ab6f8d798e0624ae532dad7248f0",
        containerd_store=False,   # the classic store: an image's ID is its config's digest
        cold_image_id="sha256:59280a0a4309a5e9cff93648e16445b3919d21dc711ba4beea30769f5b80051b",
        # the layers are written concurrently: which upload fails first differs from run to run
        refused_blob="sha256:da2d6226facb3616e63a63d4b11a60ce506f2f620c7db1a687285d633178af5f",
        unauthorized_blob="sha256:12e75fb40c1d9cadd244aed7a62f04aaaf077fb48ff4fae40b9b7dafce9489cf",
        strict_blob="sha256:12e75fb40c1d9cadd244aed7a62f04aaaf077fb48ff4fae40b9b7dafce9489cf",
    ),
}
VERSIONS = list(CAPTURES)
BOTH = pytest.mark.parametrize("version", VERSIONS)
EACH_FIXTURE = pytest.mark.parametrize(("version", "name"), [(v, n) for v in VERSIONS for n in FIXTURE_NAMES])


def fixture(name: str, version: str = "0.13.1") -> str:
    return (CAPTURES[version].directory / f"{name}.stderr").read_text()


def decode(text: str, sizes: list[int] | None = None) -> list[dict | str]:
    """Feed text in chunks of the given sizes (cycled), or all at once."""
    stream = RawJsonStream()
    events: list[dict | str] = []
    if sizes is None:
        events += stream.feed(text)
    else:
        pos, i = 0, 0
        while pos < len(text):
            size = sizes[i % len(sizes)]
            events += stream.feed(text[pos : pos + size])
            pos += size
            i += 1
    return events + stream.close()


def progress_of(events: list[dict | str]) -> tuple[BuildProgress, list[str]]:
    progress = BuildProgress()
    lines: list[str] = []
    for event in events:
        lines += progress.update(event)
    return progress, lines


def run(name: str, version: str = "0.13.1") -> tuple[BuildProgress, list[str], list[dict | str]]:
    events = decode(fixture(name, version))
    progress, lines = progress_of(events)
    return progress, lines, events


def texts(events: list[dict | str]) -> list[str]:
    return [e for e in events if isinstance(e, str)]


def vertex_names(events: list[dict | str]) -> set[str]:
    return {v["name"] for e in events if isinstance(e, dict) for v in e.get("vertexes", []) if "name" in v}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- the stream decoder on the captured output --------------------------------------------------------


def test_both_captures_hold_the_six_fixtures():
    for capture in CAPTURES.values():
        assert sorted(p.stem for p in capture.directory.glob("*.stderr")) == sorted(FIXTURE_NAMES)


@EACH_FIXTURE
def test_fixture_decodes_to_objects_and_the_real_text_lines(version, name):
    c = CAPTURES[version]
    raw = fixture(name, version)
    events = decode(raw)
    objects = [e for e in events if isinstance(e, dict)]
    json_lines = [line for line in raw.split("\n") if line.startswith("{")]
    if c.pretty:
        assert len(objects) == raw.count("\n}\n") + raw.endswith("\n}")
        assert set(json_lines) == {"{"}
    else:
        assert [json.loads(line) for line in json_lines] == objects   # each line one whole object
    assert all(set(o) <= {"vertexes", "statuses", "logs", "warnings"} for o in objects)
    lines = texts(events)
    assert all(not line.startswith(("{", " ", "}")) or "|" in line for line in lines)
    if name == "fail":
        assert lines[0] == "Dockerfile:10"
        assert lines[-1].startswith(f'{c.solve_error}process "/bin/sh -c echo')
        assert '  10 | >>> RUN echo "$GREETING from the build" && \\' in lines
        assert len(lines) == 9
    elif name == "export-refused-strict":
        assert len(lines) == 1 and lines[0].startswith(f"{c.solve_error}error writing layer blob:")
    else:
        assert lines == []


@EACH_FIXTURE
def test_fixture_in_random_chunks_decodes_the_same(version, name):
    raw = fixture(name, version)
    whole = decode(raw)
    rng = random.Random(f"{version}-{name}")
    for _ in range(5):
        sizes = [rng.randint(1, 700) for _ in range(50)]
        assert decode(raw, sizes) == whole
    assert decode(raw, [1]) == whole


@EACH_FIXTURE
def test_fixture_summary_is_the_same_whatever_the_chunks(version, name):
    raw = fixture(name, version)
    progress, lines = progress_of(decode(raw))
    rng = random.Random(f"{version}-{name}-summary")
    other, other_lines = progress_of(decode(raw, [rng.randint(1, 300) for _ in range(64)]))
    assert other_lines == lines
    assert other.steps() == progress.steps()
    assert other.cache_hit() == progress.cache_hit()


@EACH_FIXTURE
def test_the_other_format_gives_the_same_events(version, name):
    """buildx 0.13 pretty-prints each object, buildx 0.15+ writes one per line: either way, the same events."""
    events = decode(fixture(name, version))
    compact = "".join((json.dumps(e) if isinstance(e, dict) else e) + "\n" for e in events)
    pretty = "".join((json.dumps(e, indent=2) if isinstance(e, dict) else e) + "\n" for e in events)
    for text in (compact, pretty):
        assert decode(text) == events
        assert decode(text, [17, 3, 250]) == events


# -- what the captured builds say ---------------------------------------------------------------------


@BOTH
def test_cold_build_runs_every_step_and_exports_the_cache(version):
    c = CAPTURES[version]
    progress, lines, events = run("cold", version)
    ref = f"{c.open_registry}/x/cache:t"
    assert f"importing cache manifest from {ref}" in vertex_names(events)
    assert EXPORT_VERTEX in vertex_names(events)
    assert c.image_export_vertex in vertex_names(events)
    steps = progress.steps()
    assert [(s.stage, s.index, s.total, s.instruction) for s in steps] == [
        ("stage-1", 3, 3, "RUN cat /out.txt"),
        ("stage-1", 2, 3, "COPY --from=builder /out.txt /out.txt"),
        ("builder", 4, 4, "RUN echo building && tr a-z A-Z < hello.txt > /out.txt && echo done"),
        ("builder", 3, 4, "COPY hello.txt ."),
        ("builder", 2, 4, "WORKDIR /src"),
    ]
    assert not any(s.cached for s in steps)
    assert all(s.duration is not None and s.duration >= 0 and s.error is None for s in steps)
    assert progress.cache_hit() == "none"
    # A cache that does not exist yet: the import vertex fails with "not found", the build goes on.
    assert progress.cache_import_errors() == [
        (ref, f"failed to configure registry cache importer: {ref}: not found")
    ]
    assert progress.cache_export_errors() == []
    assert progress.failed_step() is None
    assert dockerfile_error_location(texts(events)) is None
    assert progress.image_exported() and not progress.cache_export_running()
    assert progress.image_digest() == c.cold_image_digest
    assert progress.image_id(c.containerd_store) == c.cold_image_id


@BOTH
def test_cold_build_log_lines_are_readable(version):
    _, lines, _ = run("cold", version)
    run_line = next(i for i, line in enumerate(lines) if "[builder 4/4] RUN echo building" in line)
    number = lines[run_line].split()[0]
    assert number.startswith("#")
    assert lines[run_line - 2 : run_line] == [f"{number} building", f"{number} done"]
    assert lines[run_line].endswith("s") and "CACHED" not in lines[run_line]
    assert any(line.endswith(" HELLO") for line in lines)
    assert any("exporting cache to registry  " in line for line in lines)
    assert any(
        f"importing cache manifest from {CAPTURES[version].open_registry}/x/cache:t  ERROR: failed to configure"
        in line for line in lines
    )
    # "#n" numbers go to vertices as they start (like buildx), so they are 1..k, each with one name
    completion = [line for line in lines if re.match(r"^#\d+ .*  (CACHED|DONE|\d+\.\ds|ERROR: .*)$", line)]
    assert len(completion) == CAPTURES[version].completions
    numbers = [int(line.split()[0][1:]) for line in completion]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    # "load build definition" runs twice in BuildKit; it is reported once
    assert sum("load build definition" in line for line in lines) == 1


@BOTH
@pytest.mark.parametrize("name", ["cold", "warm", "export-refused", "export-unauthorized", "export-refused-strict"])
def test_the_image_is_done_while_the_cache_export_runs(version, name):
    """What arms cache-timeout (regcache.main): the image export has completed and the cache export runs."""
    progress = BuildProgress()
    seen = []
    for event in decode(fixture(name, version)):
        progress.update(event)
        seen.append((progress.image_exported(), progress.cache_export_running()))
    armed = seen.index((True, True))
    assert not any(running for _, running in seen[:armed])   # the cache export starts after the image is done
    assert seen[-1] == (True, False)


@BOTH
def test_warm_build_is_a_full_cache_hit_from_the_registry(version):
    progress, lines, events = run("warm", version)
    steps = progress.steps()
    assert len(steps) == 5 and all(s.cached for s in steps)
    assert progress.cache_hit() == "full"
    assert progress.cache_import_errors() == []
    assert progress.cache_export_errors() == []
    assert sum(line.endswith("  CACHED") for line in lines) == 5
    # the FROM vertex is a step of its own but not cache work
    assert any(f"FROM {CAPTURES[version].open_registry}/x/base:1@sha256:" in n for n in vertex_names(events))
    assert all(not s.instruction.startswith("FROM") for s in steps)
    assert progress.image_exported()


@BOTH
def test_failed_build_names_the_step_and_the_dockerfile_line(version):
    c = CAPTURES[version]
    progress, lines, events = run("fail", version)
    failed = progress.failed_step()
    assert failed is not None
    assert (failed.stage, failed.index, failed.total) == (None, 3, 4)
    assert failed.instruction.startswith('RUN echo "hello from the build"')  # $GREETING is expanded
    assert failed.error.endswith("did not complete successfully: exit code: 3")
    assert failed.duration is not None and not failed.cached
    assert dockerfile_error_location(texts(events)) == ("Dockerfile", 10)
    assert dockerfile_error_location(progress.text_lines()) == ("Dockerfile", 10)
    assert texts(events)[-1] == f"{c.solve_error}{failed.error}"
    # the failed step's stdout and stderr come before its ERROR line
    n = next(i for i, line in enumerate(lines) if "[3/4] RUN" in line)
    number = lines[n].split()[0]
    assert lines[n - 2 : n] == [f"{number} hello from the build", f"{number} warning: about to fail"]
    assert "  ERROR: process" in lines[n]
    # the step after the failure never ran: listed, but not counted in the cache hit
    never = progress.steps()[0]
    assert never.instruction == "RUN echo never reached"
    assert never.duration is None and not never.cached and never.error is None
    assert progress.cache_hit() == "partial"  # the first two steps came from the local cache
    # no cache export (nor image export) on a failed build; the import of a missing ref says "not found"
    assert progress.cache_export_errors() == []
    assert EXPORT_VERTEX not in vertex_names(events)
    assert not progress.image_exported()
    ref = f"{c.open_registry}/x/cache:fail"
    assert progress.cache_import_errors() == [(ref, f"failed to configure registry cache importer: {ref}: not found")]
    assert texts(events)[-1] in lines


def _refused(c: Capture, path: str) -> str:
    return (f'failed to do request: Head "{c.closed_scheme}://localhost:{c.closed_port}/v2/x/cache/{path}": '
            f"dial tcp 127.0.0.1:{c.closed_port}: connect: connection refused")


def _unauthorized(c: Capture, path: str) -> str:
    return f"unexpected status from HEAD request to http://{c.auth_registry}/v2/x/cache/{path}: 401 Unauthorized"


@BOTH
@pytest.mark.parametrize("name", ["export-refused", "export-unauthorized"])
def test_ignored_export_error_is_only_a_vertex_error(version, name):
    c = CAPTURES[version]
    if name == "export-refused":
        import_error = _refused(c, "manifests/t")
        export_error = "error writing layer blob: " + _refused(c, f"blobs/{c.refused_blob}")
    else:
        import_error = _unauthorized(c, "manifests/t")
        export_error = "error writing layer blob: " + _unauthorized(c, f"blobs/{c.unauthorized_blob}")
    progress, lines, events = run(name, version)
    assert texts(events) == []  # ignore-error=true: exit 0, no text, no warning
    assert progress.warnings() == []
    assert [e for _, e in progress.cache_import_errors()] == [
        f"failed to configure registry cache importer: {import_error}"]
    assert progress.cache_export_errors() == [export_error]
    assert any(line.endswith(f"{EXPORT_VERTEX}  ERROR: {export_error}") for line in lines)
    assert progress.failed_step() is None
    assert progress.cache_hit() == "full"  # the steps were in the local cache already
    assert progress.image_exported()       # the image was done before the cache export failed


@BOTH
def test_strict_export_error_is_a_vertex_error_and_the_final_text(version):
    c = CAPTURES[version]
    progress, _, events = run("export-refused-strict", version)
    [error] = progress.cache_export_errors()
    assert error == "error writing layer blob: " + _refused(c, f"blobs/{c.strict_blob}")
    assert texts(events) == [f"{c.solve_error}{error}"]
    assert progress.failed_step() is None
    assert dockerfile_error_location(texts(events)) is None
    assert progress.image_exported()   # exit 1, yet the image itself was exported first


@EACH_FIXTURE
def test_slowest_is_sorted_and_bounded(version, name):
    progress, _, _ = run(name, version)
    slow = progress.slowest(3)
    assert len(slow) <= 3
    assert [s.duration for s in slow] == sorted((s.duration for s in slow), reverse=True)
    assert all(s.duration is not None for s in slow)
    assert progress.slowest(0) == []


# -- synthetic SolveStatus cases -----------------------------------------------------------------------

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def vx(**fields) -> dict:
    return {"vertexes": [{"digest": D1, **fields}]}


def test_partial_fields_merge_and_later_non_empty_fields_win():
    progress = BuildProgress()
    assert progress.update(vx(name="[builder 2/4] RUN make")) == []
    assert progress.update(vx(started="2024-01-01T00:00:00.100000000Z")) == []
    assert progress.update(vx(name="", inputs=["sha256:x"])) == []
    lines = progress.update(vx(completed="2024-01-01T00:00:01.300000000Z"))
    assert lines == ["#1 [builder 2/4] RUN make  1.2s"]
    [step] = progress.steps()
    assert step == Step(
        digest=D1,
        name="[builder 2/4] RUN make",
        cached=False,
        duration=pytest.approx(1.2),
        error=None,
        stage="builder",
        index=2,
        total=4,
        instruction="RUN make",
    )
    # the same completion again says nothing new
    assert progress.update(vx(name="[builder 2/4] RUN make", completed="2024-01-01T00:00:01.300000000Z")) == []


def test_cached_only_when_true_and_it_sticks():
    progress = BuildProgress()
    progress.update(vx(name="[2/2] COPY . .", cached=False, started="2024-01-01T00:00:00Z"))
    assert progress.steps()[0].cached is False
    progress.update(vx(cached=True, completed="2024-01-01T00:00:00Z"))
    progress.update(vx(cached=False))
    assert progress.steps()[0].cached is True
    assert progress.cache_hit() == "full"


def test_cached_completion_line_says_cached():
    progress = BuildProgress()
    lines = progress.update(
        vx(name="[2/2] COPY . .", cached=True, started="2024-01-01T00:00:00Z", completed="2024-01-01T00:00:00Z")
    )
    assert lines == ["#1 [2/2] COPY . .  CACHED"]


@pytest.mark.parametrize(
    ("started", "completed", "seconds"),
    [
        ("2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:02.623456789Z", 2.5),
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:01.5Z", 1.5),
        ("2024-05-01T10:00:00.999999999+02:00", "2024-05-01T08:00:03.999999Z", 3.0),
        ("2024-05-01T23:59:59.900000001Z", "2024-05-02T00:00:00.100000001Z", 0.2),
    ],
)
def test_timestamps_with_nanoseconds_and_offsets(started, completed, seconds):
    progress = BuildProgress()
    progress.update(vx(name="[1/1] RUN x", started=started, completed=completed))
    assert progress.steps()[0].duration == pytest.approx(seconds, abs=1e-5)


@pytest.mark.parametrize("value", ["", "yesterday", None, 12, "2024-13-01T00:00:00Z", "2024-01-01"])
def test_bad_timestamps_are_none(value):
    assert parse_timestamp(value) is None


def test_bad_timestamps_do_not_break_the_summary():
    progress = BuildProgress()
    lines = progress.update(vx(name="[1/1] RUN x", started="soon", completed="later"))
    assert lines == ["#1 [1/1] RUN x  DONE"]
    assert progress.steps()[0].duration is None


def test_a_vertex_that_runs_twice_adds_up_its_runs():
    progress = BuildProgress()
    progress.update(vx(name="[internal] load x", started="2024-01-01T00:00:00Z", completed="2024-01-01T00:00:01Z"))
    progress.update(vx(started="2024-01-01T00:00:05Z"))
    progress.update(vx(started="2024-01-01T00:00:05Z", completed="2024-01-01T00:00:07Z"))
    assert progress._vertices[D1].duration == pytest.approx(3.0)


def test_step_names():
    progress = BuildProgress()
    names = {
        D1: "[linux/arm64 builder 2/4] RUN make",
        D2: "[3/5] FROM docker.io/library/alpine:3.20@sha256:abc",
        "sha256:3": "[internal] load build context",
        "sha256:4": "[stage-1 1/1] COPY --from=builder /a /b",
        "sha256:5": "[builder 10/12] RUN <<EOF\necho hi\nEOF",
        "sha256:6": "exporting to image",
    }
    progress.update({"vertexes": [{"digest": d, "name": n} for d, n in names.items()]})
    steps = progress.steps()
    assert [(s.platform, s.stage, s.index, s.total) for s in steps] == [
        ("linux/arm64", "builder", 2, 4),
        (None, "stage-1", 1, 1),
        (None, "builder", 10, 12),
    ]
    assert steps[2].instruction == "RUN <<EOF\necho hi\nEOF"
    assert progress.cache_hit() == "none"  # nothing ran


def test_failed_from_step_is_the_failed_step_and_a_real_error_beats_a_cancel():
    progress = BuildProgress()
    t = "2024-01-01T00:00:00Z"
    progress.update(
        {
            "vertexes": [
                {"digest": D1, "name": "[a 2/2] RUN sleep 9", "completed": t, "error": "context canceled"},
                {"digest": D2, "name": "[b 1/2] FROM x", "completed": t, "error": "pull access denied"},
            ]
        }
    )
    assert progress.failed_step().digest == D2
    assert progress.steps()[0].digest == D1  # FROM left out of steps()
    assert progress.errors() == [("[a 2/2] RUN sleep 9", "context canceled"), ("[b 1/2] FROM x", "pull access denied")]


def test_error_arriving_after_completion_is_reported():
    progress = BuildProgress()
    t = "2024-01-01T00:00:00Z"
    assert progress.update(vx(name="exporting cache to registry", started=t, completed=t)) == [
        "#1 exporting cache to registry  0.0s"
    ]
    assert progress.update(vx(completed=t, error="boom")) == ["#1 exporting cache to registry  ERROR: boom"]
    assert progress.cache_export_errors() == ["boom"]


def test_cache_vertices_of_other_backends():
    progress = BuildProgress()
    t = "2024-01-01T00:00:00Z"
    names = [
        ("importing cache manifest from gha:123", "import failed"),
        ("exporting cache to GitHub Actions Cache", "gha failed"),
        ("exporting cache to client directory", "local failed"),
        ("preparing layers for inline cache", "inline failed"),
        ("exporting to image", "image failed"),
    ]
    progress.update(
        {
            "vertexes": [
                {"digest": f"sha256:{i}", "name": n, "started": t, "completed": t, "error": e}
                for i, (n, e) in enumerate(names)
            ]
        }
    )
    assert [e for _, e in progress.cache_import_errors()] == ["import failed"]
    assert progress.cache_export_errors() == ["gha failed", "local failed", "inline failed"]


@pytest.mark.parametrize(
    ("name", "error", "exported"),
    [
        ("exporting to image", "", True),                        # docker driver, --push
        ("exporting to docker image format", "", True),          # docker-container --load
        ("exporting to oci image format", "", True),             # --output type=oci
        ("exporting to image", "failed to push", False),
        ("exporting cache to registry", "", False),
        ("importing to docker", "", False),
    ],
)
def test_image_exported_by_each_exporter(name, error, exported):
    progress = BuildProgress()
    t = "2024-01-01T00:00:00Z"
    progress.update(vx(name=name, started=t))
    assert not progress.image_exported()
    progress.update(vx(completed=t, error=error))
    assert progress.image_exported() is exported


def test_logs_are_split_into_lines_across_events_and_flushed_on_completion():
    progress = BuildProgress()
    t = "2024-01-01T00:00:00Z"
    progress.update(vx(name="[1/1] RUN x", started=t))
    assert progress.update({"logs": [{"vertex": D1, "stream": 1, "data": b64("one\ntw")}]}) == ["#1 one"]
    assert progress.update({"logs": [{"vertex": D1, "stream": 2, "data": b64("err\r\n")}]}) == ["#1 err"]
    assert progress.update({"logs": [{"vertex": D1, "stream": 1, "data": b64("o\nthr")}]}) == ["#1 two"]
    lines = progress.update({**vx(completed="2024-01-01T00:00:02Z"), "logs": [{"vertex": D1, "data": b64("ee")}]})
    assert lines == ["#1 three", "#1 [1/1] RUN x  2.0s"]
    assert progress.update({"logs": [{"vertex": D1, "data": "not base64!"}]}) == []


def test_warnings_are_decoded():
    progress = BuildProgress()
    lines = progress.update(
        {"warnings": [{"vertex": D1, "level": 1, "short": b64("JSONArgsRecommended: use JSON"), "detail": []}]}
    )
    assert lines == ["#1 WARN: JSONArgsRecommended: use JSON"]
    assert progress.update({"warnings": [{"short": b64("no vertex")}]}) == ["WARN: no vertex"]
    assert progress.warnings() == ["JSONArgsRecommended: use JSON", "no vertex"]


def test_junk_events_are_ignored():
    progress = BuildProgress()
    assert progress.update({}) == []
    assert progress.update({"vertexes": [None, {"name": "no digest"}, {"digest": ""}], "logs": "x"}) == []
    assert progress.steps() == [] and progress.cache_hit() == "none" and progress.failed_step() is None


def test_text_events_pass_through():
    progress = BuildProgress()
    assert progress.update("ERROR: failed to solve: x") == ["ERROR: failed to solve: x"]
    assert progress.text_lines() == ["ERROR: failed to solve: x"]


# -- synthetic stream cases ----------------------------------------------------------------------------


def test_text_between_objects_and_a_trailing_partial_line():
    stream = RawJsonStream()
    events = stream.feed('{\n  "a": 1\n}\nWARNING: x\n{"b": 2}\n{"c": {\n')
    assert events == [{"a": 1}, "WARNING: x", {"b": 2}]
    assert stream.feed('  "d": 3\n}}\n') == [{"c": {"d": 3}}]
    assert stream.feed("ERROR: no newline at the end") == []
    assert stream.close() == ["ERROR: no newline at the end"]
    assert stream.close() == []


def test_lines_that_look_like_json_but_are_not():
    events = decode('{not json}\n{"ok": true}\n{ "open": \nERROR: broken\n[1/2] RUN x\n\n   \n{"tail": 1}')
    assert events == ["{not json}", {"ok": True}, '{ "open": ', "ERROR: broken", "[1/2] RUN x", {"tail": 1}]


def test_an_object_that_never_closes_is_text_at_close():
    stream = RawJsonStream()
    assert stream.feed('{\n  "vertexes": [\n') == []
    assert stream.close() == ["{", '  "vertexes": [']


def test_two_objects_on_one_line_and_crlf():
    assert decode('{"a": 1}{"b": 2}\r\n{"c": 3} trailing\r\n') == [{"a": 1}, {"b": 2}, {"c": 3}, "trailing"]


def test_braces_inside_strings_do_not_confuse_the_decoder():
    obj = {"logs": [{"vertex": D1, "data": b64("x"), "note": "}\n{\n}"}]}
    pretty = json.dumps(obj, indent=2) + "\n"
    assert decode(pretty) == [obj]
    assert decode(pretty, [1]) == [obj]


@BOTH
@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=12_000), max_size=30))
def test_any_split_of_the_failure_output_decodes_the_same(version, cuts):
    raw = fixture("fail", version)
    stream = RawJsonStream()
    events: list[dict | str] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += stream.feed(raw[last:cut])
        last = cut
    events += stream.feed(raw[last:]) + stream.close()
    assert events == decode(raw)


# -- Dockerfile error location -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["Dockerfile:3", "--------------------", ">>> RUN false", "--------------------", "ERROR: x"],
            ("Dockerfile", 3),
        ),
        (["ci.Dockerfile:12", "--------------------", "ERROR: x"], ("ci.Dockerfile", 12)),
        (["Dockerfile:10-12", "-----", "ERROR: x"], ("Dockerfile", 10)),
        (["ERROR: failed to solve: localhost:5000", "localhost:5000"], None),
        (["Dockerfile:3"], None),
        ([], None),
        (["a.Dockerfile:1", "-----", "b.Dockerfile:7", "-----", "ERROR: y", "c:9", "-----"], ("b.Dockerfile", 7)),
    ],
)
def test_dockerfile_error_location(lines, expected):
    assert dockerfile_error_location(lines) == expected


# -- performance -----------------------------------------------------------------------------------------


def _big_stream(target: int, pretty: bool) -> str:
    parts: list[str] = []
    size = 0
    i = 0
    while size < target:
        obj = {
            "vertexes": [
                {
                    "digest": f"sha256:{i % 50:064x}",
                    "name": f"[{i % 50 + 1}/50] RUN step {i % 50}",
                    "started": "2024-01-01T00:00:00.123456789Z",
                }
            ],
            "statuses": [
                {
                    "id": f"s{i}",
                    "vertex": f"sha256:{i % 50:064x}",
                    "current": i,
                    "timestamp": "2024-01-01T00:00:00.123456789Z",
                }
            ],
            "logs": [
                {
                    "vertex": f"sha256:{i % 50:064x}",
                    "stream": 1,
                    "data": b64(f"line {i}\n" * 5),
                    "timestamp": "2024-01-01T00:00:00.123456789Z",
                }
            ],
        }
        text = (json.dumps(obj, indent=2) if pretty else json.dumps(obj)) + "\n"
        parts.append(text)
        size += len(text)
        i += 1
        if i % 1000 == 0:
            parts.append("some plain text line\n")
    return "".join(parts)


@pytest.mark.parametrize("pretty", [True, False], ids=["pretty", "one-per-line"])
def test_a_5mb_stream_parses_fast(pretty):
    raw = _big_stream(5_000_000, pretty)
    count = raw.count('"vertexes"')
    start = time.perf_counter()
    events = decode(raw, [4096, 1, 37, 65536, 512])
    elapsed = time.perf_counter() - start
    assert sum(isinstance(e, dict) for e in events) == count
    assert elapsed < 5.0, elapsed  # about 0.1-0.3 s on a laptop; generous for slow CI


def test_one_huge_object_in_small_chunks_is_not_quadratic():
    obj = {"logs": [{"vertex": D1, "stream": 1, "data": "A" * 5_000_000}]}
    for raw in (json.dumps(obj, indent=2) + "\n", json.dumps(obj) + "\n"):
        start = time.perf_counter()
        assert decode(raw, [1024]) == [obj]
        assert time.perf_counter() - start < 5.0


def test_a_persistent_builder_counts_each_step_once_and_unneeded_steps_as_cached():
    """BuildKit lists the planned graph, then solves only the last step, from cache, under another digest."""
    progress = BuildProgress()
    planned = {f"sha256:p{i}": f"[{i}/3] RUN step {i}" for i in (1, 2, 3)}
    progress.update({"vertexes": [{"digest": d, "name": n} for d, n in planned.items()]})
    progress.update({"vertexes": [{"digest": "sha256:solved3", "name": "[3/3] RUN step 3", "cached": True,
                                   "started": "2026-11-27T10:00:00Z", "completed": "2026-11-27T10:00:00Z"}]})
    steps = progress.steps()
    assert [s.index for s in steps] == [1, 2, 3]
    assert all(s.cached for s in steps)
    assert progress.cache_hit() == "full"


@BOTH
def test_export_seconds_come_from_the_export_vertices(version):
    """What bench/ reads as data (REGCACHE_TIMINGS) instead of the log: the cache export's own seconds and
    the image export's, each its vertex's duration; None for an export that never happened."""
    c = CAPTURES[version]
    progress, lines, _ = run("cold", version)

    def logged(prefix: str) -> float:   # the completion line the log shows for that vertex: "#7 name  1.2s"
        line = next(line for line in lines if line.split(" ", 1)[1].startswith(prefix) and line.endswith("s"))
        return float(line.rsplit(" ", 1)[1].removesuffix("s"))

    assert progress.cache_export_seconds() == pytest.approx(logged(EXPORT_VERTEX), abs=0.05)
    assert progress.image_export_seconds() == pytest.approx(logged(c.image_export_vertex), abs=0.05)
    assert progress.cache_export_seconds() <= progress.cache_transfer_seconds()
    failed, _, _ = run("fail", version)
    assert failed.cache_export_seconds() is None and failed.image_export_seconds() is None
