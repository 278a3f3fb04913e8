"""What a builder regcache made could leave in the engine: the builder's container and its state volume
(buildx names them buildx_buildkit_<builder>0 and ..._state), and buildx's record of the builder."""

from __future__ import annotations

import subprocess

PREFIX = "regcache-"


def _names(*args: str) -> list[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    return proc.stdout.split() if proc.returncode == 0 else []


def leftovers(prefix: str = PREFIX) -> dict[str, list[str]]:
    return {
        "builders": [b for b in _names("buildx", "ls", "--format", "{{.Name}}") if b.startswith(prefix)],
        "containers": [c for c in _names("ps", "-a", "--format", "{{.Names}}")
                       if c.startswith(f"buildx_buildkit_{prefix}")],
        "volumes": [v for v in _names("volume", "ls", "--format", "{{.Name}}")
                    if v.startswith(f"buildx_buildkit_{prefix}")],
    }


def new_since(before: dict[str, list[str]], prefix: str = PREFIX) -> dict[str, list[str]]:
    """Leftovers that were not there before: what the runs in between left behind."""
    now = leftovers(prefix)
    return {kind: sorted(set(names) - set(before.get(kind, []))) for kind, names in now.items()}


NOTHING: dict[str, list[str]] = {"builders": [], "containers": [], "volumes": []}
