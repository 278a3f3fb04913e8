"""A docker-container builder whose BuildKit image cannot be pulled (as here, offline) is cleaned up."""

import subprocess

import pytest

from regcache.docker_cli import DockerCLI
from regcache.errors import CommandFailed
from regcache.log import Log

pytestmark = pytest.mark.integration


def test_failed_builder_creation_leaves_nothing_behind(engine, docker_config):
    cli = DockerCLI(Log(False))
    with pytest.raises(CommandFailed):
        cli.create_builder("regcache-test-unpullable", "localhost:1/no/buildkit:1")
    listing = subprocess.run(["docker", "buildx", "ls"], capture_output=True, text=True, check=True).stdout
    assert "regcache-test-unpullable" not in listing
    containers = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                                text=True, check=True).stdout
    assert "regcache-test-unpullable" not in containers
