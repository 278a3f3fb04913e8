"""The README's benchmark figures are the committed results they cite: a figure fails here when it is not.

- the action image table and the pull ratio: bench/results/image-latest.json (bench/image);
- what the cache key costs: bench/results/cache-key-latest.json (bench/cache_key_bench.py).
Rounding as the README prints it: MB and ms to one decimal, seconds to two, ratios as printed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
TEXT = re.sub(r"\s+", " ", (ROOT / "README.md").read_text(encoding="utf-8"))

# README table row -> the bench's variant label
IMAGE_ROWS = {
    "before (`bcf1ad6`, Debian trixie-slim, gzip)": "base-gzip",
    "now, gzip": "head-gzip",
    "now, zstd (as released)": "head-zstd",
    "floor: docker and docker-buildx alone": "floor-zstd",
}


def _row(label: str) -> list[str]:
    """The five cells after the label (layers, compressed, unpacked, pull, warm run)."""
    found = re.findall(r"\| " + re.escape(label) + r" \|((?:[^|]*\|){5})", TEXT)
    assert len(found) == 1, f"README.md has {len(found)} image table rows for {label!r}"
    return [cell.strip().strip("*") for cell in found[0].split("|")[:5]]


def test_the_image_table_is_the_latest_image_bench():
    results = json.loads((RESULTS / "image-latest.json").read_text())
    by = {variant["label"]: variant for variant in results["variants"]}
    for label, variant in IMAGE_ROWS.items():
        v = by[variant]
        warm = f"{v['warm_run_s']['median']:.2f} s" if v.get("warm") else ""
        expected = [str(v["layers"]), f"{v['compressed_bytes'] / 1e6:.1f} MB", f"{v['unpacked_bytes'] / 1e6:.1f} MB",
                    f"{v['pull_s']['median']:.2f} s", warm]
        assert _row(label) == expected, label
    assert f"On {results['date'][:10]} ({results['runs']} runs, medians; `bench/results/image-latest.txt`)" in TEXT
    assert f"The pull takes **{results['pull_ratio']:.3f}×** the time it took before" in TEXT
    missed = "is missed" if not results["met"] else "is met"
    assert f"the target ({results['pull_target']:g}) {missed}" in TEXT
    spread = {v["label"]: v["pull_s"]["median"] for v in results["variants"]}
    per_file = (spread["2000-files"] - spread["1-file"]) / 2000 * 1000
    assert (f"150 MB in one file pulls in {spread['1-file']:.2f} s, in 2,000 files in {spread['2000-files']:.2f} s: "
            f"{per_file:.2f} ms per file") in TEXT


def test_the_key_costs_are_the_latest_key_bench():
    results = json.loads((RESULTS / "cache-key-latest.json").read_text())
    rust, copy_all, floor = results["cases"][:3]
    assert f"its newest run: {results['date'][:10]}, {results['runs']} runs, medians" in TEXT
    assert (f"**{rust['median_ms']:.1f} ms** for a Rust-sized Dockerfile (target: under {rust['target_ms']:g} ms)"
            in TEXT)
    verdict = "missed" if not copy_all["met"] else "met"
    assert (f"**{copy_all['median_ms']:.1f} ms** for a 10,000-file `COPY . .` (target: under "
            f"{copy_all['target_ms']:g} ms, {verdict}), **{results['copy_all_over_floor']:.2f}×** a bare loop that "
            f"only reads and hashes the same files ({floor['median_ms']:.1f} ms)") in TEXT
    assert (f"adds {results['adds_beside_ms']:.1f} ms to a run's start, against {results['adds_after_ms']:.1f} ms "
            "when read after them") in TEXT
