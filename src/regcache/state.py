"""What the main step leaves for its post step: GitHub's file commands GITHUB_OUTPUT and GITHUB_STATE.

Both files take `name<<DELIMITER` / value / `DELIMITER` records. A value saved to GITHUB_STATE reaches the
post step (and only it) as the variable STATE_<name>.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping

BUILDER = "builder"               # the name regcache gives a builder it makes
DOCKER_CONFIG = "docker_config"   # the run's own docker config (docker_config.py)


def append(path: str, name: str, value: str) -> None:
    """Append one record to a file command (GITHUB_OUTPUT, GITHUB_STATE); nothing when path is empty."""
    if not path:
        return
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{name}<<{delimiter}{os.linesep}{value}{os.linesep}{delimiter}{os.linesep}")


def saved(env: Mapping[str, str], name: str) -> str:
    """A value the main step saved, as the runner hands it to the post step."""
    return env.get(f"STATE_{name}", "")
