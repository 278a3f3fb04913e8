"""A docker config of the run's own, so that the registry credential lives where only this run reads it.

`docker login` writes the credential into the client's config (`$DOCKER_CONFIG/config.json`, by default
`~/.docker`). Inside the action's container `~` is /github/home, which the runner mounts into every later
step of the job: a credential left there (a step killed with SIGKILL skips every `finally`) would be
readable by them. So the run logs in with a config of its own in the container's private /tmp: it goes
with the container, and the post step removes it when the run did not (outside a container too).

The new config keeps what the user's config says about builders and CLI plugins (a `builder` input names a
builder defined there), and none of its credentials nor buildx's build history.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

# Keys of config.json that carry or lead to credentials: never copied.
_CREDENTIAL_KEYS = frozenset({"auths", "credsStore", "credHelpers"})
PREFIX = "regcache-docker-config-"


def user_config_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME") or Path.home()) / ".docker")


def _history(directory: str, names: list[str]) -> set[str]:
    """What buildx only adds to, never needs: its record of every build (refs/) and of when each builder
    was last used (activity/). They grow with each build; copied, a long-lived runner's took seconds."""
    return {"refs", "activity"} & set(names) if Path(directory).name == "buildx" else set()


def make_private_config(user_config: Path) -> Path:
    """A new config dir (mode 0700) with the user's builders, CLI plugins and settings, no credentials."""
    private = Path(tempfile.mkdtemp(prefix=PREFIX))
    if (user_config / "buildx").is_dir():
        shutil.copytree(user_config / "buildx", private / "buildx", symlinks=True, ignore=_history)
    if (user_config / "cli-plugins").exists():
        (private / "cli-plugins").symlink_to((user_config / "cli-plugins").resolve())
    try:
        settings = json.loads((user_config / "config.json").read_text())
    except (OSError, ValueError):
        settings = {}
    if isinstance(settings, dict):
        kept = {k: v for k, v in settings.items() if k not in _CREDENTIAL_KEYS}
        if kept:
            (private / "config.json").write_text(json.dumps(kept))
    return private


def remove_private_config(path: Path) -> None:
    """Remove a config made by make_private_config; refuses any other directory."""
    if path.name.startswith(PREFIX) and path.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(path, ignore_errors=True)
