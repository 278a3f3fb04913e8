"""regcache benchmark (GitHub issue 6): what the registry cache and the action itself cost and save.

Runs the action the way the runner does (``python -m regcache`` with INPUT_*/GITHUB_* variables, through
harness/action.py) against a real registry on 127.0.0.1 (harness/registry.py, htpasswd auth
like ghcr.io) and the engine's default builder, on the Dockerfiles under bench/samples/. Each measurement
is repeated --runs times; compared measurements are taken side by side in the same run (their order
alternating from run to run), and ratios are computed per run, then their median is reported.
See bench/README.md for what each line means. Run it through bench/run.

Note: every measurement starts from a clean builder: `docker rmi` of the images it made and
`docker buildx prune -af`, which empties this engine's whole build cache.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import plan  # noqa: F401  (puts harness/ and src/ on the path)
from action_runs import Bench
from machine import ActivityMonitor, foreign_activity, log, machine, run, tree_hash, wait_for_quiet
from measurements import Record, compare_sources, measure_sample, measure_start, rotate
from plan import PASSWORD, RESULTS_DIR, ROOT, SAMPLES, SAMPLES_DIR, USER
from results import render, summarise
from saved import save, stamp

from harness.registry import LocalRegistry


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    p.add_argument("--quick", action="store_true", help="1 run, no waiting; results go to *-quick.{json,txt}")
    p.add_argument("--samples", default=",".join(SAMPLES), help=f"comma-separated, default {','.join(SAMPLES)}")
    p.add_argument("--wait", type=float, default=600, help="wait at most this many seconds for other "
                   "developers' builds and test runs to finish before measuring (default 600; 0: don't)")
    p.add_argument("--results", type=Path, default=RESULTS_DIR, help="where to write the results")
    p.add_argument("--src", type=Path, help="run the action from this source tree (the directory holding "
                   "regcache/) instead of src/")
    p.add_argument("--compare-src", type=Path, metavar="DIR", help="measure only the action's fixed cost (warm "
                   "rebuild, nothing to do, start) from src/ and from DIR, interleaved, on the first sample: to "
                   "measure a proposed change to src/")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.wait = 1, 0
    samples = [s.strip() for s in args.samples.split(",") if s.strip()]
    for sample in samples:
        if not (SAMPLES_DIR / sample / "Dockerfile").is_file():
            p.error(f"no sample {sample!r} under {SAMPLES_DIR}")
    if not run(["docker", "image", "inspect", "debian:trixie-slim"], check=False).returncode == 0:
        p.error("debian:trixie-slim is missing: run scripts/base-image.sh (bench/run does, as root)")

    began, date = time.monotonic(), datetime.now(UTC)
    src_at_start = tree_hash(args.src or ROOT / "src")
    machine_at_start = machine()   # the commit and versions measured, before anything can change them
    quiet = wait_for_quiet(args.wait) if args.wait > 0 else {"quiet": not foreign_activity(), "waited_s": 0.0,
                                                             "seen": foreign_activity()}
    rec = Record()
    with tempfile.TemporaryDirectory(prefix="regcache-bench-") as tmp_name, ActivityMonitor() as monitor:
        tmp = Path(tmp_name)
        with LocalRegistry(tmp / "registry", username=USER, password=PASSWORD) as registry:
            b = Bench(args, tmp, registry, monitor)
            log(f"registry {registry.host}; {args.runs} run(s) of {', '.join(samples)}")
            image_ready: dict[str, bool] = {}
            if args.compare_src:
                try:
                    compared, table = compare_sources(b, samples[0], args.compare_src.resolve(), args.runs)
                finally:
                    b.clean()
                compared.update(date=date.isoformat(timespec="seconds"), runs=args.runs, quiet=quiet,
                                machine=machine(), anomalies=b.anomalies, foreign_activity=monitor.during(0, 1e12))
                print(table, end="")
                save(args.results, [stamp(date) + "-compare"], compared, table)
                return 0
            try:
                for i in range(args.runs):
                    rec.run = i
                    for sample in rotate(samples, i):
                        log(f"run {i + 1}/{args.runs}: {sample}")
                        try:
                            measure_sample(b, rec, sample, i, image_ready)
                        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                            # One broken run must not throw away half an hour of the others.
                            b.anomaly(f"{sample}: run {i + 1} stopped: {str(e)[:1500]}")
                start = measure_start(rec, args.runs, args.src or ROOT / "src")
            finally:
                b.clean()
            anomalies, anomaly_logs, retries = b.anomalies, b.anomaly_logs, b.retries
    sample_results, targets, more_anomalies = summarise(rec, start)
    anomalies += more_anomalies
    if tree_hash(args.src or ROOT / "src") != src_at_start:
        anomalies.append("the action's source changed while the benchmark ran: runs measured different code")
    results = {
        "date": date.isoformat(timespec="seconds"), "runs": args.runs, "quick": args.quick,
        "samples_run": samples, "src": str(args.src or ROOT / "src"), "src_sha256": src_at_start,
        "machine": machine_at_start, "quiet": quiet,
        "duration_s": round(time.monotonic() - began, 1), "samples": sample_results, "start": start,
        "targets": targets, "anomalies": anomalies, "anomaly_logs": anomaly_logs, "retries": retries,
        "foreign_activity": rec.foreign, "raw": rec.data, "steps": rec.logs,
    }
    table = render(results)
    print(table, end="")
    stem = stamp(date) + ("-quick" if args.quick else "")
    save(args.results, [stem] if args.quick else [stem, "latest"], results, table)
    log(f"wrote {args.results / (stem + '.json')}{'' if args.quick else ' and latest.{json,txt}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
