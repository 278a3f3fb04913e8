"""The one way regcache runs a command: the docker CLI, never through a shell.

Every command is echoed to the log with secrets redacted; a password only ever goes to stdin. Short
commands have timeouts, so a hanging registry cannot hold a job forever; the build streams its stderr
line by line so its rawjson progress is read as it happens, and is stopped if regcache itself is stopped.
Creating and removing a builder go through python-on-whales.
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from regcache.errors import CommandFailed, EngineError
from regcache.log import Log

SHORT_TIMEOUT = 120.0        # info, inspect, login, tag
TRANSFER_TIMEOUT = 1800.0    # pull, push


@dataclass(frozen=True)
class Builder:
    name: str
    driver: str
    platforms: tuple[str, ...] = ()   # as `docker buildx inspect` lists them: the native one first


@dataclass(frozen=True)
class Engine:
    containerd_store: bool   # the containerd image store (the docker driver can then export cache)
    platform: str            # the engine's own, e.g. linux/amd64


class DockerCLI:
    def __init__(self, log: Log, docker: str = "docker", config_dir: Path | None = None):
        self.log = log
        self.docker = docker
        self.config_dir = config_dir
        # Commands see the environment without the action's inputs: the token is one of them.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INPUT_")}
        if config_dir is not None:
            self.env["DOCKER_CONFIG"] = os.fspath(config_dir)
        if shutil.which(docker) is None:
            raise EngineError(f"{docker!r} was not found on PATH: install the Docker CLI with buildx "
                              "(Debian: docker-cli docker-buildx; see scripts/setup-engine.sh)")

    def with_log(self, log) -> DockerCLI:
        """The same runner, logging elsewhere (a step that runs beside others keeps its lines)."""
        other = copy.copy(self)
        other.log = log
        return other

    def _echo(self, argv: Sequence[str]) -> None:
        self.log.info(self.log.redact(f"$ {shlex.join(argv)}"))

    def run(self, argv: Sequence[str], *, stdin: str | None = None, timeout: float = SHORT_TIMEOUT) -> str:
        """Run a short command and return its stdout; CommandFailed on failure or timeout."""
        self._echo(argv)
        try:
            proc = subprocess.run(  # noqa: S603 - an argv list, never a shell
                list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
                env=self.env)
        except subprocess.TimeoutExpired:
            raise CommandFailed(f"{argv[0]} {argv[1]} timed out after {timeout:.0f}s", _command(argv)) from None
        if proc.returncode != 0:
            raise CommandFailed(_last_line(self.log, proc.stderr or proc.stdout, proc.returncode), _command(argv))
        return proc.stdout

    def check_engine(self) -> Engine:
        """The engine's image store and platform; EngineError if it is unreachable."""
        from regcache.platforms import engine_platform

        try:
            out = self.run([self.docker, "info", "--format", "{{.OSType}} {{.Architecture}} {{json .DriverStatus}}"])
        except CommandFailed as e:
            host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise EngineError(f"the Docker engine is not reachable at {host}: {e}. Is dockerd running, and is "
                              "its socket mounted into the job?") from None
        os_type, arch, _ = (out.strip() + "  ").split(" ", 2)
        return Engine("io.containerd.snapshotter.v1" in out, engine_platform(os_type, arch))

    def login(self, server: str, username: str, password: str) -> None:
        self.run([self.docker, "login", "--username", username, "--password-stdin", server], stdin=password)

    def pull(self, ref: str, platform: str = "") -> None:
        self.run([self.docker, "pull", "--quiet", *(["--platform", platform] if platform else []), ref],
                 timeout=TRANSFER_TIMEOUT)

    def image_platform(self, ref: str) -> str:
        """os/architecture[/variant] of a local image."""
        return self.run([self.docker, "image", "inspect", "--format",
                         "{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}", ref]).strip()

    def push(self, ref: str) -> None:
        self.run([self.docker, "push", "--quiet", ref], timeout=TRANSFER_TIMEOUT)

    def tag(self, source: str, target: str) -> None:
        self.run([self.docker, "tag", source, target])

    def image_id(self, ref: str) -> str:
        return self.run([self.docker, "image", "inspect", "--format", "{{.Id}}", ref]).strip()

    def _whales(self):
        # Imported on first use: python-on-whales (with pydantic) costs ~0.4 s to import.
        from python_on_whales import DockerClient, DockerException

        # It runs with os.environ, from which main() has removed the token.
        return DockerClient(client_call=[self.docker], config=self.config_dir), DockerException

    def inspect_builder(self, name: str | None = None, bootstrap: bool = False) -> Builder:
        # Read from the header of `docker buildx inspect` rather than through python-on-whales: this runs on
        # every job, and importing python-on-whales (with pydantic) costs 0.4 s, a third of the action's
        # own overhead on a warm rebuild (bench/README.md).
        out = self.run([self.docker, "buildx", "inspect", *(["--bootstrap"] if bootstrap else []),
                        *([name] if name else [])], timeout=TRANSFER_TIMEOUT if bootstrap else SHORT_TIMEOUT)
        header = dict(line.split(":", 1) for line in out.split("\n\n", 1)[0].splitlines() if ":" in line)
        # The first node's "Platforms:" line; its first entry is the native platform.
        listed = next((line.split(":", 1)[1] for line in out.splitlines() if line.startswith("Platforms:")), "")
        builder = Builder(header.get("Name", "").strip(), header.get("Driver", "").strip(),
                          tuple(p.strip().rstrip("*") for p in listed.split(",") if p.strip()))
        if not builder.name or not builder.driver:
            raise CommandFailed(f"unexpected output: {out[:200]!r}", "docker buildx inspect")
        return builder

    def create_builder(self, name: str, image: str) -> Builder:
        """A docker-container builder on the host's network: it reaches the registries the engine reaches,
        a registry on the runner's localhost (a `services:` container, a local mirror) included."""
        client, DockerException = self._whales()
        options = {"image": image, "network": "host"}
        self._echo([self.docker, "buildx", "create", "--name", name, "--driver", "docker-container",
                    "--driver-opt", ",".join(f"{k}={v}" for k, v in options.items()), "--bootstrap"])
        try:
            builder = client.buildx.create(name=name, driver="docker-container", driver_options=options,
                                           bootstrap=True)
        except DockerException as e:
            # A half-made builder (its image could not be pulled) must not be left behind.
            self.remove_builder(name, quiet=True)
            output = "\n".join(filter(None, (getattr(e, "stderr", None), getattr(e, "stdout", None))))
            raise CommandFailed(_last_line(self.log, output, getattr(e, "return_code", "?")),
                                "docker buildx create") from None
        return Builder(builder.name, builder.driver)

    def remove_builder(self, name: str, quiet: bool = False) -> None:
        try:
            if quiet:
                subprocess.run([self.docker, "buildx", "rm", name], capture_output=True,  # noqa: S603
                               timeout=SHORT_TIMEOUT, check=False, env=self.env)
            else:
                self.run([self.docker, "buildx", "rm", name])
        except subprocess.TimeoutExpired:
            pass

    def stream(self, argv: Sequence[str], on_stderr: Callable[[str], None],
               on_stdout: Callable[[str], object], deadline: Callable[[], float | None] = lambda: None) -> int:
        """Run a long command, handing each output line over as it arrives; return its exit code.

        The command is stopped when time.monotonic() passes deadline() (None: no deadline yet), and when
        regcache is interrupted (SIGINT, SIGTERM), before cleanup goes on.
        """
        self._echo(argv)
        proc = subprocess.Popen(  # noqa: S603 - an argv list, never a shell
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", bufsize=1, env=self.env)
        stdout_reader = threading.Thread(target=lambda: [on_stdout(line.rstrip("\n"))
                                                         for line in cast(IO[str], proc.stdout)],
                                         daemon=True)
        stdout_reader.start()

        def watch() -> None:
            while proc.poll() is None:
                limit = deadline()
                if limit is not None and time.monotonic() > limit:
                    proc.terminate()
                    return
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()
        try:
            for line in cast(IO[str], proc.stderr):
                on_stderr(line)
            return proc.wait()
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        finally:
            stdout_reader.join(timeout=5)


def _command(argv: Sequence[str]) -> str:
    """`docker buildx inspect`, `docker login`: the program and its subcommands, never an argument."""
    words = [argv[0].rsplit("/", 1)[-1]]
    for word in argv[1:3]:
        if word.startswith("-") or not word.isalpha():
            break
        words.append(word)
    return " ".join(words)


def _last_line(log: Log, output: str, returncode: object) -> str:
    """A failed command's last meaningful line of output, secrets redacted: what the warning quotes."""
    lines = [line.strip() for line in log.redact(output).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {returncode}"
