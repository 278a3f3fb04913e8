"""The main job on an embedded default: a local registry on 127.0.0.1 standing in for ghcr.io.

1. an `auto` run builds examples/multistage cold and writes the cache (mode=max) to the registry;
2. the image and the builder's local cache are removed (`docker rmi`, `docker buildx prune -af`);
3. a `pull_request` run from a fork rebuilds from the registry cache, reading only.
Both times and the cached steps are printed. Note: step 2 empties this engine's build cache.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from harness import events  # noqa: E402
from harness.action import run_action, sample_workspace  # noqa: E402
from harness.registry import LocalRegistry  # noqa: E402

USER, PASSWORD = "demo", "demo-password-0000"


def show(title: str, run) -> None:
    o = run.outputs
    print(f"\n--- {title}: exit {run.code}, build-kind={o.get('build-kind')} cache-read={o.get('cache-read')} "
          f"cache-write={o.get('cache-write')} cache-hit={o.get('cache-hit')} "
          f"({o.get('cached-steps')} of {o.get('total-steps')} steps cached)")
    for line in run.stdout.splitlines():
        if line.startswith(("#", "::warning", "::error")) or "steps cached" in line:
            print("   ", line)
    if run.code != 0:
        print(run.stdout[-4000:], run.stderr[-4000:])
        raise SystemExit(run.code)


def seconds(run) -> float:
    for line in run.stdout.splitlines():
        if "steps cached (cache-hit:" in line:
            return float(line.rsplit(" in ", 1)[1].rstrip("s"))
    return float("nan")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="regcache-demo-") as tmp_name:
        tmp = Path(tmp_name)
        with LocalRegistry(tmp / "registry", username=USER, password=PASSWORD) as registry:
            ws = sample_workspace(tmp / "workspace")
            inputs = {"cache-image": f"{registry.host}/demo/app-cache", "registry-username": USER,
                      "github-token": PASSWORD}
            print(f"registry: {registry.host} (htpasswd auth), sample: examples/multistage")
            subprocess.run(["docker", "buildx", "prune", "-af"], check=True, capture_output=True)

            cold = run_action(ws, "push", events.push("automation/bors/auto"), inputs)
            show("cold build, auto run (reads and writes the cache)", cold)

            subprocess.run(["docker", "rmi", "-f", cold.outputs["imageid"]], check=True, capture_output=True)
            subprocess.run(["docker", "buildx", "prune", "-af"], check=True, capture_output=True)
            warm = run_action(ws, "pull_request", events.pull_request(head_repo="contributor/rust"), inputs)
            show("clean builder, pull request from a fork (reads only)", warm)

            c, w = seconds(cold), seconds(warm)
            print(f"\ncold build: {c:.1f}s   warm rebuild from the registry cache: {w:.1f}s   "
                  f"({w / c:.2f} x cold); cached steps: {warm.outputs['cached-steps']} of "
                  f"{warm.outputs['total-steps']}; cache ref: {warm.outputs['cache-ref']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
