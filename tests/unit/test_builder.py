"""Builder choice with a stand-in CLI: the decision only, no docker (see the integration tier for real ones)."""

import pytest

from regcache.builder import can_export, choose_builder
from regcache.docker_cli import Builder, CommandFailed
from regcache.errors import InputError
from regcache.log import Log


class FakeCLI:
    def __init__(self, current="docker", create_fails=False, known=()):
        self.current, self.create_fails, self.known = current, create_fails, known
        self.created = []

    def inspect_builder(self, name=None):
        if name is None:
            return Builder("default", self.current)
        if name not in self.known:
            raise CommandFailed(f"no builder {name!r} found")
        return Builder(name, "docker-container")

    def create_builder(self, name, image):
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


def test_current_builder_used_when_it_can_export():
    cli = FakeCLI("docker")
    choice = choose_builder(cli, Log(False), requested="", buildkit_image="b:1", containerd_store=True)
    assert (choice.name, choice.can_export, choice.created) == ("", True, False)
    assert cli.created == []


def test_builder_created_when_current_cannot_export():
    cli = FakeCLI("docker")
    choice = choose_builder(cli, Log(False), requested="", buildkit_image="b:1", containerd_store=False)
    assert choice.created and choice.can_export and choice.name.startswith("regcache-")
    assert cli.created == [(choice.name, "b:1")]


def test_failed_creation_degrades_to_a_build_without_export(capsys):
    log = Log(True)
    choice = choose_builder(FakeCLI("docker", create_fails=True), log, requested="", buildkit_image="b:1",
                            containerd_store=False)
    assert (choice.name, choice.can_export, choice.created) == ("", False, False)
    assert "::warning::" in capsys.readouterr().out and log.warnings


def test_requested_builder_must_exist():
    with pytest.raises(InputError, match="builder 'nope'"):
        choose_builder(FakeCLI(), Log(False), requested="nope", buildkit_image="b:1", containerd_store=True)
    choice = choose_builder(FakeCLI(known=("ci",)), Log(False), requested="ci", buildkit_image="b:1",
                            containerd_store=False)
    assert (choice.name, choice.can_export) == ("ci", True)
