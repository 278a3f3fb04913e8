"""The unit tier's guard: no test starts a process, by any route.

Patching ``subprocess.Popen`` misses whoever holds their own reference to it (python-on-whales does
``from subprocess import Popen``) and every route that is not subprocess (``os.posix_spawn``, ``os.fork``,
``os.exec*``, ``os.system``). An audit hook sees them all: CPython raises an audit event before each of
these starts anything, and an exception raised by the hook aborts the call.

Audit hooks cannot be removed, and ``scripts/test`` runs every tier in one pytest session: the hook does
nothing unless ``forbid()`` turned it on, which the unit tier's autouse fixture does around each unit test
only (tests/unit/conftest.py). A forbidden call raises ``ProcessForbidden`` (a BaseException, so that an
``except Exception`` in the code under test cannot swallow it) and is also recorded, so the fixture fails
the test even if something caught it anyway.

One route has no audit event: ``_posixsubprocess.fork_exec`` called directly (multiprocessing's spawn and
forkserver start methods do). ``guard_fork_exec`` covers it by replacing that function for the test.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Every audit event CPython (3.8+) raises before it starts a process or replaces this one.
PROCESS_EVENTS = frozenset({
    "subprocess.Popen",   # subprocess, asyncio, os.popen, python-on-whales: executable, args, cwd, env
    "os.posix_spawn",     # os.posix_spawn and os.posix_spawnp: path, argv, env
    "os.fork",            # os.fork (and os.spawn* on POSIX, which fork then exec)
    "os.forkpty",         # os.forkpty, pty.fork, pty.spawn
    "os.exec",            # os.execv, os.execve (and the execl*/execvp* family built on them)
    "os.spawn",           # os.spawnv* where they are native (Windows)
    "os.system",
    "os.startfile",
})


class ProcessForbidden(BaseException):  # noqa: N818 - named for what it means in a test report
    """A unit test tried to start a process."""


_lock = threading.Lock()
_active = False
_violations: list[str] = []
_installed = False


def _describe(event: str, args: tuple) -> str:
    shown = ", ".join(repr(a)[:120] for a in args[:2])
    return f"{event}({shown})"


def _hook(event: str, args: tuple) -> None:
    if not _active or event not in PROCESS_EVENTS:
        return
    what = _describe(event, args)
    with _lock:
        _violations.append(what)
    raise ProcessForbidden(f"unit tests must not start processes: {what}")


def install() -> None:
    """Add the audit hook to this interpreter, once; it stays off until forbid() turns it on."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


@contextmanager
def forbid() -> Iterator[list[str]]:
    """Forbid processes while the block runs; yields the list of attempts made meanwhile (even caught ones)."""
    global _active
    install()
    with _lock:
        before, _active = _active, True
        if not before:
            _violations.clear()
    try:
        yield _violations
    finally:
        with _lock:
            _active = before


def active() -> bool:
    return _active


def guard_fork_exec(monkeypatch) -> None:
    """Replace _posixsubprocess.fork_exec (no audit event) for the test: multiprocessing calls it directly."""
    import _posixsubprocess

    def fork_exec(*args, **kwargs):
        what = f"_posixsubprocess.fork_exec({repr(args[0])[:120] if args else ''})"
        with _lock:
            _violations.append(what)
        raise ProcessForbidden(f"unit tests must not start processes: {what}")

    monkeypatch.setattr(_posixsubprocess, "fork_exec", fork_exec)
