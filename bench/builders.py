"""The same sample on each builder regcache is tested with: cold and warm times and what the cache holds.

    .venv/bin/python bench/builders.py [--runs 3] [--sample compute|multistage]

Builders, measured side by side in one run (interleaved, so a noisy neighbour hits all of them alike):
- docker26: dockerd 26.1.5's docker driver, containerd store, its embedded BuildKit 0.13 (buildx 0.13.1);
- docker28: dockerd 28.5 with the classic store, as on GitHub's hosted runners: regcache makes a
  docker-container builder from the BuildKit image built here (scripts/buildkit-image.sh) per run
  (buildx 0.29.1 from . /var/lib/regcache-setup/docker28/env);
- remote: a standalone buildkitd of the same release in its own network namespace, mutual TLS, a remote
  buildx builder (harness/remote_buildkit.py), used through dockerd 26's client side.

Each run: an auto run writes the cache cold (a fresh cache repository, a builder with no local cache), the
image and the builder's cache are removed, then a fork pull request reads it (warm). Times are the action's
whole run as the runner starts it (`python -m regcache`), builder creation included. The cache size is the
sum of the layer sizes in the cache manifest.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from harness import events  # noqa: E402
from harness.action import run_action, sample_workspace  # noqa: E402
from harness.registry import LocalRegistry  # noqa: E402

USER, PASSWORD = "bench", "bench-password-1c2d"
ENGINE2_ENV = Path("/var/lib/regcache-setup/docker28/env")
BUILDKIT_VERSION = next(line.split()[-1] for line in (ROOT / "images/buildkit/go.mod").read_text().splitlines()
                        if line.startswith("require github.com/moby/buildkit "))
BUILDKIT_IMAGE = f"regcache/buildkit:{BUILDKIT_VERSION}"


def engine2_env() -> dict[str, str]:
    env = dict(os.environ)
    for line in ENGINE2_ENV.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = os.path.expandvars(value.strip('"').replace('"$PATH"', env["PATH"]).replace("$PATH", env["PATH"]))
    return env


def docker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=600)  # noqa: S603


def cache_bytes(registry: LocalRegistry, repo: str, tag: str) -> int:
    manifest = registry.manifest(repo, tag) or {}
    return sum(entry.get("size", 0) for entry in manifest.get("layers") or manifest.get("manifests") or []
               if "layer" in entry.get("mediaType", ""))


def workspace(sample: str, dest: Path, registry: LocalRegistry) -> Path:
    """The sample's context. A docker-container or remote builder does not see the engine's images: the
    local debian:trixie-slim (there is no Docker Hub here) is pushed to the registry and named from there."""
    if sample == "multistage":
        return sample_workspace(dest)
    shutil.copytree(ROOT / "bench" / "samples" / sample, dest)
    base = f"{registry.host}/base/debian:trixie-slim"
    env = {**os.environ, "DOCKER_CONFIG": str(dest.parent / "push-config")}   # the login stays here
    subprocess.run(["docker", "login", "--username", USER, "--password-stdin", registry.host],  # noqa: S603
                   input=PASSWORD, env=env, capture_output=True, text=True, check=True, timeout=60)
    for argv in (["tag", "debian:trixie-slim", base], ["push", "--quiet", base]):
        if docker(env, *argv).returncode != 0:
            raise RuntimeError(f"docker {' '.join(argv)} failed")
    dockerfile = dest / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("FROM debian:trixie-slim", f"FROM {base}"))
    return dest


class Builder:
    """How one builder is reached: the environment of the action's process, inputs to add, and how to empty
    its local cache (the docker28 builder is made fresh by every run)."""

    def __init__(self, name: str, env: dict[str, str], inputs: dict[str, str], clean):
        self.name, self.env, self.inputs, self.clean = name, env, inputs, clean


def builders(stack: contextlib.ExitStack, tmp: Path, registry: LocalRegistry, wanted: list[str]) -> list[Builder]:
    made = []
    base = dict(os.environ)
    if "docker26" in wanted:
        made.append(Builder("docker26", base, {}, lambda: docker(base, "buildx", "prune", "-af")))
    if "docker28" in wanted:
        env2 = engine2_env()
        made.append(Builder("docker28", env2, {"buildkit-image": BUILDKIT_IMAGE}, lambda: None))
    if "remote" in wanted:
        from harness.remote_buildkit import RemoteBuildkit

        bk = RemoteBuildkit(forward_ports=[registry.port]).start()
        stack.callback(bk.stop)
        config = tmp / "remote-config"
        config.mkdir()
        name = bk.create_builder("bench-remote", config)
        env = bk.client_env({**base, "DOCKER_CONFIG": str(config)})
        made.append(Builder("remote", env, {"builder": name},
                            lambda: bk.buildctl("prune", "--all", check=False)))
    return made


def one_run(b: Builder, registry: LocalRegistry, ws: Path, repo: str) -> dict[str, float]:
    b.clean()
    inputs = {"cache-image": f"{registry.host}/{repo}", "registry-username": USER, "github-token": PASSWORD,
              **b.inputs}
    started = time.monotonic()
    cold = run_action(ws, "push", events.push("automation/bors/auto"), inputs, extra_env=b.env, timeout=1800)
    cold_s = time.monotonic() - started
    if cold.code != 0 or cold.outputs.get("cache-write") != "true":
        raise RuntimeError(f"{b.name}: the cold run failed or did not write:\n{cold.log[-3000:]}")
    size = cache_bytes(registry, repo, cold.outputs["cache-key"])
    docker(b.env, "rmi", "-f", cold.outputs["imageid"])
    b.clean()
    started = time.monotonic()
    warm = run_action(ws, "pull_request", events.pull_request(head_repo="contributor/app"), inputs,
                      extra_env=b.env, timeout=1800)
    warm_s = time.monotonic() - started
    if warm.code != 0:
        raise RuntimeError(f"{b.name}: the warm run failed:\n{warm.log[-3000:]}")
    docker(b.env, "rmi", "-f", warm.outputs["imageid"])
    return {"cold": cold_s, "warm": warm_s, "bytes": size,
            "cached": f"{warm.outputs['cached-steps']}/{warm.outputs['total-steps']}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", default="compute", choices=["compute", "multistage"])
    parser.add_argument("--builders", default="docker26,docker28,remote")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-builders-") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        registry = stack.enter_context(LocalRegistry(tmp / "registry", username=USER, password=PASSWORD))
        ws = workspace(args.sample, tmp / "ws", registry)
        chosen = builders(stack, tmp, registry, args.builders.split(","))
        for i in range(args.runs):
            for b in chosen[i % len(chosen):] + chosen[:i % len(chosen)]:
                r = one_run(b, registry, ws, f"bench/{b.name}-{i}-{time.time_ns()}")
                print(f"run {i + 1} {b.name}: cold {r['cold']:.1f}s warm {r['warm']:.1f}s "
                      f"cache {r['bytes'] / 1e6:.1f} MB, {r['cached']} cached", file=sys.stderr, flush=True)
                results.setdefault(b.name, []).append(r)
    print(f"\nsample {args.sample}, {args.runs} runs each, medians (min-max):")
    print(f"{'builder':<10} {'cold s':>16} {'warm s':>16} {'warm/cold':>10} {'cache MB':>10} {'warm cached':>12}")
    for name, rows in results.items():
        cold, warm = [r["cold"] for r in rows], [r["warm"] for r in rows]
        print(f"{name:<10} {_spread(cold):>16} {_spread(warm):>16} "
              f"{statistics.median(warm) / statistics.median(cold):>10.3f} "
              f"{statistics.median(r['bytes'] for r in rows) / 1e6:>10.1f} {rows[-1]['cached']:>12}")
    return 0


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    sys.exit(main())
