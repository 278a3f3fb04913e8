"""Unit tests never start a process: docker or anything else. Real-engine tests live in tests/integration.

The guard is an audit hook (tests/support/noprocess.py): it sees subprocess, python-on-whales' own Popen,
os.posix_spawn, os.fork, os.exec*, os.system. It is on only while a unit test runs, so the other tiers of
the same pytest session (scripts/test runs them all in one) start their processes as they need.
"""

import pytest

from tests.support import noprocess

noprocess.install()


@pytest.fixture(autouse=True)
def _forbid_subprocesses(monkeypatch):
    noprocess.guard_fork_exec(monkeypatch)
    with noprocess.forbid() as attempts:
        yield attempts
        # A forbidden call raises, but code under test may catch what it raises: the attempt still fails the test.
        assert not attempts, f"unit tests must not start processes: {attempts}"
