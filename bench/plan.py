"""What the benchmark measures: its samples, the cache settings it compares, its targets, and where the
results go. Importing it puts the repository (harness/) and src/ (regcache) on the path."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

SAMPLES_DIR = ROOT / "bench" / "samples"
RESULTS_DIR = ROOT / "bench" / "results"
USER, PASSWORD = "bench-bot", "bench-registry-password-5c1e9a"   # long: the action masks it in its log
SAMPLES = ("compute", "rustci")
# Cache settings compared in measurement 4, one factor at a time against the action's default (max, zstd).
VARIANTS = {"max-zstd": ("max", "zstd"), "max-gzip": ("max", "gzip"), "min-zstd": ("min", "zstd")}
DEFAULT_VARIANT = "max-zstd"
# The file a "change in the middle" edits: read by the `check` stage, after `build`, before the final stage.
MIDDLE_CHANGE = {"compute": "check.sh"}
AUTO_PUSH = ("push", "automation/bors/auto")
TARGETS = {
    "warm_over_cold": 0.05,          # compute: warm rebuild <= 0.05 x cold build
    "action_over_bare": 1.10,        # action warm <= 1.10 x bare buildx, or within ...
    "action_minus_bare_s": 1.0,      # ... 1 s, whichever is larger
    "reuse_over_pull": 1.20,         # unchanged-key write with reuse <= 1.2 x bare docker pull
    "first_docker_s": 0.30,          # process start to first docker command
}
ACTION_TIMEOUT = 900.0
RETRIES = 2   # a measurement disturbed by others' builds or tests is repeated at most this many times
