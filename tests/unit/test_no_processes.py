"""The unit tier's guard (tests/unit/conftest.py, tests/support/noprocess.py) catches every way to start a process.

Each check uses a harmless program (/bin/true), and a fork that the guard let through would exit at once in
the child: if the guard failed, nothing worse than a failed test happens.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess

import pytest

from tests.support import noprocess
from tests.support.noprocess import ProcessForbidden

TRUE = "/bin/true"


@pytest.fixture
def attempts(_forbid_subprocesses):
    """The attempts the guard saw; each check asserts its own and clears them, so the guard's teardown passes."""
    yield _forbid_subprocesses
    _forbid_subprocesses.clear()


def test_the_guard_is_on_during_a_unit_test():
    assert noprocess.active()


def test_subprocess(attempts):
    with pytest.raises(ProcessForbidden, match="subprocess.Popen"):
        subprocess.run([TRUE], check=False)
    with pytest.raises(ProcessForbidden, match="subprocess.Popen"):
        subprocess.Popen([TRUE])
    assert len(attempts) == 2


def test_os_posix_spawn(attempts):
    with pytest.raises(ProcessForbidden, match="os.posix_spawn"):
        pid = os.posix_spawn(TRUE, [TRUE], dict(os.environ))
        os.waitpid(pid, 0)
    with pytest.raises(ProcessForbidden, match="os.posix_spawn"):
        pid = os.posix_spawnp("true", ["true"], dict(os.environ))
        os.waitpid(pid, 0)
    assert [a.split("(")[0] for a in attempts] == ["os.posix_spawn", "os.posix_spawn"]


def test_os_fork_exec_system(attempts):
    with pytest.raises(ProcessForbidden, match="os.fork"):
        pid = os.fork()
        if pid == 0:   # only if the guard failed: the child must not go on running pytest
            os._exit(0)
        os.waitpid(pid, 0)
    with pytest.raises(ProcessForbidden, match="os.system"):
        os.system(TRUE)  # noqa: S605 - a constant, and the guard stops it
    with pytest.raises(ProcessForbidden, match="os.fork"):   # os.spawnv forks, then execs
        os.spawnv(os.P_WAIT, TRUE, [TRUE])
    assert len(attempts) == 3


def test_os_exec_does_not_replace_the_test_process(attempts):
    # Without the guard this would replace pytest by /bin/true: the run would end "successfully" right here.
    with pytest.raises(ProcessForbidden, match="os.exec"):
        os.execv(TRUE, [TRUE])
    assert len(attempts) == 1


def test_multiprocessing_spawn(attempts):
    # The spawn start method reaches _posixsubprocess.fork_exec directly, without an audit event.
    process = multiprocessing.get_context("spawn").Process(target=print)
    with pytest.raises(ProcessForbidden, match="fork_exec"):
        process.start()
    assert attempts


def test_python_on_whales_own_popen(attempts):
    # python-on-whales keeps its own reference to Popen: patching subprocess.Popen never reached it.
    import python_on_whales.utils

    assert "Popen" in vars(python_on_whales.utils)   # its own name for it, bound at import: a patch never reaches it
    with pytest.raises(ProcessForbidden, match="subprocess.Popen"):
        list(python_on_whales.utils.stream_stdout_and_stderr([TRUE, "buildx", "version"]))
    from python_on_whales import DockerClient

    with pytest.raises(ProcessForbidden, match="subprocess.Popen"):
        DockerClient(client_call=[TRUE]).buildx.version()
    assert len(attempts) == 2


def test_regcache_builder_creation_through_python_on_whales(attempts):
    """The path src takes to make a builder (DockerCLI.create_builder, python-on-whales) is caught too."""
    from regcache.docker_cli import DockerCLI
    from regcache.log import Log

    cli = DockerCLI(Log(github=False), docker=TRUE)
    with pytest.raises(ProcessForbidden, match="subprocess.Popen"):
        cli.create_builder("regcache-guard-test", "moby/buildkit:buildx-stable-1")
    assert attempts


def test_a_caught_attempt_still_fails_the_test(attempts):
    """Code under test that swallows the error (``except BaseException``) does not hide the attempt."""
    try:
        os.system(TRUE)  # noqa: S605 - a constant, and the guard stops it
    except BaseException:  # noqa: BLE001, S110 - what careless code under test would do
        pass
    # Recorded all the same: the guard's teardown fails a test that leaves an attempt here.
    assert [a.split("(")[0] for a in attempts] == ["os.system"]


def test_the_hook_lets_everything_through_when_off():
    """Between unit tests (and in the other tiers of the same session) the flag is off and the hook does
    nothing. Checked by calling the hook itself, so nothing is started."""
    assert noprocess.active()
    noprocess._active = False   # as outside a unit test
    try:
        noprocess._hook("os.posix_spawn", (TRUE, [TRUE], {}))
        noprocess._hook("subprocess.Popen", (TRUE, [TRUE], None, None))
    finally:
        noprocess._active = True
    with pytest.raises(ProcessForbidden):
        noprocess._hook("os.posix_spawn", (TRUE, [TRUE], {}))
    noprocess._violations.clear()
