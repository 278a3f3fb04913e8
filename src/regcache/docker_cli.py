"""The one way regcache runs a command: the docker CLI through python-on-whales.

python-on-whales starts every process (no shell; `login` sends the password on stdin). This module adds
what the action needs around it: each command echoed to the log, secrets redacted from anything shown,
failures turned into regcache's typed errors or into results the caller can warn about, and the build's
stderr streamed line by line so its rawjson progress can be read as it happens.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from regcache.errors import EngineError
from regcache.log import Log


@dataclass(frozen=True)
class Builder:
    name: str
    driver: str


class CommandFailed(Exception):
    """A docker command failed; the message is its last meaningful line of output, secrets redacted."""


class DockerCLI:
    def __init__(self, log: Log):
        self.log = log
        # Imported here, not at module level: python-on-whales (with pydantic) costs ~0.4 s to import.
        from python_on_whales import DockerClient, DockerException

        self._client = DockerClient()
        self._DockerException = DockerException

    def _fail(self, e: Exception) -> CommandFailed:
        text = self.log.redact("\n".join(filter(None, (getattr(e, "stderr", None), getattr(e, "stdout", None)))))
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return CommandFailed(lines[-1] if lines else f"exit code {getattr(e, 'return_code', '?')}")

    def _echo(self, argv: Sequence[str]) -> None:
        self.log.info(self.log.redact(f"$ {shlex.join(argv)}"))

    def check_engine(self) -> bool:
        """Return whether the engine uses the containerd image store; raise EngineError if it is unreachable."""
        self._echo(["docker", "info"])
        try:
            info = self._client.info()
        except self._DockerException as e:
            raise EngineError(f"the Docker engine is not reachable: {self._fail(e)}. Is dockerd running and "
                              "/var/run/docker.sock mounted (DOCKER_HOST)?") from None
        except FileNotFoundError:
            raise EngineError("the docker CLI was not found on PATH: install docker-cli and docker-buildx "
                              "(see scripts/setup-engine.sh)") from None
        return any(pair[-1] == "io.containerd.snapshotter.v1" for pair in (info.driver_status or []))

    def login(self, server: str, username: str, password: str) -> None:
        self._echo(["docker", "login", "--username", username, "--password-stdin", server])
        try:
            self._client.login(server=server, username=username, password=password)
        except self._DockerException as e:
            raise self._fail(e) from None

    def logout(self, server: str) -> None:
        self._echo(["docker", "logout", server])
        try:
            self._client.logout(server=server)
        except self._DockerException as e:
            raise self._fail(e) from None

    def inspect_builder(self, name: str | None = None) -> Builder:
        self._echo(["docker", "buildx", "inspect", *([name] if name else [])])
        try:
            builder = self._client.buildx.inspect(name)
        except self._DockerException as e:
            raise self._fail(e) from None
        return Builder(builder.name, builder.driver)

    def create_builder(self, name: str, image: str) -> Builder:
        self._echo(["docker", "buildx", "create", "--name", name, "--driver", "docker-container",
                    "--driver-opt", f"image={image}", "--bootstrap"])
        try:
            builder = self._client.buildx.create(name=name, driver="docker-container",
                                                 driver_options={"image": image}, bootstrap=True)
        except self._DockerException as e:
            # A half-made builder (its image could not be pulled) must not be left behind.
            self.remove_builder(name, quiet=True)
            raise self._fail(e) from None
        return Builder(builder.name, builder.driver)

    def remove_builder(self, name: str, quiet: bool = False) -> None:
        if not quiet:
            self._echo(["docker", "buildx", "rm", name])
        try:
            self._client.buildx.remove(name)
        except self._DockerException as e:
            if not quiet:
                raise self._fail(e) from None

    def run(self, argv: Sequence[str]) -> str:
        """Run a short docker command and return its stdout; CommandFailed on failure."""
        from python_on_whales.utils import run

        self._echo(argv)
        try:
            return run(list(argv), capture_stdout=True, capture_stderr=True)
        except self._DockerException as e:
            raise self._fail(e) from None

    def stream(self, argv: Sequence[str], on_stderr: Callable[[str], None],
               on_stdout: Callable[[str], None]) -> int:
        """Run a long command, handing each output line over as it arrives; return its exit code."""
        from python_on_whales.utils import stream_stdout_and_stderr

        self._echo(argv)
        try:
            for source, line in stream_stdout_and_stderr(list(argv)):
                text = line.decode("utf-8", "replace")
                (on_stderr if source == "stderr" else on_stdout)(text)
        except self._DockerException as e:
            return e.return_code or 1
        return 0
