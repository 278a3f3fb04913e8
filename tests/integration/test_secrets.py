"""The registry token stays secret: never in the argv or environment of any process the run starts, printed
only inside the one `::add-mask::` line, never in the outputs, the job summary or an error, and no credential
is left in the docker config after a run, whether it succeeded or failed. A pull request from a fork never
even tries to write.

Processes are checked twice: every docker command, recorded by a `docker` first on PATH as it starts
(tests/support/argvlog.py: nothing is missed, however short); and what those start in turn (the buildx
plugin, credential helpers), by polling /proc (ProcWatch).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import events
from harness.action import ActionRun, sample_workspace, start_action
from harness.registry import LocalRegistry
from tests.integration.test_action_real import clean_builder
from tests.support.argvlog import Call, DockerCalls, containing
from tests.support.faultproxy import WRITES, FaultProxy

pytestmark = pytest.mark.integration

USER = "secret-bot"
# Distinctive, so that finding it anywhere is meaningful; the registry's real password.
TOKEN = f"rcsecret{os.urandom(12).hex()}"
FORK_PR = events.pull_request(head_repo="contributor/rust")


@pytest.fixture(scope="module")
def secret_registry(engine, tmp_path_factory):
    with LocalRegistry(tmp_path_factory.mktemp("secret-registry"), username=USER, password=TOKEN) as reg:
        yield reg


def inputs_for(host: str, repo: str, **extra: str) -> dict[str, str]:
    return {"cache-image": f"{host}/{repo}", "registry-username": USER, "github-token": TOKEN, **extra}


def _stat(pid: str) -> tuple[int, int] | None:
    """(ppid, session) of a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()   # state ppid pgrp session
        return int(fields[1]), int(fields[3])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class ProcWatch:
    """Polls /proc every ~50 ms for the run's processes: the action (its pid is its session: it was started in
    a session of its own) and every process in that session or descended from it, children of children
    included (the docker CLI's buildx plugin, credential helpers). Their argv and environment are checked.

    Processes that are not the run's are not the run's doing: BuildKit runs a RUN step as `/bin/sh -c <line>`
    under the engine's daemons, so a Dockerfile that puts the token in a RUN line shows it there. Those are
    kept apart (foreign_argv_hits), never counted as a leak.

    A poll sees a process only if it lives across one: the deterministic check of every docker command is
    tests/support/argvlog.py; this one is for what those commands start in turn.
    """

    needle: bytes
    session: int                      # the action's pid, which is its session id
    interval: float = 0.05
    max_seconds: float = 600.0
    polls: int = 0
    argv_hits: list[tuple[int, str]] = field(default_factory=list)
    foreign_argv_hits: list[tuple[int, str]] = field(default_factory=list)
    environ_hits: list[tuple[int, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)   # argv of the run's processes
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcWatch:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.scan()
            self.polls += 1
            self._stop.wait(self.interval)

    def _runs(self, pid: int, stats: dict[int, tuple[int, int]]) -> bool:
        """The process is the run's: in its session, or a descendant of the action (if one left the session)."""
        seen = set()
        while pid in stats and pid not in seen:
            if pid == self.session or stats[pid][1] == self.session:
                return True
            seen.add(pid)
            pid = stats[pid][0]
        return pid == self.session

    def scan(self) -> None:
        stats, argvs = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = _stat(entry.name)
            try:
                argv = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            except OSError:
                continue
            if stat is not None:
                stats[int(entry.name)] = stat
                argvs[int(entry.name)] = argv
        for pid, argv in argvs.items():
            text = argv.replace(b"\0", b" ").decode(errors="replace").strip()
            if not self._runs(pid, stats):
                if self.needle in argv:
                    self.foreign_argv_hits.append((pid, text))
                continue
            if self.needle in argv:
                self.argv_hits.append((pid, text))
            if pid == self.session:
                continue   # the action itself had the token as an input: its children must not
            self.seen.add(text)
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if self.needle in environ:
                self.environ_hits.append((pid, text))


@dataclass
class WatchedRun:
    run: ActionRun
    watch: ProcWatch
    docker_config: Path
    docker_calls: list[Call]


def _watched_run(tmp: Path, ws: Path, event: str, payload: dict, inputs: dict[str, str]) -> WatchedRun:
    config = tmp / "docker-config"
    config.mkdir()
    calls = DockerCalls(tmp / "docker-calls")
    action = start_action(ws, event, payload, inputs, extra_env={"DOCKER_CONFIG": str(config), "PATH": calls.path})
    watch = ProcWatch(TOKEN.encode(), session=action.pid).start()
    try:
        try:
            run = action.finish(timeout=300)
        finally:
            action.kill()
    finally:
        watch.stop()
    return WatchedRun(run, watch, config, calls.recorded())


def _calls_with_token(watched: WatchedRun) -> list[str]:
    """Every docker command of the run that carries the token: in an argument, or in its environment."""
    return containing(watched.docker_calls, TOKEN.encode())


def _commands(watched: WatchedRun) -> list[str]:
    """The docker commands of the run, as "docker login", "docker buildx build": the words before options."""
    return [" ".join(a.decode() for a in call.argv[:3] if not a.startswith(b"-")) for call in watched.docker_calls]


@pytest.fixture(scope="module")
def good_run(secret_registry, tmp_path_factory) -> WatchedRun:
    """An auto build that logs in, probes, reads, writes the cache and moves the fallback ref."""
    tmp = tmp_path_factory.mktemp("good")
    ws = sample_workspace(tmp / "ws")
    clean_builder()   # a complete max-mode write needs a builder without lazily imported records (ENVIRONMENT 5b)
    watched = _watched_run(tmp, ws, "push", events.push("auto"), inputs_for(secret_registry.host, "s/cache"))
    assert watched.run.code == 0, watched.run.log
    assert watched.run.outputs["cache-write"] == "true", watched.run.log
    return watched


@pytest.fixture(scope="module")
def failed_run(secret_registry, tmp_path_factory) -> WatchedRun:
    """A build that fails in a step that prints the token (as a tool printing a credential would). The step
    lasts a second, so that the /proc watch sees BuildKit's `/bin/sh -c` for it, with the token in its argv."""
    tmp = tmp_path_factory.mktemp("failed")
    ws = sample_workspace(tmp / "ws")
    dockerfile = ws / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(
        'RUN echo "built:',
        f'RUN echo "login failed for {USER}:{TOKEN}" >&2 && sleep 1 && exit 3\nRUN echo "built:'))
    watched = _watched_run(tmp, ws, "push", events.push("auto"), inputs_for(secret_registry.host, "s/failed"))
    assert watched.run.code == 1, watched.run.log
    return watched


def _leaks(run: ActionRun) -> dict[str, list[str]]:
    """Where the token shows, apart from the one `::add-mask::` line."""
    lines = [line for line in run.stdout.splitlines() if TOKEN in line]
    masks = [line for line in lines if line == f"::add-mask::{TOKEN}"]
    return {
        "stdout": [line[:200] for line in lines if line not in masks]
        + ([f"{len(masks)} add-mask lines"] if len(masks) != 1 else []),
        "stderr": [line[:200] for line in run.stderr.splitlines() if TOKEN in line],
        "outputs": [f"{k}={v[:200]}" for k, v in run.outputs.items() if TOKEN in v],
        "summary": [line[:200] for line in run.summary.splitlines() if TOKEN in line],
    }


def _config_problems(config: Path, host: str, run: ActionRun | None = None) -> list[str]:
    """The user's docker config, and the run's own (which must be gone), hold no credential."""
    if run is not None and Path(run.state["docker_config"]).exists():
        return [f"the run's docker config {run.state['docker_config']} is still there"]
    path = config / "config.json"
    if not path.exists():
        return []
    text = path.read_text()
    problems = []
    auths = json.loads(text).get("auths", {})
    if host in auths or f"http://{host}" in auths:
        problems.append(f"an auth entry for {host}")
    if TOKEN in text or base64.b64encode(f"{USER}:{TOKEN}".encode()).decode() in text:
        problems.append("the token")
    return problems


# -- a successful run ----------------------------------------------------------------------------------------

def test_token_is_in_no_docker_command(good_run):
    """Every docker command the run started, recorded as it started (tests/support/argvlog.py): the token is in
    none of their arguments or environments. The login reads it from stdin."""
    commands = _commands(good_run)
    for needed in ("docker info", "docker login", "docker buildx build"):
        assert needed in commands, commands
    login = next(call for call in good_run.docker_calls if call.argv[1:2] == [b"login"])
    assert b"--password-stdin" in login.argv, login.command
    assert _calls_with_token(good_run) == []
    assert not [call.command for call in good_run.docker_calls if b"INPUT_GITHUB-TOKEN" in call.env]


def test_token_is_in_no_process_argv(good_run):
    """What the docker commands start in turn (the buildx plugin, credential helpers), polled."""
    watch = good_run.watch
    assert watch.polls >= 10, f"only {watch.polls} polls: the run was not watched"
    # The docker CLI (started by path through tests/support/argvlog.py's recorder), and the child it starts in
    # turn: the buildx plugin.
    assert any(re.match(r"\S*docker buildx build ", argv) for argv in watch.seen), sorted(watch.seen)
    assert any(re.match(r"\S*/docker-buildx buildx build ", argv) for argv in watch.seen), sorted(watch.seen)
    assert watch.argv_hits == [], watch.argv_hits


def test_token_is_printed_only_in_the_add_mask_line(good_run):
    leaks = _leaks(good_run.run)
    assert leaks == {"stdout": [], "stderr": [], "outputs": [], "summary": []}, leaks


def test_no_credential_is_left_after_the_run(good_run, secret_registry):
    assert _config_problems(good_run.docker_config, secret_registry.host, good_run.run) == []


def test_token_is_not_in_the_environment_of_the_docker_commands(good_run):
    # Every docker command: test_token_is_in_no_docker_command. What they start, polled:
    assert good_run.watch.environ_hits == [], good_run.watch.environ_hits


# -- a failed run ----------------------------------------------------------------------------------------------

def test_failed_build_token_is_in_no_argv_and_the_error_is_redacted(failed_run):
    assert _calls_with_token(failed_run) == []
    assert failed_run.watch.argv_hits == [] and failed_run.watch.environ_hits == []
    error = next(line for line in failed_run.run.stdout.splitlines() if line.startswith("::error"))
    assert "exit code: 3" in error and "***" in error, error
    leaks = _leaks(failed_run.run)
    assert (leaks["stdout"], leaks["stderr"], leaks["outputs"]) == ([], [], []), leaks


def _engine_processes_visible() -> bool:
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and Path(entry.path, "comm").read_text().strip() in ("dockerd", "buildkitd"):
                return True
        except OSError:
            continue
    return False


def test_failed_build_buildkits_own_run_step_is_not_counted_as_the_runs(failed_run):
    """The failing step's RUN line holds the token, so BuildKit's `/bin/sh -c` for it has it in its argv. That
    process is the engine's, not the run's: the watch sees it (the step lasts a second) and leaves it out."""
    watch = failed_run.watch
    assert watch.argv_hits == [], watch.argv_hits
    if not _engine_processes_visible():
        pytest.skip("the engine's processes are not in this PID namespace: BuildKit's RUN step cannot be seen")
    assert watch.foreign_argv_hits, "the watch never saw BuildKit's RUN step with the token in it"
    assert all(text.startswith("/bin/sh -c ") for _, text in watch.foreign_argv_hits), watch.foreign_argv_hits


def test_failed_build_token_is_not_in_the_summary(failed_run):
    assert _leaks(failed_run.run)["summary"] == []


def test_no_credential_is_left_after_a_failed_run(failed_run, secret_registry):
    assert _config_problems(failed_run.docker_config, secret_registry.host, failed_run.run) == []


# -- a fork never writes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("event", "payload"), [
    ("pull_request", FORK_PR),
    ("pull_request_target", FORK_PR),
    ("pull_request_review", {**FORK_PR, "action": "submitted", "review": {"id": 1, "state": "approved"}}),
], ids=["pull_request", "pull_request_target", "pull_request_review"])
def test_fork_pull_request_never_attempts_a_write(secret_registry, good_run, tmp_path, event, payload):
    ws = sample_workspace(tmp_path / "ws")
    with FaultProxy(secret_registry.url) as proxy:
        watched = _watched_run(tmp_path, ws, event, payload,
                               inputs_for(proxy.host, "s/cache", **{"other-cache": "read-write"}))
    run = watched.run
    assert run.code == 0, run.log
    assert run.outputs["cache-write"] == "false" and run.outputs["cache-read"] == "true"
    assert run.outputs["cache-probe"] == "exact", run.log   # it found the cache good_run wrote
    assert "--cache-to" not in run.stdout
    assert proxy.count("GET") + proxy.count("HEAD") > 0, proxy.records
    assert {m: proxy.count(m) for m in WRITES} == dict.fromkeys(WRITES, 0), proxy.records
    assert _calls_with_token(watched) == [] and watched.watch.argv_hits == []
    assert _config_problems(watched.docker_config, proxy.host, watched.run) == []
