"""Pick a buildx builder that can export cache, making one only when it must."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from regcache.docker_cli import CommandFailed, DockerCLI
from regcache.errors import InputError
from regcache.log import Log

EXPORTING_DRIVERS = ("docker-container", "remote", "kubernetes")


@dataclass(frozen=True)
class BuilderChoice:
    name: str           # passed as --builder; "" means the current builder
    can_export: bool    # whether --cache-to may be used
    created: bool       # regcache made it and must remove it
    reason: str
    driver: str = "docker"


def can_export(driver: str, containerd_store: bool) -> bool:
    """The docker driver exports cache only with the containerd image store; the others always can."""
    return driver in EXPORTING_DRIVERS or (driver == "docker" and containerd_store)


def choose_builder(cli: DockerCLI, log: Log, *, requested: str, buildkit_image: str,
                   containerd_store: bool) -> BuilderChoice:
    if requested:
        try:
            builder = cli.inspect_builder(requested)
        except CommandFailed as e:
            raise InputError("builder", f"builder {requested!r} cannot be used: {e}",
                             "the name of an existing buildx builder (docker buildx ls), or empty") from None
        export = can_export(builder.driver, containerd_store)
        return BuilderChoice(builder.name, export, False, f"builder {builder.name!r} ({builder.driver} driver) "
                             f"as asked{'' if export else ', which cannot export cache'}", builder.driver)

    current = cli.inspect_builder()
    if can_export(current.driver, containerd_store):
        return BuilderChoice("", True, False, f"current builder {current.name!r} ({current.driver} driver) "
                             "can export cache", current.driver)
    name = f"regcache-{os.getpid()}-{secrets.token_hex(3)}"
    why = (f"current builder {current.name!r} ({current.driver} driver"
           f"{', without the containerd image store' if current.driver == 'docker' else ''}) cannot export cache")
    try:
        cli.create_builder(name, buildkit_image)
    except CommandFailed as e:
        log.warning(f"{why}, and a docker-container builder from {buildkit_image} could not be created "
                    f"({e}): building without writing the cache")
        return BuilderChoice("", False, False, f"{why}; creating one failed, so the cache is not written",
                             current.driver)
    return BuilderChoice(name, True, True, f"{why}: created docker-container builder {name!r}", "docker-container")
