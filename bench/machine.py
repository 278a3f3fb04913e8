"""The machine the benchmark runs on: commands run on it, what it is, and who else is using it
(a measurement taken while another developer builds or tests is repeated or flagged)."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plan import ROOT

# -- small helpers ------------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], *, env: dict[str, str] | None = None, stdin: str | None = None,
        check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, env=env,  # noqa: S603
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return proc


def timed(argv: Sequence[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = run(argv, **kw)
    return time.monotonic() - started, proc


# -- other developers' activity -------------------------------------------------------------------------

def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen


def foreign_activity() -> list[str]:
    """Command lines of builds and test runs on this machine that this benchmark did not start."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if not args:
            continue
        name = os.path.basename(args[0])
        building = any(a == "buildx" and b == "build" for a, b in zip(args, args[1:], strict=False)) or (
            name == "docker" and len(args) > 1 and args[1] == "build")
        testing = any(os.path.basename(a) in ("pytest", "py.test") for a in args[:3]) or "pytest" in args[1:3]
        if (building or testing) and me not in _ancestors(int(entry.name)):
            found.append(f"{entry.name} {' '.join(args)[:160]}")
    return found


def wait_for_quiet(limit: float, interval: float = 15.0) -> dict[str, Any]:
    """Wait (at most `limit` seconds) until no other build or test run is going on."""
    started = time.monotonic()
    seen: list[str] = []
    while True:
        busy = foreign_activity()
        seen += [b for b in busy if b not in seen]
        waited = time.monotonic() - started
        if not busy:
            return {"quiet": True, "waited_s": round(waited, 1), "seen": seen}
        if waited >= limit:
            log(f"still busy after {waited:.0f}s, measuring anyway: {busy}")
            return {"quiet": False, "waited_s": round(waited, 1), "seen": seen, "busy_at_start": busy}
        log(f"waiting for other developers' builds/tests to finish ({waited:.0f}s of {limit:.0f}s): "
            f"{'; '.join(busy)[:300]}")
        time.sleep(interval)


class ActivityMonitor:
    """Polls in the background, so each measurement can say whether someone else was building meanwhile."""

    def __init__(self, interval: float = 2.0):
        self.interval, self.samples = interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), foreign_activity()))
            self._stop.wait(self.interval)

    def __enter__(self) -> ActivityMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def during(self, start: float, end: float) -> list[str]:
        seen: list[str] = []
        for t, busy in list(self.samples):
            if start - self.interval <= t <= end + self.interval:
                seen += [b for b in busy if b not in seen]
        return seen



# -- the machine ------------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    def out(argv: Sequence[str]) -> str:
        try:
            return run(argv, check=False, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    pretty = re.search(r'PRETTY_NAME="([^"]*)"', os_release)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu.group(1).strip() if cpu else "",
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": pretty.group(1) if pretty else "",
        "docker": out(["docker", "version", "--format", "{{.Server.Version}}"]),
        "docker_client": out(["docker", "version", "--format", "{{.Client.Version}}"]),
        "buildx": out(["docker", "buildx", "version"]),
        "storage": out(["docker", "info", "--format", "{{json .DriverStatus}}"]),
        "builder": out(["docker", "buildx", "inspect"]).splitlines()[:3],
        "python": platform.python_version(),
        "registry": out(["docker-registry", "--version"]),
        "git_commit": out(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
        "git_dirty": bool(out(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])),
    }


def tree_hash(src: Path) -> str:
    """The source the action ran from (the working tree may differ from the commit)."""
    digest = hashlib.sha256()
    for path in sorted((src / "regcache").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
