"""Every docker command a run starts, recorded: a `docker` first on PATH that writes down its argv and its
environment, then execs the real docker in its place.

Polling /proc sees a process only if it lives across a poll; this sees every call, however short, because
the call itself writes the record before docker runs (and if it cannot, docker does not run: exit 97).
What docker starts in turn (its buildx plugin, credential helpers) is not docker on PATH: a /proc watch
still covers those.

Usage::

    calls = DockerCalls(tmp / "docker-calls")
    run = run_action(..., extra_env={"PATH": calls.path})
    calls.recorded()                        # [Call(argv=[b"docker", b"login", ...], env={...}), ...] in order
    containing(calls.recorded(), b"token")  # the calls with it in an argument or the environment
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

WRAPPER = """#!/bin/sh
# docker, recorded (tests/support/argvlog.py): this call's argv and environment, then the real docker
record=$(mktemp {log_dir}/call.XXXXXXXXXX) || exit 97
cat /proc/$$/cmdline > "$record.argv" && cat /proc/$$/environ > "$record.env" || exit 97
exec {real} "$@"
"""


@dataclass(frozen=True)
class Call:
    argv: list[bytes]            # docker's argv: "docker", then the arguments it was given
    env: dict[bytes, bytes]      # the environment it was started with
    started: float               # the record's mtime: the order calls were made in

    @property
    def command(self) -> str:
        return " ".join(a.decode(errors="replace") for a in self.argv)


class DockerCalls:
    def __init__(self, root: Path, real: str | None = None):
        self.real = real or shutil.which("docker")
        if self.real is None:
            raise RuntimeError("no docker on PATH to record")
        self.bin_dir, self.log_dir = root / "bin", root / "calls"
        self.bin_dir.mkdir(parents=True)
        self.log_dir.mkdir()
        wrapper = self.bin_dir / "docker"
        wrapper.write_text(WRAPPER.format(log_dir=shlex.quote(str(self.log_dir)), real=shlex.quote(self.real)))
        wrapper.chmod(0o755)

    @property
    def path(self) -> str:
        """PATH with the recording docker first."""
        return f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"

    def recorded(self) -> list[Call]:
        calls = []
        for argv_file in self.log_dir.glob("call.*.argv"):
            argv = argv_file.read_bytes().split(b"\0")[:-1]     # NUL-terminated: /bin/sh, the wrapper, args
            env_file = argv_file.with_suffix(".env")
            env = dict(entry.partition(b"=")[::2] for entry in env_file.read_bytes().split(b"\0") if entry)
            calls.append(Call([b"docker", *argv[2:]], env, argv_file.stat().st_mtime))
        return sorted(calls, key=lambda c: c.started)


def containing(calls: list[Call], needle: bytes) -> list[str]:
    """The calls that carry needle in an argument or in an environment variable (its name or value), described."""
    hits = []
    for call in calls:
        if any(needle in arg for arg in call.argv):
            hits.append(f"argv: {call.command[:300]}")
        hits += [f"env {key.decode(errors='replace')}: {call.command[:200]}"
                 for key, value in call.env.items() if needle in key or needle in value]
    return hits
