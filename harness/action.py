"""Run regcache as the runner runs it: a separate process with INPUT_* and GITHUB_* variables."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import events

SRC = Path(__file__).resolve().parents[1] / "src"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "multistage"


# Image IDs the action built in this test session, removed at its end (tests/conftest.py).
BUILT_IMAGES: set[str] = set()


@dataclass
class ActionRun:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    state: dict[str, str] = field(default_factory=dict)       # what it saved to GITHUB_STATE
    post_env: dict[str, str] = field(default_factory=dict)    # the post step's environment (STATE_* too)

    @property
    def log(self) -> str:
        return self.stdout + self.stderr


def parse_outputs(text: str) -> dict[str, str]:
    outputs = {}
    for match in re.finditer(r"^([\w-]+)<<(ghadelimiter_[\w-]+)\n(.*?)\n\2$", text, re.M | re.S):
        outputs[match.group(1)] = match.group(3)
    return outputs


def sample_workspace(dest: Path) -> Path:
    """A copy of examples/multistage with the host's static busybox in its context."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("busybox"))
    from harness.images import busybox_context

    busybox_context(dest)
    return dest


def _prepare(workspace: Path, event_name: str, payload: dict[str, Any], inputs: dict[str, str],
             extra_env: dict[str, str] | None) -> tuple[dict[str, str], Path, Path]:
    """The runner's environment for one run, and its GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files."""
    run_dir = workspace.parent / f"run-{os.urandom(4).hex()}"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    env.update(events.env_for(run_dir, event_name, payload))
    env["GITHUB_WORKSPACE"] = str(workspace)
    output_file, summary_file, state_file = run_dir / "output", run_dir / "summary.md", run_dir / "state"
    for path in (output_file, summary_file, state_file):
        path.touch()
    env.update({"GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary_file),
                "GITHUB_STATE": str(state_file), "PYTHONPATH": str(SRC)})
    env.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
    # On an engine whose builder cannot export (docker28-classic), the BuildKit image made here.
    if os.environ.get("REGCACHE_TEST_BUILDKIT_IMAGE"):
        env.setdefault("INPUT_BUILDKIT-IMAGE", os.environ["REGCACHE_TEST_BUILDKIT_IMAGE"])
    env.update(extra_env or {})
    return env, output_file, summary_file


# runc inside a docker-container builder (Debian's runc 1.1.15 under BuildKit 0.34, on dockerd 28) now and
# then fails to start a RUN step's container: seen once in about a thousand starts here, never twice in a
# row. Nothing regcache does starts that container, so a run that fails with exactly this is run once more,
# and the test output says so.
RUNC_START_FLAKE = re.compile(r"runc run failed: unable to start container process: waiting for init "
                              r"preliminary setup: read init-p: connection reset by peer")


def run_action(workspace: Path, event_name: str, payload: dict[str, Any], inputs: dict[str, str],
               extra_env: dict[str, str] | None = None, timeout: float = 600) -> ActionRun:
    for attempt in (1, 2):
        env, output_file, summary_file = _prepare(workspace, event_name, payload, inputs, extra_env)
        proc = subprocess.run([sys.executable, "-m", "regcache"], cwd=workspace, env=env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if attempt == 1 and proc.returncode != 0 and RUNC_START_FLAKE.search(proc.stdout):
            print(f"run_action: BuildKit's runc failed to start a container (not regcache): running again\n"
                  f"{proc.stdout[-2000:]}", file=sys.stderr)
            continue
        break
    return _built(_finished(proc.returncode, proc.stdout, proc.stderr, env, output_file, summary_file))


def _finished(code: int, stdout: str, stderr: str, env: dict[str, str], output_file: Path,
              summary_file: Path) -> ActionRun:
    state = parse_outputs(Path(env["GITHUB_STATE"]).read_text())
    post_env = {**env, **{f"STATE_{name}": value for name, value in state.items()}}
    return ActionRun(code, stdout, stderr, parse_outputs(output_file.read_text()), summary_file.read_text(),
                     state, post_env)


def run_post(workspace: Path, run: ActionRun, timeout: float = 300) -> ActionRun:
    """The post step, as the runner starts it after the main step: the same inputs, and STATE_* variables."""
    proc = subprocess.run([sys.executable, "-m", "regcache", "post"], cwd=workspace, env=run.post_env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return ActionRun(proc.returncode, proc.stdout, proc.stderr, {}, "")


def _built(run: ActionRun) -> ActionRun:
    if run.outputs.get("imageid"):
        BUILT_IMAGES.add(run.outputs["imageid"])
    return run


class RunningAction:
    """The action started as a process in its own session, its output read line by line as it comes.

    ``lines`` holds (seconds since start, stdout line). ``signal`` sends to the action's process only, or
    to its whole process group (as a terminal's Ctrl-C does). ``finish`` waits and returns the ActionRun;
    ``kill`` ends whatever is left of the group (the action and any docker it started), and is safe to
    call on every path.
    """

    def __init__(self, workspace: Path, env: dict[str, str], output_file: Path, summary_file: Path):
        self.output_file, self.summary_file, self.env = output_file, summary_file, env
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self._stderr: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen([sys.executable, "-m", "regcache"], cwd=workspace, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1, start_new_session=True)
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True)]
        for reader in self._readers:
            reader.start()

    def saved_state(self) -> dict[str, str]:
        """What the action has saved to GITHUB_STATE so far."""
        return parse_outputs(Path(self.env["GITHUB_STATE"]).read_text())

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdout(self) -> str:
        with self._changed:
            return "".join(line + "\n" for _, line in self.lines)

    def _read(self, stream, is_stdout: bool) -> None:
        for line in stream:
            with self._changed:
                if is_stdout:
                    self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))
                else:
                    self._stderr.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> str | None:
        """The first stdout line matching the regular expression, waiting at most timeout seconds."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for _, line in self.lines:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    return None
                self._changed.wait(min(left, 0.2))

    def signal(self, sig: int, *, group: bool = False) -> None:
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def finish(self, timeout: float) -> ActionRun:
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        with self._changed:
            stderr = "".join(self._stderr)
        return _built(_finished(self.proc.returncode, self.stdout, stderr, self.env, self.output_file,
                                self.summary_file))

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def start_action(workspace: Path, event_name: str, payload: dict[str, Any], inputs: dict[str, str],
                 extra_env: dict[str, str] | None = None) -> RunningAction:
    """run_action, streaming: the caller reads the log while the action runs, and must finish() or kill()."""
    env, output_file, summary_file = _prepare(workspace, event_name, payload, inputs, extra_env)
    return RunningAction(workspace, env, output_file, summary_file)


def native_platform() -> str:
    """The engine's own platform (linux/amd64 here), as regcache names it for an empty `platforms` input."""
    from regcache.platforms import engine_platform

    out = subprocess.run(["docker", "info", "--format", "{{.OSType}} {{.Architecture}}"], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    return engine_platform(*out)


def fallback_tag(branch_slug: str, dockerfile_slug: str = "dockerfile") -> str:
    """The moving fallback ref a write on that branch moves, for a build for the native platform."""
    return f"{dockerfile_slug}-{native_platform().replace('/', '-')}-{branch_slug}"
