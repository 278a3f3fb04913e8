"""Pick a buildx builder that can export cache, making one only when it must.

Making one (a docker-container builder: importing python-on-whales, starting BuildKit's container, and on a
fresh runner pulling its image) is the common path on GitHub's hosted runners, whose docker driver cannot
export. It needs nothing from the registry login or the cache probe, so it runs beside them
(start_choosing); its log lines are kept and shown in their own group when the run needs the builder.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from regcache.docker_cli import Builder, DockerCLI
from regcache.errors import CommandFailed, InputError
from regcache.log import DeferredLog, Log

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


def new_builder_name() -> str:
    return f"regcache-{os.getpid()}-{secrets.token_hex(3)}"


def find_builder(cli: DockerCLI, requested: str) -> Builder:
    """The builder the run starts from: the one asked for (an InputError if there is none by that name),
    else the current one. A requested builder that lists no platform (not started) is started, so that its
    native platform is known."""
    if not requested:
        return cli.inspect_builder()
    try:
        builder = cli.inspect_builder(requested)
    except CommandFailed as e:
        raise InputError("builder", f"builder {requested!r} cannot be used: {e}",
                         "the name of an existing buildx builder (docker buildx ls), or empty") from None
    if not builder.platforms:
        try:
            builder = cli.inspect_builder(requested, bootstrap=True)
        except CommandFailed:
            pass   # the build will say what is wrong with it
    return builder


def choose_builder(cli: DockerCLI, log: Log | DeferredLog, *, current: Builder, requested: bool,
                   buildkit_image: str, containerd_store: bool, new_name: str = "") -> BuilderChoice:
    """current: find_builder's answer. new_name: the name of the builder to make if one must be made (saved
    for the post step first)."""
    export = can_export(current.driver, containerd_store)
    if requested:
        return BuilderChoice(current.name, export, False, f"builder {current.name!r} ({current.driver} driver) "
                             f"as asked{'' if export else ', which cannot export cache'}", current.driver)
    if export:
        return BuilderChoice("", True, False, f"current builder {current.name!r} ({current.driver} driver) "
                             "can export cache", current.driver)
    name = new_name or new_builder_name()
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


class PendingBuilder:
    """The builder choice, running in a thread: result() waits for it and replays its log lines."""

    def __init__(self, cli: DockerCLI, log: Log, **choice):
        self._log = DeferredLog(log)
        self._cli = cli.with_log(self._log)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="builder")
        self._future: Future[BuilderChoice] = pool.submit(choose_builder, self._cli, self._log, **choice)
        pool.shutdown(wait=False)

    def result(self) -> BuilderChoice:
        try:
            return self._future.result()
        finally:
            self._log.replay()

    def remove_if_created(self, log: Log, timeout: float = 300) -> None:
        """Cleanup on every path, also when the run stops before it asked for the result."""
        try:
            choice = self._future.result(timeout=timeout)
        except Exception:  # noqa: BLE001 - the failure was (or will be) reported by result()
            return
        if choice.created:
            try:
                self._cli.with_log(log).remove_builder(choice.name)
            except CommandFailed as e:
                log.warning(f"could not remove the builder {choice.name!r}: {e}")


def start_choosing(cli: DockerCLI, log: Log, *, current: Builder, requested: bool, buildkit_image: str,
                   containerd_store: bool, new_name: str = "") -> PendingBuilder:
    return PendingBuilder(cli, log, current=current, requested=requested, buildkit_image=buildkit_image,
                          containerd_store=containerd_store, new_name=new_name)
