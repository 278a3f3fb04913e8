"""Faults: a registry that is down, dies mid-export, errs, hangs, refuses or serves garbage; an engine that is
not there; writers racing on one ref; and cleanup on every way a run can end.

A cache problem never fails the build: each run below still builds and loads the image (exit 0, `imageid`
set) and says what went wrong in a `::warning::`. The registry faults come from tests/support/faultproxy.py,
a reverse proxy in front of the real registry.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from harness import events
from harness.action import ActionRun, run_action, sample_workspace, start_action
from harness.images import busybox_context, own_layers
from harness.registry import LocalRegistry
from tests.integration.conftest import PASSWORD, USER
from tests.integration.test_action_real import clean_builder
from tests.support.faultproxy import READS, WRITES, Fault, FaultProxy, Received

pytestmark = pytest.mark.integration

FORK_PR = events.pull_request(head_repo="contributor/rust")
# A run against a dead or erring registry: docker login, the probe's bounded retries, then the build.
FAULT_RUN_BOUND = 90.0


# -- helpers ---------------------------------------------------------------------------------------------

def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=check)


def inputs_for(host: str, repo: str, **extra: str) -> dict[str, str]:
    return {"cache-image": f"{host}/{repo}", "registry-username": USER, "github-token": PASSWORD, **extra}


# The image export's vertex: the docker driver's (engine 1) or a docker-container builder's --load (engine 2).
IMAGE_EXPORTED = r"exporting to (image|docker image format)"


def assert_built_with_warning(run: ActionRun, warning: str = "::warning::") -> None:
    """The image was built and loaded although the cache failed, and the run said why."""
    assert run.code == 0, run.log
    assert run.outputs["imageid"].startswith("sha256:"), run.log
    assert docker("image", "inspect", run.outputs["imageid"], check=False).returncode == 0
    assert warning in run.stdout, run.log
    assert "Traceback" not in run.log, run.log


def credentials(docker_config: Path) -> dict:
    config = docker_config / "config.json"
    return json.loads(config.read_text()).get("auths", {}) if config.exists() else {}


def timed(fn, *args, **kwargs):
    started = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - started


@pytest.fixture
def proxy(registry):
    with FaultProxy(registry.url) as p:
        yield p


WRITTEN_SALT = os.urandom(8).hex()   # the layers of written_cache's sample: this session's own


def read_workspace(tmp: Path) -> Path:
    """The sample whose cache written_cache writes: its readers build the same files, so the same key."""
    return own_layers(sample_workspace(tmp / "ws"), WRITTEN_SALT)


@pytest.fixture(scope="module")
def written_cache(registry, tmp_path_factory) -> str:
    """A cache written for examples/multistage at faults/read (through no proxy); returns its key."""
    tmp = tmp_path_factory.mktemp("written")
    config = tmp / "docker-config"
    config.mkdir()
    # A complete max-mode write needs layers of its own and a builder without lazily imported records
    # (ENVIRONMENT 5b).
    ws = read_workspace(tmp)
    clean_builder()
    run = run_action(ws, "push", events.push("auto"), inputs_for(registry.host, "faults/read"),
                     extra_env={"DOCKER_CONFIG": str(config)})
    assert run.code == 0 and run.outputs["cache-write"] == "true", run.log
    assert registry.manifest("faults/read", run.outputs["cache-key"]) is not None
    return run.outputs["cache-key"]


# -- the fault proxy itself --------------------------------------------------------------------------------

def test_fault_proxy_forwards_auth_streams_chunked_uploads_and_rewrites_location(registry):
    with FaultProxy(registry.url) as p:
        assert requests.get(f"{p.url}/v2/", timeout=10).status_code == 401
        auth = (USER, PASSWORD)
        assert requests.get(f"{p.url}/v2/", auth=auth, timeout=10).status_code == 200
        # A blob upload in two chunked PATCHes (a generator body is sent chunked), then the closing PUT.
        start = requests.post(f"{p.url}/v2/proxy/self/blobs/uploads/", auth=auth, timeout=10)
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        assert location.startswith(f"http://127.0.0.1:{p.port}/"), location
        data = os.urandom(300_000)
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        patch = requests.patch(location, data=(data[i:i + 70_000] for i in range(0, len(data), 70_000)),
                               auth=auth, headers={"Content-Type": "application/octet-stream"}, timeout=30)
        assert patch.status_code == 202, patch.text
        location = patch.headers["Location"]
        assert f":{p.port}/" in location
        put = requests.put(location, params={"digest": digest}, auth=auth, timeout=30)
        assert put.status_code == 201, put.text
        assert registry.blob("proxy/self", digest) == data
        got = requests.get(f"{p.url}/v2/proxy/self/blobs/{digest}", auth=auth, timeout=30)
        assert got.status_code == 200 and got.content == data
        assert (p.count("POST"), p.count("PATCH"), p.count("PUT")) == (1, 1, 1)
        assert p.writes == 3
        # Each request is kept with its sender: this client's User-Agent is python-requests'.
        assert len(p.received) == sum(p.counts.values()) == len(p.received_from("python-requests/"))
        assert [r.method for r in p.received][-4:] == ["POST", "PATCH", "PUT", "GET"]


def test_fault_proxy_modes(registry):
    auth = (USER, PASSWORD)
    with FaultProxy(registry.url, max_hold=1.5) as p:
        for code in (500, 503):
            p.set(Fault.answer(code))
            assert requests.get(f"{p.url}/v2/", auth=auth, timeout=10).status_code == code
        p.set(Fault.answer(403, methods=WRITES))
        assert requests.get(f"{p.url}/v2/", auth=auth, timeout=10).status_code == 200
        assert requests.post(f"{p.url}/v2/x/y/blobs/uploads/", auth=auth, timeout=10).status_code == 403
        p.set(Fault.answer(401, methods=READS, path_contains="/manifests/"))
        r = requests.get(f"{p.url}/v2/x/y/manifests/t", auth=auth, timeout=10)
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers
        # Held, then dropped without an answer after max_hold: nothing waits forever.
        p.set(Fault.hang())
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{p.url}/v2/", auth=auth, timeout=30)
        assert 1.0 <= time.monotonic() - started < 10
        # A held request is let go when the fault changes.
        p.set(Fault.hang(methods=WRITES))
        errors = []
        t = threading.Thread(target=lambda: errors.append(_post_error(p.url, auth)))
        t.start()
        assert p.wait_until(lambda: p.held == 1, timeout=5)
        p.set(Fault.passthrough())
        t.join(timeout=5)
        assert errors and errors[0] == "ConnectionError"
        p.die()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{p.url}/v2/", timeout=5)


def _post_error(url: str, auth) -> str:
    try:
        requests.post(f"{url}/v2/x/y/blobs/uploads/", auth=auth, timeout=30)
    except requests.RequestException as e:
        return type(e).__name__
    return "answered"


def test_fault_proxy_serves_corrupt_manifests_consistently(registry, written_cache):
    auth = (USER, PASSWORD)
    # BuildKit 0.13 writes the cache as an OCI index, newer releases as an OCI image manifest.
    accept = {"Accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"}
    with FaultProxy(registry.url) as p:
        p.set(Fault.garbage_manifest())
        head = requests.head(f"{p.url}/v2/faults/read/manifests/{written_cache}", auth=auth, headers=accept,
                             timeout=10)
        digest = head.headers["Docker-Content-Digest"]
        body = requests.get(f"{p.url}/v2/faults/read/manifests/{digest}", auth=auth, timeout=10).content
        with pytest.raises(ValueError):
            json.loads(body)
        p.set(Fault.unknown_media_type())
        r = requests.get(f"{p.url}/v2/faults/read/manifests/{written_cache}", auth=auth, headers=accept,
                         timeout=10)
        assert r.headers["Content-Type"] == r.json()["mediaType"] == "application/vnd.regcache.test.unknown.v1+json"
        entries = r.json().get("manifests") or r.json()["layers"]
        assert {m["mediaType"] for m in entries} == {r.json()["mediaType"]}
        blob = requests.get(f"{p.url}/v2/faults/read/blobs/{r.headers['Docker-Content-Digest']}", auth=auth,
                            timeout=10)
        assert blob.content == r.content


# -- a registry that is not there, or goes away --------------------------------------------------------------

def test_registry_down_before_the_build(registry, docker_config, tmp_path):
    p = FaultProxy(registry.url).start()
    host = p.host
    p.die()   # nothing listens on this port any more
    ws = sample_workspace(tmp_path / "ws")
    run, took = timed(run_action, ws, "push", events.push("auto"), inputs_for(host, "faults/down"))
    assert_built_with_warning(run)
    assert run.outputs["cache-write"] == "false"
    assert took < FAULT_RUN_BOUND, f"{took:.0f}s"
    assert credentials(docker_config) == {}


def test_registry_stopped_mid_export(engine, docker_config, tmp_path):
    """The registry dies while BuildKit uploads the cache: uploads are held until it is killed."""
    with LocalRegistry(tmp_path / "reg", username=USER, password=PASSWORD) as reg, FaultProxy(reg.url) as p:
        p.set(Fault.hang(methods=frozenset({"POST", "PATCH", "PUT"})))
        ws = sample_workspace(tmp_path / "ws")
        action = start_action(ws, "push", events.push("auto"), inputs_for(p.host, "faults/midexport"))
        try:
            # The image export completes first; the cache export follows (the log only shows a vertex when it
            # completes, so "exporting cache" itself is never seen while it runs).
            assert action.wait_for(IMAGE_EXPORTED, timeout=120), action.stdout
            assert p.wait_until(lambda: p.held >= 1, timeout=60), (action.stdout, p.records)
            reg.stop()   # kill the registry
            p.die()      # and the address it was reachable at: held uploads are cut, new ones refused
            run = action.finish(timeout=300)
        finally:
            action.kill()
    assert_built_with_warning(run, "::warning::the cache could not be written")
    assert run.outputs["cache-write"] == "false"
    assert credentials(docker_config) == {}


# -- a registry that errs, refuses or hangs ----------------------------------------------------------------

@pytest.mark.parametrize(("code", "methods"), [(500, None), (503, None), (500, WRITES), (503, WRITES)],
                         ids=["500-all", "503-all", "500-writes", "503-writes"])
def test_registry_answers_5xx(proxy, docker_config, tmp_path, code, methods):
    proxy.set(Fault.answer(code, methods=methods))
    ws = sample_workspace(tmp_path / "ws")
    repo = f"faults/e{code}-{'w' if methods else 'a'}"
    run, took = timed(run_action, ws, "push", events.push("auto"), inputs_for(proxy.host, repo))
    assert_built_with_warning(run)
    if methods:   # login and probe work; the export fails
        assert "::warning::the cache could not be written" in run.stdout, run.log
    assert run.outputs["cache-write"] == "false"
    assert took < FAULT_RUN_BOUND, f"{took:.0f}s"
    assert credentials(docker_config) == {}


HANG_BOUND = 100.0          # a hanging registry must not hold a run longer than this
EXPORT_HANG_BOUND = 45.0   # nor a hanging cache upload, once the login and the probe went through


@dataclass
class HangRun:
    run: ActionRun | None   # None: still running at the bound (then killed)
    took: float
    lines: list[tuple[float, str]]
    docker_config: Path
    requests: list[Received] = field(default_factory=list)   # what the registry (the fault proxy) received

    def first(self, pattern: str) -> float | None:
        """Seconds into the run at which a stdout line matching pattern appeared."""
        return next((t for t, line in self.lines if re.search(pattern, line)), None)

    @property
    def timeline(self) -> str:
        return "\n".join(f"{t:6.1f}s {line[:160]}" for t, line in self.lines
                         if not line.startswith("#") or "cache" in line)


def _run_against_hang(tmp: Path, proxy: FaultProxy, repo: str, bound: float, **inputs: str) -> HangRun:
    """An auto build against a hanging registry, killed if it is not done within bound."""
    config, run_tmp = tmp / "docker-config", tmp / "run-tmp"
    config.mkdir()
    run_tmp.mkdir()   # a run killed at the bound leaves its temp dir: here, not in /tmp
    ws = sample_workspace(tmp / "ws")
    action = start_action(ws, "push", events.push("auto"), {**inputs_for(proxy.host, repo), **inputs},
                          extra_env={"DOCKER_CONFIG": str(config), "TMPDIR": str(run_tmp)})
    try:
        try:
            run = action.finish(timeout=bound)
        except subprocess.TimeoutExpired:
            run = None
        took = time.monotonic() - action.started
    finally:
        action.kill()
    return HangRun(run, took, list(action.lines), config)


@pytest.fixture(scope="module")
def hang_run(engine, tmp_path_factory) -> HangRun:
    """One run against a registry that accepts every connection and never answers."""
    with FaultProxy("http://127.0.0.1:1", max_hold=HANG_BOUND + 60) as p:   # no upstream: nothing is forwarded
        p.set(Fault.hang())
        hang = _run_against_hang(tmp_path_factory.mktemp("hang"), p, "faults/hang", HANG_BOUND)
        hang.requests = list(p.received)
        return hang


def test_hanging_registry_login_and_probe_give_up_in_bounded_time(hang_run):
    """What bounds a hanging registry: docker login (~15 s), then the probe (one 15 s timeout: not retried)."""
    login = hang_run.first(r"^::warning::could not log in")
    build = hang_run.first(r"^::group::Build")
    assert login is not None and login < 30, hang_run.timeline
    assert build is not None and build - login < 75, hang_run.timeline
    assert hang_run.first(r"^::warning::could not look up the cache") is not None, hang_run.timeline


def test_hanging_registry_probe_sends_one_request_and_waits_once(hang_run):
    """The probe gives up after one 15 s timeout, not retried: the registry received exactly one request from
    regcache's own client (User-Agent "regcache"), the exact cache ref's manifest, and the probe looked up no
    other ref on that host. A time bound alone would also pass with the retries 5xx errors get."""
    probe = [r for r in hang_run.requests if r.agent.startswith("regcache")]
    assert len(probe) == 1, (probe, hang_run.timeline)
    (request,) = probe
    assert request.method == "HEAD" and request.path.startswith("/v2/faults/hang/manifests/"), request
    if hang_run.run is not None:
        assert request.path.endswith(f"/manifests/{hang_run.run.outputs['cache-key']}"), request
    warnings = [line for _, line in hang_run.lines if line.startswith("::warning::could not look up the cache")]
    assert len(warnings) == 1 and "no answer within 15s" in warnings[0], warnings
    # The others that asked were the docker CLI's login (and nothing of BuildKit's: it was given no ref to read).
    others = {r.agent.split("/")[0] for r in hang_run.requests if not r.agent.startswith("regcache")}
    assert others <= {"docker"}, others


def test_hanging_registry_does_not_hang_the_run(hang_run):
    assert hang_run.run is not None, f"still running after {hang_run.took:.0f}s:\n{hang_run.timeline}"
    assert_built_with_warning(hang_run.run)
    assert credentials(hang_run.docker_config) == {}


def test_hanging_cache_export_does_not_hang_the_run(registry, tmp_path):
    with FaultProxy(registry.url, max_hold=EXPORT_HANG_BOUND + 60) as p:
        p.set(Fault.hang(methods=WRITES))
        hang = _run_against_hang(tmp_path, p, "faults/exporthang", EXPORT_HANG_BOUND, **{"cache-timeout": "10"})
    assert hang.first(IMAGE_EXPORTED) is not None, hang.timeline   # the image itself was done
    assert hang.run is not None, f"still running after {hang.took:.0f}s:\n{hang.timeline}"
    assert_built_with_warning(hang.run, "::warning::the cache export to")
    assert "took longer than cache-timeout (10s)" in hang.run.stdout
    assert hang.run.outputs["cache-write"] == "false"


@pytest.mark.parametrize("code", [403, 401])
def test_export_denied(proxy, docker_config, registry, tmp_path, code):
    """The login and the reads work; every write is refused, as with a token without packages: write."""
    proxy.set(Fault.answer(code, methods=WRITES))
    ws = sample_workspace(tmp_path / "ws")
    repo = f"faults/denied{code}"
    run = run_action(ws, "push", events.push("auto"), inputs_for(proxy.host, repo))
    assert_built_with_warning(run, "::warning::the cache could not be written")
    assert str(code) in run.stdout
    assert run.outputs["cache-write"] == "false"
    assert registry.manifest(repo, run.outputs["cache-key"]) is None
    assert proxy.count("POST") >= 1 and proxy.count("PATCH") + proxy.count("PUT") == 0
    assert credentials(docker_config) == {}


@pytest.fixture(scope="module")
def strict_denied_run(registry, engine, tmp_path_factory) -> tuple[ActionRun, str, dict]:
    """An auto run with fail-on-cache-error: true whose export is denied (403 on every write); returns the run,
    the cache registry's host and what the registry received."""
    tmp = tmp_path_factory.mktemp("strict")
    config = tmp / "docker-config"
    config.mkdir()
    ws = sample_workspace(tmp / "ws")
    with FaultProxy(registry.url) as p:
        p.set(Fault.answer(403, methods=WRITES))
        run = run_action(ws, "push", events.push("auto"),
                         inputs_for(p.host, "faults/strict403", **{"fail-on-cache-error": "true"}),
                         extra_env={"DOCKER_CONFIG": str(config)})
        counts = {m: p.count(m) for m in ("POST", "PATCH", "PUT")}
        host = p.host
    assert credentials(config) == {}
    return run, host, counts


def test_fail_on_cache_error_fails_the_run_when_the_export_is_denied(strict_denied_run, registry):
    """With fail-on-cache-error: true a denied export fails the run: exit 1, one ::error:: with the registry's
    answer, not annotated on the Dockerfile (no step of it failed), no traceback; nothing was written.
    Without the input the same fault is a warning and the run succeeds (test_export_denied)."""
    run, _, counts = strict_denied_run
    assert run.code == 1, run.log
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, run.log
    error = errors[0]
    assert error.startswith("::error::"), error   # no file= or line=: not a Dockerfile step's failure
    assert "403" in error, error
    assert "Traceback" not in run.log, run.log
    assert run.outputs["cache-write"] == "false", run.outputs
    assert counts["POST"] >= 1 and counts["PATCH"] + counts["PUT"] == 0, counts
    assert registry.manifest("faults/strict403", run.outputs["cache-key"]) is None


def test_fail_on_cache_error_the_error_says_what_failed_and_what_to_fix(strict_denied_run):
    """The one error of the failed run is what the user reads first (the job's annotation): it says that the
    cache could not be written, to which ref, and what to fix, as the warning does without the input. Today it
    is BuildKit's text, which with BuildKit 0.34 names neither the registry nor the repository."""
    run, host, _ = strict_denied_run
    (error,) = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    ref = f"{host}/faults/strict403:{run.outputs['cache-key']}"
    assert f"the cache could not be written to {ref}" in error, error
    assert "write access" in error or "packages: write" in error, error


def test_import_denied(proxy, docker_config, written_cache, tmp_path):
    proxy.set(Fault.answer(401, methods=READS, path_contains="/manifests/"))
    ws = read_workspace(tmp_path)
    run = run_action(ws, "pull_request", FORK_PR, inputs_for(proxy.host, "faults/read"))
    assert run.outputs["cache-key"] == written_cache
    assert_built_with_warning(run)
    assert "401" in run.stdout
    assert run.outputs["cache-probe"] == "miss"
    assert proxy.writes == 0
    assert credentials(docker_config) == {}


def test_each_read_warning_names_the_ref_that_failed(proxy, docker_config, written_cache, tmp_path):
    proxy.set(Fault.answer(401, methods=READS, path_contains="/manifests/"))
    ws = read_workspace(tmp_path)
    run = run_action(ws, "pull_request", FORK_PR, inputs_for(proxy.host, "faults/read"))
    assert run.code == 0, run.log
    warnings = [line for line in run.stdout.splitlines() if line.startswith("::warning::the cache could not be read")]
    assert len(warnings) > 1, run.log   # the exact ref and the fallbacks were all tried
    for line in warnings:
        named = re.match(r"::warning::the cache could not be read from (\S+): ", line).group(1)
        failed = re.search(r"/v2/(\S+?)/manifests/([^:\s]+)", line)
        assert failed and named == f"{proxy.host}/{failed.group(1)}:{failed.group(2)}", line


@pytest.mark.parametrize("fault", [Fault.garbage_manifest(), Fault.unknown_media_type()],
                         ids=["garbage-json", "unknown-media-type"])
def test_corrupt_cache_manifest(proxy, docker_config, written_cache, tmp_path, fault):
    proxy.set(fault)
    ws = read_workspace(tmp_path)
    run = run_action(ws, "pull_request", FORK_PR, inputs_for(proxy.host, "faults/read"))
    assert run.outputs["cache-key"] == written_cache
    assert_built_with_warning(run, "::warning::the cache could not be read")
    # The probe found the ref; the warning must not then call it a missing cache.
    assert run.outputs["cache-probe"] == "exact"
    assert "this is a cold build" not in run.stdout, run.log
    assert credentials(docker_config) == {}


# -- no engine ----------------------------------------------------------------------------------------------

def test_engine_unreachable_is_a_clear_error(docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    run = run_action(ws, "push", events.push("auto"), inputs_for("localhost:1", "faults/noengine"),
                     extra_env={"DOCKER_HOST": "unix:///nonexistent.sock"}, timeout=120)
    assert run.code == 2, run.log   # EngineError: the engine, not the build or an input
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, run.log
    # It names what failed and where it looked.
    assert "Docker engine is not reachable" in errors[0] and "nonexistent.sock" in errors[0], errors[0]
    assert "Traceback" not in run.log, run.log
    assert credentials(docker_config) == {}


# -- writers racing on one ref ---------------------------------------------------------------------------------

def test_four_concurrent_writers_then_a_full_cache_hit(registry, docker_config, tmp_path):
    ws = sample_workspace(tmp_path / "ws")
    repo = f"faults/race-{os.urandom(3).hex()}"
    runs: list[ActionRun | BaseException] = [None] * 4   # type: ignore[list-item]

    def one(i: int) -> None:
        try:
            runs[i] = run_action(ws, "push", events.push("auto"), inputs_for(registry.host, repo), timeout=300)
        except BaseException as e:  # noqa: BLE001 - reported below
            runs[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=330)
    for run in runs:
        assert isinstance(run, ActionRun), run
        assert run.code == 0, run.log
        assert run.outputs["imageid"].startswith("sha256:")
        assert "Traceback" not in run.log
    key = runs[0].outputs["cache-key"]
    assert {r.outputs["cache-key"] for r in runs} == {key}
    # BuildKit 0.13 writes an OCI index of the blobs, 0.34 an image manifest (config + layers).
    index = registry.manifest(repo, key)
    assert index is not None and (index.get("manifests") or index.get("layers")), index
    for descriptor in index.get("manifests") or [index["config"], *index["layers"]]:   # every blob is there
        assert registry.blob(repo, descriptor["digest"])

    for run in runs:
        docker("rmi", "-f", run.outputs["imageid"], check=False)
    docker("buildx", "prune", "-af")
    read = run_action(ws, "pull_request", FORK_PR, inputs_for(registry.host, repo))
    assert read.code == 0, read.log
    assert read.outputs["cache-hit"] == "full", read.log
    assert read.outputs["cached-steps"] == read.outputs["total-steps"] == "7"
    assert credentials(docker_config) == {}


# -- cleanup on every path -------------------------------------------------------------------------------------

SLOW_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo "slow-step-{nonce}" && sleep 25 && echo done
"""


def _session_processes(sid: int) -> list[tuple[int, str]]:
    """(pid, argv) of the live processes in session sid (the action and whatever it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z" and int(fields[3]) == sid:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append((int(entry.name), argv.strip()))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _wait_for_no_processes(sid: int, timeout: float) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout
    while (left := _session_processes(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left



@pytest.mark.parametrize("path", ["success", "build-failure", "sigterm", "sigint-group", "sigint"])
def test_cleanup_on_every_path(registry, docker_config, tmp_path, path):
    ws = sample_workspace(tmp_path / "ws")
    nonce = os.urandom(6).hex()
    if path == "build-failure":
        dockerfile = ws / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text().replace('RUN echo "built:', f'RUN echo {nonce} && exit 3\n'
                                                                                  'RUN echo "built:'))
    elif path.startswith("sig"):
        (ws / "Dockerfile").write_text(SLOW_DOCKERFILE.format(nonce=nonce))
        busybox_context(ws)
    run_tmp = tmp_path / "run-tmp"
    run_tmp.mkdir()
    action = start_action(ws, "push", events.push("auto"), inputs_for(registry.host, "faults/cleanup"),
                          extra_env={"TMPDIR": str(run_tmp)})
    try:
        if path.startswith("sig"):
            assert action.wait_for(f"slow-step-{nonce}", timeout=120), action.stdout
            # Logged in while it builds: in the run's own docker config, never in the user's.
            assert credentials(Path(action.saved_state()["docker_config"])), "the run should be logged in"
            assert credentials(docker_config) == {}
            assert list(run_tmp.glob("regcache-*")), "the run should have its temp dir while it builds"
            # SIGTERM as `kill`, a cancelled job or a container stop sends it: to the action only. SIGINT as a
            # terminal's Ctrl-C sends it (to the whole foreground process group), or to the action only.
            action.signal(signal.SIGTERM if path == "sigterm" else signal.SIGINT, group=path == "sigint-group")
        signalled = time.monotonic()
        run = action.finish(timeout=120)
        stopped_in = time.monotonic() - signalled
        left = _wait_for_no_processes(action.pid, timeout=15)
    finally:
        action.kill()

    if path == "success":
        assert run.code == 0, run.log
    elif path == "build-failure":
        assert run.code == 1 and "::error file=Dockerfile" in run.stdout, run.log
    elif path == "sigterm":
        assert run.code == 143 and "::error::terminated" in run.stdout, run.log
    else:
        assert run.code == 130 and "::error::interrupted" in run.stdout, run.log
    if path.startswith("sig"):   # stopped, not waited for: the slow step alone takes 25 s
        assert stopped_in < 20, f"{stopped_in:.0f}s from the signal to the exit"
    assert "Traceback" not in run.log, run.log
    # Nothing left: no process of the run, no temp dir, no login, no builder it made.
    assert left == [], left
    assert list(run_tmp.glob("regcache-*")) == []   # the run's docker config is one of them
    assert not Path(run.state["docker_config"]).exists()
    assert credentials(docker_config) == {}
    assert PASSWORD not in ((docker_config / "config.json").read_text()
                            if (docker_config / "config.json").exists() else "")
    builders = docker("buildx", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [b for b in builders if re.match(rf"regcache-{action.pid}-", b)], builders
    instances = docker_config / "buildx" / "instances"
    assert not (instances.exists() and [p.name for p in instances.iterdir() if p.name.startswith("regcache-")])


def test_missing_buildx_is_one_clear_error(docker_config, tmp_path):
    """A docker CLI without its buildx plugin: one ::error:: naming the command and what to install."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = subprocess.run(["sh", "-c", "command -v docker"], capture_output=True, text=True).stdout.strip()
    wrapper = bin_dir / "docker"
    wrapper.write_text(f"""#!/bin/sh
# docker as it answers without the buildx plugin
for arg in "$@"; do
  case $arg in -*) ;; buildx) echo "docker: 'buildx' is not a docker command." >&2; exit 1 ;; *) break ;; esac
done
exec {real} "$@"
""")
    wrapper.chmod(0o755)
    ws = sample_workspace(tmp_path / "ws")
    run = run_action(ws, "push", events.push("auto"), inputs_for("localhost:1", "faults/nobuildx"),
                     extra_env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}, timeout=120)
    assert run.code == 2, run.log
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, run.log
    assert "`docker buildx inspect` failed" in errors[0] and "docker-buildx" in errors[0], errors[0]
    assert "Traceback" not in run.log, run.log
