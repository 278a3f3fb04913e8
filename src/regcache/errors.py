"""Typed errors, each with the exit code the action ends with. main() catches them once."""

from __future__ import annotations


class RegcacheError(Exception):
    """An error that stops the run with a clear message and no traceback."""

    exit_code = 1
    file: str | None = None   # where in the user's files it is, for the error annotation
    line: int | None = None

    def report(self) -> str:
        """The error line main() prints."""
        return str(self)


class InputError(RegcacheError):
    """A bad input value: says which input, what was given and what is accepted."""

    def __init__(self, name: str, problem: str, accepted: str | None = None):
        self.name = name
        self.problem = problem
        self.accepted = accepted
        message = f"input '{name}': {problem}"
        if accepted:
            message += f"; accepted: {accepted}"
        super().__init__(message)


class EventError(RegcacheError):
    """The GitHub event payload is missing, unreadable or lacks what the event kind needs."""


class EngineError(RegcacheError):
    """The Docker engine or buildx cannot be used at all."""

    exit_code = 2


class CommandFailed(RegcacheError):
    """An external command failed. The message is its last meaningful line of output, secrets redacted;
    callers that can go on without it turn it into a warning, and one that reaches main() ends the run."""

    exit_code = 2

    def __init__(self, message: str, command: str = ""):
        self.command = command   # "docker buildx inspect": what ran, without its arguments
        super().__init__(message)

    def report(self) -> str:
        what = f"`{self.command}`" if self.command else "a docker command"
        return (f"{what} failed: {self}. Check that the Docker CLI and its buildx plugin are installed "
                "(Debian: docker-cli, docker-buildx) and that `docker buildx inspect` works on this runner")


class BuildError(RegcacheError):
    """The image build itself failed (a Dockerfile step, a missing file): not a cache problem."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        self.file = file
        self.line = line
        super().__init__(message)

    def report(self) -> str:
        return f"buildx failed with: {self}"
