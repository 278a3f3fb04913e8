"""Builder choice with a stand-in CLI: the decision only, no docker (see the integration tier for real ones)."""

import threading

import pytest

from regcache.builder import can_export, choose_builder, find_builder, start_choosing
from regcache.docker_cli import Builder
from regcache.errors import CommandFailed, InputError
from regcache.log import Log


class FakeCLI:
    def __init__(self, current="docker", create_fails=False, known=()):
        self.current, self.create_fails, self.known = current, create_fails, known
        self.created, self.removed, self.gate = [], [], None
        self.platforms_after_bootstrap = ("linux/amd64",)

    def inspect_builder(self, name=None, bootstrap=False):
        if name is None:
            return Builder("default", self.current, ("linux/amd64",))
        if name not in self.known:
            raise CommandFailed(f"no builder {name!r} found")
        return Builder(name, "docker-container", self.platforms_after_bootstrap if bootstrap else ())

    def with_log(self, log):
        return self

    def remove_builder(self, name):
        self.removed.append(name)

    def create_builder(self, name, image):
        if self.gate:
            self.gate.wait(timeout=10)
        if self.create_fails:
            raise CommandFailed(f"failed to pull {image}")
        self.created.append((name, image))
        return Builder(name, "docker-container")


@pytest.mark.parametrize(("driver", "containerd", "expected"), [
    ("docker", True, True), ("docker", False, False), ("docker-container", False, True),
    ("remote", False, True), ("kubernetes", False, True), ("unknown", True, False),
])
def test_can_export(driver, containerd, expected):
    assert can_export(driver, containerd) is expected


DOCKER = Builder("default", "docker", ("linux/amd64", "linux/amd64/v2"))


def choose(cli, log=None, *, current=DOCKER, requested=False, containerd_store=True):
    return choose_builder(cli, log or Log(False), current=current, requested=requested, buildkit_image="b:1",
                          containerd_store=containerd_store)


def test_current_builder_used_when_it_can_export():
    cli = FakeCLI("docker")
    choice = choose(cli)
    assert (choice.name, choice.can_export, choice.created) == ("", True, False)
    assert cli.created == []


def test_builder_created_when_current_cannot_export():
    cli = FakeCLI("docker")
    choice = choose(cli, containerd_store=False)
    assert choice.created and choice.can_export and choice.name.startswith("regcache-")
    assert cli.created == [(choice.name, "b:1")]


def test_failed_creation_degrades_to_a_build_without_export(capsys):
    log = Log(True)
    choice = choose(FakeCLI("docker", create_fails=True), log, containerd_store=False)
    assert (choice.name, choice.can_export, choice.created) == ("", False, False)
    assert "::warning::" in capsys.readouterr().out and log.warnings


def test_requested_builder_must_exist_and_is_used_as_it_is():
    with pytest.raises(InputError, match="builder 'nope'"):
        find_builder(FakeCLI(), "nope")
    cli = FakeCLI(known=("ci",))
    current = find_builder(cli, "ci")
    choice = choose(cli, current=current, requested=True, containerd_store=False)
    assert (choice.name, choice.can_export, choice.created) == ("ci", True, False)
    assert cli.created == []


def test_a_requested_builder_that_lists_no_platform_is_started_to_learn_its_own():
    cli = FakeCLI(known=("remote-pool",))
    cli.platforms_after_bootstrap = ("linux/arm64",)
    assert find_builder(cli, "remote-pool").platforms == ("linux/arm64",)


def test_the_choice_runs_beside_other_steps_and_its_lines_come_in_its_own_place(capsys):
    cli = FakeCLI("docker", create_fails=True)
    cli.gate = threading.Event()
    log = Log(True)
    pending = start_choosing(cli, log, current=DOCKER, requested=False, buildkit_image="b:1",
                             containerd_store=False)
    log.info("the login and the probe go on meanwhile")
    assert "::warning::" not in capsys.readouterr().out    # not yet: the creation is still running
    cli.gate.set()
    choice = pending.result()
    assert not choice.can_export
    assert "could not be created" in capsys.readouterr().out   # now, in the group that asked for it
    assert log.warnings and "b:1" in log.warnings[0]


def test_a_created_builder_is_removed_at_cleanup_even_if_the_run_never_asked_for_it():
    cli = FakeCLI("docker")
    pending = start_choosing(cli, Log(False), current=DOCKER, requested=False, buildkit_image="b:1",
                             containerd_store=False)
    pending.remove_if_created(Log(False))
    assert cli.removed == [cli.created[0][0]]


def test_a_failed_choice_is_raised_where_the_run_asks_for_it():
    cli = FakeCLI("docker", create_fails=True)
    cli.create_builder = None   # not callable: the thread fails with a TypeError
    pending = start_choosing(cli, Log(False), current=DOCKER, requested=False, buildkit_image="b:1",
                             containerd_store=False)
    with pytest.raises(TypeError):
        pending.result()
    pending.remove_if_created(Log(False))   # nothing was made: nothing to remove, no error
