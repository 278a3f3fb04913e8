"""A logger that knows GitHub: `::group::` per phase, annotations, masks; plain text elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from actions_toolkit.command import issue_command


def inert(text: str) -> str:
    """Text that the runner cannot read as a workflow command: it cuts lines at "\\r" too, runs a line that
    starts with "::" (after white space) and one that holds "##[" anywhere. Branch names, event names and
    the build's output (a pull request's RUN lines) reach the log through here."""
    text = text.replace("\r\n", "\n").replace("\r", "\\r").replace("##[", "## [")
    if "::" not in text:
        return text
    return "\n".join(": :" + line.lstrip()[2:] if line.lstrip().startswith("::") else line
                     for line in text.split("\n"))


class Log:
    def __init__(self, github: bool, out: TextIO | None = None):
        self.github = github
        self.out = out or sys.stdout
        self.warnings: list[str] = []
        self.phases: list[tuple[str, float]] = []   # each group's title and seconds, as they ended
        self._secrets: list[str] = []

    def mask(self, secret: str) -> None:
        """Register a secret: GitHub hides it from the log, and this logger never prints it."""
        if not secret:
            return
        self._secrets.append(secret)
        if self.github:
            issue_command("add-mask", {}, secret)
            self.out.flush()

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def info(self, message: str) -> None:
        self.out.write(inert(self.redact(message)) + "\n")
        self.out.flush()

    def warning(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        message = self.redact(message)
        self.warnings.append(message)
        self._annotate("warning", message, file, line)

    def error(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self._annotate("error", self.redact(message), file, line)

    def _annotate(self, level: str, message: str, file: str | None, line: int | None) -> None:
        if self.github:
            props = {k: v for k, v in (("file", file), ("line", line)) if v is not None}
            issue_command(level, props, message)
            self.out.flush()
        else:
            where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
            sys.stderr.write(f"{level}: {where}{message}\n")
            sys.stderr.flush()

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        started = time.monotonic()
        if self.github:
            issue_command("group", {}, title)
        else:
            self.out.write(f"== {title}\n")
        self.out.flush()
        try:
            yield
        finally:
            self.phases.append((title, time.monotonic() - started))
            if self.github:
                issue_command("endgroup", {}, "")
            else:
                self.out.write(f"   ({time.monotonic() - started:.1f}s)\n")
            self.out.flush()


class DeferredLog:
    """What a step running beside others logs, kept and replayed later in its own place (its group).

    It has the interface DockerCLI and the builder choice use: info, warning, redact.
    """

    def __init__(self, log: Log):
        self._log = log
        self._calls: list[tuple[str, str, dict]] = []

    def redact(self, text: str) -> str:
        return self._log.redact(text)

    def info(self, message: str) -> None:
        self._calls.append(("info", message, {}))

    def warning(self, message: str, **where) -> None:
        self._calls.append(("warning", message, where))

    def replay(self) -> None:
        calls, self._calls = self._calls, []
        for kind, message, where in calls:
            getattr(self._log, kind)(message, **where)
