"""The post step (action.yml `post-entrypoint`, `post-if: always()`): remove what the main step made.

The main step cleans up after itself on every path it controls (success, failure, SIGTERM, SIGINT). A
SIGKILL — a runner that hits `timeout-minutes` — skips all of that; the post step still runs, reads what
the main step saved in GITHUB_STATE before making anything, and removes it: the run's docker config with
its registry credential, and a builder regcache made (its container and state volume, also when buildx's
record of it went with the config). Nothing here fails the job: a problem is a warning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from regcache import state
from regcache.docker_config import remove_private_config
from regcache.errors import CommandFailed, RegcacheError
from regcache.log import Log


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    log = Log(github=env.get("GITHUB_ACTIONS") == "true")
    builder, config = state.saved(env, state.BUILDER), state.saved(env, state.DOCKER_CONFIG)
    with log.group("Clean up after the build"):
        if builder:
            _remove_builder(log, builder, Path(config) if config else None)
        if config:
            existed = Path(config).exists()
            remove_private_config(Path(config))
            log.info(f"{'removed' if existed else 'already gone:'} the run's docker config {config}")
        if not (builder or config):
            log.info("the main step saved nothing to clean up")
    return 0


def _remove_builder(log: Log, name: str, config: Path | None) -> None:
    from regcache.docker_cli import DockerCLI

    try:
        cli = DockerCLI(log, config_dir=config if config and config.exists() else None)
    except RegcacheError as e:
        log.warning(f"could not look for the builder {name!r}: {e}")
        return
    # buildx's own record of the builder is in the run's config; without it, the engine still has the
    # builder's container and volume under their buildx names.
    for what, argv in (("builder", ["buildx", "rm", name]),
                       ("container", ["rm", "-f", f"buildx_buildkit_{name}0"]),
                       ("volume", ["volume", "rm", "-f", f"buildx_buildkit_{name}0_state"])):
        try:
            out = cli.run([cli.docker, *argv])
        except CommandFailed as e:
            log.info(f"no {what} to remove ({e})")
        else:
            if out.strip():
                log.info(f"removed {what} {out.strip()}")
