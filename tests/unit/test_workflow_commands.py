"""The injection check (tests/support/workflow_commands.py) finds what the runner would run, and only that."""

from __future__ import annotations

import pytest

from regcache.log import Log
from tests.support.workflow_commands import Recorder, command_lines, runner_lines


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    return Recorder().install(monkeypatch)


def test_lines_are_cut_where_the_runner_cuts_them():
    assert runner_lines("a\nb\r\nc\rd\u2028e\x0bf") == ["a", "b", "c", "d\u2028e\x0bf"]


@pytest.mark.parametrize("line", [
    "::warning::x", "  ::error file=a,line=1::x", "\t::group::x", "::endgroup::", "::add-mask::secret",
    "::notice title=t::x", "##[error]x", "text before ##[warning]x", "#5 0.1 ##[group]x",
])
def test_command_lines(line):
    assert command_lines(f"plain\n{line}\nplain") == [line]


@pytest.mark.parametrize("line", [
    "#5 ::warning::x", "x ::error::y", ":: not a command", "::::x", "## [error]x", "#[error]x", "::warning x",
])
def test_not_command_lines(line):
    assert command_lines(line) == []


def test_what_the_log_issues_is_its_own(capsys, recorder):
    log = Log(github=True)
    log.mask("s3cr3t")
    with log.group("Phase"):
        log.info("plain text: s3cr3t")
        log.warning("a value with\n::warning::inside, and ##[error] too", file="Dockerfile", line=3)
        log.error("100% done\r::error::x, and a:b,c")
    out = capsys.readouterr().out
    assert recorder.names == {"add-mask", "group", "endgroup", "warning", "error"}
    assert recorder.foreign_commands(out) == []


def test_a_command_not_issued_by_the_action_is_found(capsys, recorder):
    log = Log(github=True)
    log.warning("real")
    # Printed raw (Log.info would make them inert: test_bad_inputs.py checks that).
    print("text\r::warning::injected")
    print("text ##[error]injected")
    print("  ::warning::injected")
    problems = recorder.foreign_commands(capsys.readouterr().out)
    assert problems == ["not issued by the action: '::warning::injected'",
                        "not issued by the action: 'text ##[error]injected'",
                        "not issued by the action: '  ::warning::injected'"]


def test_each_issued_line_counts_once(capsys, recorder):
    log = Log(github=True)
    log.warning("same")
    out = capsys.readouterr().out
    assert recorder.foreign_commands(out + out) == ["not issued by the action: '::warning::same'"]


def test_commands_stopped_by_the_action_are_not_run(capsys, recorder):
    from regcache import log as log_module

    log_module.issue_command("stop-commands", {}, "tok3n")
    print("::warning::inert while commands are stopped")
    log_module.issue_command("tok3n", {}, "")
    print("::warning::live again")
    assert recorder.foreign_commands(capsys.readouterr().out) == [
        "not issued by the action: '::warning::live again'"]
