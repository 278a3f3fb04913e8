"""What a write leaves for later runs, and what a later run can take instead of building.

The Rust project's trusted builds rebuilt and re-uploaded images that already existed for the same key,
until they added "pull the image for this key if it exists, else build". The same here: a write run pushes
the image as <image-repository>:<cache-key>, and any run whose key has an image there pulls it instead.
Every failure here is a warning: the build (or the pull) goes on without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from regcache.cache_refs import branch_tag
from regcache.docker_cli import DockerCLI
from regcache.errors import CommandFailed
from regcache.image_ref import split_ref
from regcache.log import Log
from regcache.platforms import normalize
from regcache.registry import RegistryClients, RegistryError


def reuse_key_image(cli: DockerCLI, log: Log, registries: RegistryClients, ref: str, tags: Sequence[str],
                    push: bool, platforms: Sequence[str]) -> str:
    """Pull the image built for this key and tag (and push) it as asked; its ID, or "" to build instead.

    The key names the platforms, but an image pushed by hand (or by another tool) under it must not become
    another architecture's result: the pulled image's platform is checked before it is tagged.
    """
    if len(platforms) != 1:
        log.info(f"{ref}: reuse is for single-platform builds ({', '.join(platforms)} asked): building")
        return ""
    host, repository, tag = split_ref(ref)
    try:
        if registries(host).manifest_digest(repository, tag) is None:
            log.info(f"{ref} does not exist yet: building")
            return ""
    except RegistryError as e:
        log.warning(f"could not look up {ref}: {e}; building instead")
        return ""
    try:
        cli.pull(ref, platforms[0])
        found = normalize(cli.image_platform(ref))
        if found != normalize(platforms[0]):
            log.warning(f"{ref} is for {found}, not for {platforms[0]} as this run: building instead")
            return ""
        for target in tags:
            cli.tag(ref, target)
            if push:
                cli.push(target)
        imageid = cli.image_id(ref)
    except CommandFailed as e:
        log.warning(f"could not reuse {ref}: {e}; building instead")
        return ""
    log.info(f"reused {ref}: no build, no cache export")
    return imageid


def push_key_image(cli: DockerCLI, log: Log, ref: str, imageid: str) -> None:
    """Push the image just built as the image for this key."""
    if not imageid:
        log.warning(f"the image for this key was not pushed to {ref}: it needs load: true")
        return
    try:
        cli.tag(imageid, ref)
        cli.push(ref)
        log.info(f"pushed {ref}: later runs with this key reuse it")
    except CommandFailed as e:
        log.warning(f"could not push {ref}: {e}")


def update_fallback_ref(registries: RegistryClients, log: Log, cache_ref: str, dockerfile_slug: str,
                        branch: str) -> None:
    """Point the branch's moving cache ref at the cache just written: a manifest copy, nothing uploaded."""
    host, repository, tag = split_ref(cache_ref)
    moving = branch_tag(dockerfile_slug, branch)
    try:
        registries(host).copy_tag(repository, tag, moving)
        log.info(f"fallback ref {cache_ref.rpartition(':')[0]}:{moving} -> {cache_ref}")
    except RegistryError as e:
        log.warning(f"could not update the fallback cache ref {cache_ref.rpartition(':')[0]}:{moving}: {e}")
