"""Workflow commands as the GitHub runner finds them in a step's output, and the ones the action issued itself.

The runner (actions/runner, ActionCommandManager.TryProcessCommand) reads the output line by line, a line
ending at "\\n", "\\r" or "\\r\\n" (.NET's StreamReader.ReadLine), and runs a line as a command when
- it starts with ``::name [k=v,...]::data`` after leading white space is trimmed (ActionCommand.TryParseV2), or
- it holds ``##[name [k=v;...]]data`` anywhere (the legacy form, ActionCommand.TryParse, tried second).
This module finds such lines more eagerly than the runner (any command name, registered or not), so a test
that finds none is not fooled by a name the runner happens not to know today. Between ``::stop-commands::T``
and ``::T::``, both issued by the action, the runner runs no command: lines there are not counted.

``Recorder`` wraps the toolkit function regcache issues its commands with (regcache.log.issue_command) and
keeps each one; ``foreign_commands`` then lists every command line of an output that is not exactly one of
them, and checks that each of them reads back, as the runner parses it, as what the action meant to say.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from actions_toolkit.command import Command
from actions_toolkit.utils import to_command_value

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_V1 = re.compile(r"##\[[^\]]*\]")


def runner_lines(output: str) -> list[str]:
    """The output cut into lines where the runner cuts it."""
    return _LINE_BREAK.split(output)


def is_command_line(line: str) -> bool:
    trimmed = line.lstrip()
    return (trimmed.startswith("::") and trimmed.find("::", 2) > 2) or bool(_V1.search(line))


def command_lines(output: str) -> list[str]:
    return [line for line in runner_lines(output) if is_command_line(line)]


def _unescape_data(s: str) -> str:
    return s.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _unescape_property(s: str) -> str:
    return (s.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
            .replace("%25", "%"))


def parse_v2(line: str) -> tuple[str, dict[str, str], str]:
    """(name, properties, data) of a ``::name k=v,...::data`` line, as TryParseV2 reads it."""
    line = line.lstrip()
    end = line.index("::", 2)
    info, data = line[2:end], line[end + 2:]
    name, _, props = info.partition(" ")
    properties = {}
    for pair in filter(None, props.split(",")):
        key, _, value = pair.partition("=")
        properties[key] = _unescape_property(value)
    return name, properties, _unescape_data(data)


@dataclass
class Recorder:
    """Records the commands regcache issues through regcache.log.issue_command (see ``install``)."""

    issued: list[tuple[str, dict[str, str], str, str]] = field(default_factory=list)   # name, props, data, line

    def install(self, monkeypatch) -> Recorder:
        import regcache.log

        real = regcache.log.issue_command

        def issue_command(command: str, properties: dict, message) -> None:
            line = str(Command(command, properties, message))
            props = {k: to_command_value(v) for k, v in properties.items()}
            self.issued.append((command, props, to_command_value(message), line))
            real(command, properties, message)

        monkeypatch.setattr(regcache.log, "issue_command", issue_command)
        return self

    @property
    def names(self) -> set[str]:
        """The commands the action used: the set it legitimately emits (add-mask, group, error, ...)."""
        return {name for name, *_ in self.issued}

    def foreign_commands(self, output: str) -> list[str]:
        """Command lines in output that the action did not issue, each as the runner would see it; and any
        issued command that does not read back as what was issued (an escaping fault)."""
        problems = []
        issued = Counter(line for *_, line in self.issued)
        stopped = ""   # the token of an issued ::stop-commands::, until its ::token:: line resumes
        for line in runner_lines(output):
            if not is_command_line(line):
                continue
            own = issued[line] > 0
            if own:
                issued[line] -= 1
            if stopped:
                # The runner runs no command until the resume line: the only one that counts is that line.
                if own and line.lstrip().startswith("::") and parse_v2(line)[0].lower() == stopped.lower():
                    stopped = ""
                continue
            if not own:
                problems.append(f"not issued by the action: {line[:300]!r}")
            elif line.lstrip().startswith("::") and parse_v2(line)[0] == "stop-commands":
                stopped = parse_v2(line)[2]
        for name, props, data, line in self.issued:
            if runner_lines(line) != [line]:
                problems.append(f"an issued command spans lines: {line[:300]!r}")
            elif parse_v2(line) != (name, props, data):
                problems.append(f"an issued command reads back as another: {line[:300]!r} -> {parse_v2(line)!r}")
        return problems
