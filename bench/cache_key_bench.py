"""Micro-benchmark of the cache key computation (issue 10): not a test, numbers to read.

    .venv/bin/python bench/cache_key_bench.py [--runs 5] [--files 10000] [--results DIR]

Two cases, each timed `--runs` times after one warm-up run (so the page cache is warm, as on a runner
that just checked out), median printed with min and max:
- rust: a Dockerfile shaped like the Rust project's CI images (about 40 lines, 10 COPY sources among
  them globs, a directory and a linked script) in a context of a few hundred files: target < 5 ms;
- copy-all: `COPY . .` of a 10,000-file context (400 directories, files of 0.1 to 4 KiB, a
  `.dockerignore` with 6 patterns, one of them an exception): target < 100 ms.
A third line times a bare loop that only reads and hashes the copy-all files: the floor that the file
system sets on this machine, to read the second line against. Everything is made in a temporary
directory, which is removed afterwards. Exit status 1 when a target is missed.

When a docker engine answers, two more lines measure what the copy-all key adds to a run's start, side by
side: a run reads the context in a thread beside `docker info` and `docker buildx inspect` (which it
needs first anyway, for the platform), so what the user waits for is the key's time beyond theirs.
Printed: the two commands alone, then with the context read beside them, and (for comparison) after them.
Results go to bench/results/cache-key-<date>.{json,txt} and cache-key-latest.{json,txt} (--results).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from saved import save, stamp  # noqa: E402

from regcache.cache_key import compute_cache_key, read_context  # noqa: E402

START_COMMANDS = (["docker", "info", "--format", "{{json .}}"], ["docker", "buildx", "inspect"])

RUST_DOCKERFILE = """\
FROM ubuntu:22.04

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \\
  g++ \\
  make \\
  ninja-build \\
  file \\
  curl \\
  ca-certificates \\
  python3 \\
  git \\
  cmake \\
  sudo \\
  gdb \\
  libssl-dev \\
  pkg-config \\
  xz-utils \\
  && rm -rf /var/lib/apt/lists/*

COPY scripts/cross-apt-packages.sh /scripts/
RUN sh /scripts/cross-apt-packages.sh

COPY host-x86_64/dist-x86_64-linux/shared.sh host-x86_64/dist-x86_64-linux/build-gcc.sh /tmp/
RUN ./build-gcc.sh && apt-get remove -y gcc g++

COPY host-x86_64/dist-x86_64-linux/build-*.sh /tmp/
RUN ./build-python.sh

COPY scripts/sccache.sh scripts/cmake.sh /scripts/
RUN sh /scripts/sccache.sh && sh /scripts/cmake.sh

COPY --from=builder /out /usr/local
COPY host-x86_64/dist-x86_64-linux/patches/ /tmp/patches/
COPY scripts/musl-*.sh ./scripts/shared.sh /build/

ENV RUST_CONFIGURE_ARGS="--enable-full-tools --enable-sanitizers --enable-profiler"
ENV SCRIPT="python3 ../x.py dist --host $HOSTS --target $HOSTS"
ENV CC=clang CXX=clang++
"""


def write(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rng.randbytes(size))


def rust_context(root: Path, rng: random.Random) -> None:
    """src/ci/docker of the Rust repository, roughly: scripts, many image directories, one big Dockerfile."""
    docker = root / "src/ci/docker"
    for name in ("cross-apt-packages.sh", "sccache.sh", "cmake.sh", "shared.sh", "musl-toolchain.sh", "musl.sh"):
        write(docker / "scripts" / name, rng.randint(200, 4000), rng)
    image = docker / "host-x86_64/dist-x86_64-linux"
    for name in ("build-gcc.sh", "build-python.sh", "build-clang.sh", "build-zstd.sh"):
        write(image / name, rng.randint(200, 4000), rng)
    (image / "shared.sh").symlink_to("../../scripts/shared.sh")
    for index in range(8):
        write(image / f"patches/{index:04}.patch", rng.randint(200, 4000), rng)
    for index in range(90):  # the other images: never copied by this Dockerfile
        for name in ("Dockerfile", "build.sh", "config"):
            write(docker / f"host-x86_64/image-{index}/{name}", rng.randint(100, 2000), rng)
    (image / "Dockerfile").write_text(RUST_DOCKERFILE)


def copy_all_context(root: Path, files: int, rng: random.Random) -> None:
    for index in range(files):
        write(root / f"d{index % 20}/e{index % 400 // 20}/f{index}.txt", rng.randint(100, 4096), rng)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . .\n")
    (root / ".dockerignore").write_text("*.md\n**/*.log\nd3/e1\nd4/**\n!d4/e4\nbuild/\n")


def floor(root: Path) -> None:
    """What reading the same files costs at the least, in Python: lstat, open, read, close, sha256 each.

    Printed beside the key's time, because the file system sets most of it (seen here: a sandboxed
    kernel where these system calls take several times what they take on a plain Linux runner).
    """
    stack = [os.fsencode(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                st = entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                fd = os.open(entry.path, os.O_RDONLY)
                try:
                    hashlib.sha256(os.read(fd, st.st_size + 1)).digest()
                finally:
                    os.close(fd)


def engine_answers() -> bool:
    try:
        return subprocess.run(START_COMMANDS[0], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start(pool: ThreadPoolExecutor, read: Callable[[], object] | None, beside: bool) -> None:
    """A run's start: the two docker commands at once, and the context read beside them or after them."""
    calls: list[Future[object]] = [pool.submit(subprocess.run, argv, capture_output=True, check=True)
                                   for argv in START_COMMANDS]
    if read is not None and beside:
        calls.append(pool.submit(read))
    for call in calls:
        call.result()
    if read is not None and not beside:
        read()


def timed(function: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) milliseconds per run: on a shared machine the CPU time is the
    steadier number, as the wall clock also counts the time other processes had the CPU."""
    function()  # warm-up: imports, page cache
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    rng = random.Random(10)
    with tempfile.TemporaryDirectory(prefix="cache-key-bench-") as temp:
        rust = Path(temp, "rust")
        rust_context(rust, rng)
        copy_all = Path(temp, "copy-all")
        copy_all_context(copy_all, args.files, rng)

        def key(workspace: Path, context: str, dockerfile: str) -> object:
            return compute_cache_key(workspace=workspace, context=Path(context), dockerfile=Path(dockerfile),
                                     target="", build_args=(("A", "1"),), platforms=("linux/amd64",), version="")

        rust_key = key(rust, "src/ci/docker", "src/ci/docker/host-x86_64/dist-x86_64-linux/Dockerfile")
        all_key = key(copy_all, ".", "Dockerfile")
        cases = [
            (f"rust ({len(rust_key.files)} files hashed)", 5.0,
             timed(lambda: key(rust, "src/ci/docker", "src/ci/docker/host-x86_64/dist-x86_64-linux/Dockerfile"),
                   args.runs)),
            (f"copy-all ({len(all_key.files)} of {args.files} files hashed)", 100.0,
             timed(lambda: key(copy_all, ".", "Dockerfile"), args.runs)),
            (f"(floor: only read and hash those {args.files})", 0.0, timed(lambda: floor(copy_all), args.runs)),
        ]
        if engine_answers():
            def read() -> object:
                return read_context(workspace=copy_all, context=Path("."), dockerfile=Path("Dockerfile"))

            with ThreadPoolExecutor(max_workers=3) as pool:
                cases += [
                    ("run start: docker info + buildx inspect", 0.0,
                     timed(lambda: start(pool, None, False), args.runs)),
                    ("  with the copy-all context read beside them", 0.0,
                     timed(lambda: start(pool, read, True), args.runs)),
                    ("  (the same read after them)", 0.0, timed(lambda: start(pool, read, False), args.runs)),
                ]
    results, text = report(cases, args.runs)
    print(text, end="")
    save(args.results, ["cache-key-" + stamp(), "cache-key-latest"], results, text)
    return 0 if results["met"] else 1


def report(cases: list[tuple[str, float, tuple[list[float], list[float]]]], runs: int) -> tuple[dict, str]:
    """The results as data (medians in ms, each case's target and verdict) and as the printed table."""
    rows = [{"case": name, "median_ms": statistics.median(wall), "min_ms": min(wall), "max_ms": max(wall),
             "cpu_ms": statistics.median(cpu), "target_ms": target or None,
             "met": None if not target else statistics.median(wall) < target} for name, target, (wall, cpu) in cases]
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": runs,
                     "python": sys.version.split()[0], "cpus": os.cpu_count(),
                     "load_average": round(os.getloadavg()[0], 2), "commit": _commit(), "cases": rows,
                     "met": all(row["met"] is not False for row in rows),
                     # The file system sets most of the copy-all key's time: its ratio to the bare loop's is
                     # the steadier figure on a shared machine.
                     "copy_all_over_floor": rows[1]["median_ms"] / rows[2]["median_ms"]}
    lines = [f"cache key, median of {runs} runs (min-max), Python {results['python']}, {results['cpus']} CPUs, "
             f"load average {results['load_average']:.2f}"]
    for row in rows:
        verdict = "" if row["met"] is None else \
            f"  target < {row['target_ms']:g} ms: {'ok' if row['met'] else 'OVER TARGET'}"
        lines.append(f"  {row['case']:<44} {row['median_ms']:8.2f} ms  ({row['min_ms']:.2f}-{row['max_ms']:.2f}), "
                     f"CPU {row['cpu_ms']:.2f} ms{verdict}")
    lines.append(f"copy-all key / floor: {results['copy_all_over_floor']:.2f}")
    if len(rows) > 3:
        alone, beside, after = (row["median_ms"] for row in rows[3:6])
        results |= {"adds_beside_ms": beside - alone, "adds_after_ms": after - alone}
        lines.append(f"what the copy-all key adds to a run's start: {beside - alone:.1f} ms beside, "
                     f"{after - alone:.1f} ms after")
    else:
        lines.append("no docker engine answers: the run-start lines are left out")
    return results, "\n".join(lines) + "\n"


def _commit() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
