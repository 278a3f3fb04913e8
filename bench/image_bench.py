"""Action image benchmark (issue 11): what a job pays for the action's image, before and after a change.

    bench/image [--base COMMIT] [--runs 3]

A hosted runner starts every job on a fresh machine, so the action's image is pulled in every job before the
step runs. On the engine like the hosted runners' (Docker 28, classic store: scripts/setup-engine28.sh), side
by side in one run:
- the action image built from the Dockerfile at --base (default: the commit before the image work) and at
  this working tree, each as the release workflow builds it (a docker-container builder, pushed to a
  registry: gzip layers for the base, as it was released, and the head's release compression, plus gzip
  for comparison), to a local registry on 127.0.0.1;
- each pulled with nothing cached, --runs times, the images' order alternating from run to run (median,
  min-max); compressed and unpacked sizes;
- regcache's warm run in each image (the container started as the runner starts a Docker action, a cache
  already in the registry): what a job pays after the pull;
- the ratio of the head's pull to the base's (target <= 0.35) and of the whole (pull + warm run);
- the floor: an image of docker and docker-buildx alone (what the action image must hold), pulled the same
  way: the least any image of this action can cost;
- what a pull pays per file: 150 MB of random data in 1 file and in 2,000 files.
Results go to bench/results/image-<date>.{json,txt} and image-latest.{json,txt}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from saved import save, stamp  # noqa: E402

from harness import events  # noqa: E402
from harness.act import RELEASE_BUILDER, build_released_image, release_outputs  # noqa: E402
from harness.action import parse_outputs, sample_workspace  # noqa: E402
from harness.registry import LocalRegistry  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
BASE = "bcf1ad6"  # the last commit before the action image was slimmed (issue 11)
# The compression release.yml publishes the image with.
RELEASE_COMPRESSION = "zstd" if "compression=zstd" in release_outputs() else "gzip"
BUILDKIT_IMAGE = os.environ.get("REGCACHE_TEST_BUILDKIT_IMAGE", "regcache/buildkit:v0.34.2")
PULL_TARGET = 0.35


def log(message: str) -> None:
    print(f"image-bench: {message}", file=sys.stderr, flush=True)


def docker(*argv: str, check: bool = True, timeout: float = 1800, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(argv[:3])} … failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


@dataclass
class Variant:
    label: str  # base-gzip, head-zstd, ...
    tree: Path
    compression: str
    ref: str = ""  # registry/repository@digest
    compressed: int = 0  # bytes: the manifest's layers and config
    unpacked: int = 0  # bytes: docker image inspect's Size after a pull
    layers: int = 0
    pulls: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)


SYNTHETIC_BYTES = 150_000_000


def synthetic(dest: Path, files: int) -> Path:
    """A context whose image is SYNTHETIC_BYTES of random data in `files` files."""
    (dest / "data").mkdir(parents=True)
    size = SYNTHETIC_BYTES // files
    for index in range(files):
        (dest / "data" / f"{index:05}").write_bytes(os.urandom(size))
    (dest / "Dockerfile").write_text("FROM scratch\nCOPY data /data\n")
    return dest


def source_tree(commit: str, dest: Path) -> Path:
    """The files of `commit`, as a clean checkout has them."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def build_and_push(variant: Variant, registry: LocalRegistry, tmp: Path) -> None:
    """Build as the release workflow does (a docker-container builder) and push to the registry."""
    name = f"{registry.host}/bench/action:{variant.label}"
    started = time.monotonic()
    build_released_image(name, registry.host, BUILDKIT_IMAGE, tmp / f"build-{variant.label}.log", variant.tree,
                         outputs=f"type=image,push=true,compression={variant.compression},force-compression=true,"
                                 "oci-mediatypes=true")
    digest = registry.manifest_digest("bench/action", variant.label)
    manifest = registry.image_manifest("bench/action", variant.label)
    assert digest and manifest, f"{name} was not pushed"
    variant.ref = f"{registry.host}/bench/action@{digest}"
    variant.layers = len(manifest["layers"])
    variant.compressed = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    log(f"built and pushed {variant.label} in {time.monotonic() - started:.0f} s: "
        f"{variant.compressed / 1e6:.1f} MB in {variant.layers} layer(s)")


def diff_ids(registry: LocalRegistry, ref: str) -> set[str]:
    """The uncompressed layers (diffIDs) of a pushed image, from its config."""
    repository, digest = ref.split("/", 1)[1].split("@")
    manifest = registry.image_manifest(repository, digest)
    assert manifest, f"{ref} is not in the registry"
    return set(json.loads(registry.blob(repository, manifest["config"]["digest"]))["rootfs"]["diff_ids"])


class NothingCached:
    """The engine without any layer of the measured images, as on a fresh runner: images that share one
    (debian:trixie-slim, which the base commit's image is built on, and every image made from it: the
    BuildKit image, the e2e runner, ...) are saved to a file and removed, and loaded again afterwards.
    A container that uses one of them would keep its layers: the release builder's is removed (its state,
    the build cache, is kept); any other stops the benchmark."""

    def __init__(self, layers: set[str], tmp: Path):
        self.layers, self.saved = layers, tmp / "kept-images.tar"
        self.tags: list[str] = []

    def sharing(self) -> dict[str, list[str]]:
        """Local images (ID: tags) that hold one of the layers."""
        ids = docker("image", "ls", "--all", "--quiet", "--no-trunc").stdout.split()
        found = {}
        for image in dict.fromkeys(ids):
            info = json.loads(docker("image", "inspect", image).stdout)[0]
            if self.layers & set(info["RootFS"].get("Layers") or []):
                found[image] = info.get("RepoTags") or []
        return found

    def __enter__(self) -> NothingCached:
        docker("buildx", "rm", "--keep-state", RELEASE_BUILDER, check=False)
        sharing = self.sharing()
        users = [c for image in sharing for c in docker("ps", "--all", "--quiet", "--filter",
                                                          f"ancestor={image}").stdout.split()]
        if users:
            raise RuntimeError(f"containers {users} use images that share layers with the measured ones: "
                               "remove them first")
        self.tags = sorted({tag for tags in sharing.values() for tag in tags})
        if self.tags:
            log(f"saving and removing {len(sharing)} image(s) that share layers with the measured ones: "
                f"{', '.join(self.tags)}")
            docker("save", "--output", str(self.saved), *self.tags)
        for image in sharing:
            docker("image", "rm", "--force", image, check=False)
        if self.sharing():
            raise RuntimeError("layers of the measured images are still in the engine")
        return self

    def clear(self, variants: list[Variant]) -> None:
        for variant in variants:
            docker("image", "rm", "--force", variant.ref, check=False)
        left = self.sharing()
        if left:
            raise RuntimeError(f"images still hold layers of the measured ones: {left}")

    def __exit__(self, *exc: object) -> None:
        if self.tags:
            docker("load", "--quiet", "--input", str(self.saved))
            self.saved.unlink()


def pull(variant: Variant) -> None:
    started = time.perf_counter()
    docker("pull", "--quiet", variant.ref)
    variant.pulls.append(time.perf_counter() - started)
    variant.unpacked = int(docker("image", "inspect", "--format", "{{.Size}}", variant.ref).stdout.strip())


class Workspace:
    """The sample a warm run builds, its cache written once, and the runner's files for a run."""

    def __init__(self, tmp: Path, registry: LocalRegistry):
        self.tmp, self.registry = tmp, registry
        self.path = sample_workspace(tmp / "workspace")
        # The registry has no auth: any token logs in, and a token is what lets a trusted run write.
        self.inputs = {"cache-image": f"{registry.host}/bench/cache", "registry-username": "bench",
                       "github-token": "bench-token-unused", "buildkit-image": BUILDKIT_IMAGE}

    def run(self, image: str, event: str = "pull_request") -> tuple[float, dict[str, str], str]:
        """One run of the action in `image`, as the runner starts a Docker action: wall time, outputs, log.
        A pull request reads the cache (the warm run); the auto build writes it."""
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.tmp))
        payload = events.push("automation/bors/auto") if event == "push" else events.pull_request()
        env = events.env_for(run_dir, event, payload)
        env.update({"GITHUB_WORKSPACE": str(self.path), "GITHUB_OUTPUT": str(run_dir / "output"),
                    "GITHUB_STEP_SUMMARY": str(run_dir / "summary"), "GITHUB_STATE": str(run_dir / "state"),
                    "CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(run_dir)})
        env.update({f"INPUT_{k.upper()}": v for k, v in self.inputs.items()})
        for name in ("output", "summary", "state"):
            (run_dir / name).touch()
        socket = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
        argv = ["run", "--rm", "--network", "host", "-v", f"{socket}:/var/run/docker.sock",
                "-v", f"{self.path}:{self.path}", "-v", f"{run_dir}:{run_dir}", "--workdir", str(self.path)]
        for key in env:
            argv += ["-e", key]
        started = time.perf_counter()
        proc = subprocess.run(["docker", *argv, image], env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=900, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        outputs = parse_outputs((run_dir / "output").read_text())
        shutil.rmtree(run_dir, ignore_errors=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the action in {image} failed ({proc.returncode}): {proc.stdout[-3000:]}")
        return elapsed, outputs, proc.stdout


def report(variants: list[Variant], base: str, runs: int, machine: dict[str, str]) -> tuple[dict[str, Any], str]:
    by = {v.label: v for v in variants}
    old, new, floor = by["base-gzip"], by[f"head-{RELEASE_COMPRESSION}"], by[f"floor-{RELEASE_COMPRESSION}"]
    floor_ratio = statistics.median(f / o for f, o in zip(floor.pulls, old.pulls, strict=True))
    pull_ratio = statistics.median(n / o for n, o in zip(new.pulls, old.pulls, strict=True))
    job_ratio = statistics.median((np + nw) / (op + ow) for np, nw, op, ow
                                  in zip(new.pulls, new.warm, old.pulls, old.warm, strict=True))
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "base": base, "runs": runs, "machine": machine,
        "variants": [{"label": v.label, "compression": v.compression, "ref": v.ref, "layers": v.layers,
                      "compressed_bytes": v.compressed, "unpacked_bytes": v.unpacked,
                      "pull_s": stats(v.pulls), "warm_run_s": stats(v.warm) if v.warm else None, "pulls": v.pulls,
                      "warm": v.warm}
                     for v in variants],
        "pull_ratio": pull_ratio, "job_ratio": job_ratio, "floor_ratio": floor_ratio, "pull_target": PULL_TARGET,
        "met": pull_ratio <= PULL_TARGET,
    }
    lines = [f"action image, {machine['engine']}; base {base} vs this tree; median of {runs} (min-max)",
             f"  {'image':<12} {'layers':>6} {'compressed':>11} {'unpacked':>10} {'pull':>20} {'warm run':>20}"]
    for v in variants:
        pull = stats(v.pulls)
        warm = f"{stats(v.warm)['median']:>6.2f} s ({stats(v.warm)['min']:.2f}-{stats(v.warm)['max']:.2f})" \
            if v.warm else f"{'(not runnable)':>20}"
        lines.append(f"  {v.label:<12} {v.layers:>6} {v.compressed / 1e6:>8.1f} MB {v.unpacked / 1e6:>7.1f} MB "
                     f"{pull['median']:>6.2f} s ({pull['min']:.2f}-{pull['max']:.2f}) {warm}")
    mark = "ok" if results["met"] else "MISSED"
    files_s = stats(by["2000-files"].pulls)["median"] - stats(by["1-file"].pulls)["median"]
    lines += [f"  150 MB in 2,000 files rather than 1: +{files_s:.2f} s ({files_s / 1999 * 1000:.2f} ms per file)",
              f"  pull, head-{RELEASE_COMPRESSION} / base-gzip: {pull_ratio:.3f} (target <= {PULL_TARGET}: {mark})",
              f"  pull + warm run, head-{RELEASE_COMPRESSION} / base-gzip: {job_ratio:.3f}",
              f"  floor (docker and docker-buildx alone) / base-gzip: {floor_ratio:.3f}"]
    return results, "\n".join(lines) + "\n"


def machine_facts() -> dict[str, str]:
    version = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    driver = docker("info", "--format", "{{.Driver}}").stdout.strip()
    return {"engine": f"Docker {version} ({driver})", "cpus": str(os.cpu_count()),
            "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True, check=False).stdout.strip()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default=BASE, help=f"the commit to compare with (default {BASE})")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    machine = machine_facts()
    if "overlay2" not in machine["engine"]:
        log(f"warning: {machine['engine']} is not the classic store the hosted runners have")
    with tempfile.TemporaryDirectory(prefix="regcache-image-bench-") as temp:
        tmp = Path(temp)
        variants = [Variant("base-gzip", source_tree(args.base, tmp / "base"), "gzip"),
                    Variant("head-gzip", ROOT, "gzip")]
        if RELEASE_COMPRESSION != "gzip":
            variants.append(Variant(f"head-{RELEASE_COMPRESSION}", ROOT, RELEASE_COMPRESSION))
        head = variants[-1]
        floor = Variant(f"floor-{RELEASE_COMPRESSION}", tmp / "floor", RELEASE_COMPRESSION)
        # What a pull pays per file: the same bytes (random, so no compression helps) in 1 and in 2,000 files.
        spread = [Variant(f"{count}-file{'s' if count > 1 else ''}", synthetic(tmp / f"files-{count}", count),
                          RELEASE_COMPRESSION) for count in (1, 2000)]
        with LocalRegistry(tmp / "registry") as registry:
            try:
                for variant in variants:
                    build_and_push(variant, registry, tmp)
                # The floor: docker and docker-buildx alone, out of the head's image (the image must have both).
                floor.tree.mkdir()
                (floor.tree / "Dockerfile").write_text(
                    f"FROM {head.ref} AS head\nFROM scratch\nCOPY --from=head /usr/bin/docker /usr/bin/docker\n"
                    "COPY --from=head /usr/libexec/docker/cli-plugins/docker-buildx /usr/libexec/docker/cli-plugins/\n")
                build_and_push(floor, registry, tmp)
                variants.append(floor)
                for variant in spread:
                    build_and_push(variant, registry, tmp)
                variants += spread
                workspace = Workspace(tmp, registry)
                layers = set().union(*(diff_ids(registry, variant.ref) for variant in variants))
                with NothingCached(layers, tmp) as empty:
                    for i in range(args.runs):
                        for variant in variants[i % len(variants):] + variants[:i % len(variants)]:
                            empty.clear(variants)
                            pull(variant)
                            log(f"run {i + 1}: {variant.label} pulled in {variant.pulls[-1]:.2f} s")
                    empty.clear(variants)
                runnable = [variant for variant in variants if variant is not floor and variant not in spread]
                for variant in runnable:
                    docker("pull", "--quiet", variant.ref)
                _, outputs, text = workspace.run(head.ref, "push")  # the cache the warm runs read
                if outputs.get("cache-write") != "true":
                    raise RuntimeError(f"the run that writes the cache did not: {text[-3000:]}")
                for i in range(args.runs):
                    for variant in runnable[i % len(runnable):] + runnable[:i % len(runnable)]:
                        elapsed, outputs, text = workspace.run(variant.ref)
                        if outputs.get("cache-hit") != "full":
                            raise RuntimeError(f"the warm run in {variant.label} was not a full hit: {text[-3000:]}")
                        variant.warm.append(elapsed)
            finally:
                for variant in variants:
                    if variant.ref:
                        docker("image", "rm", "--force", variant.ref, check=False)
    results, table = report(variants, args.base, args.runs, machine)
    print(table, end="")
    save(args.results, ["image-" + stamp(), "image-latest"], results, table)
    return 0 if results["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
