"""Run regcache as the runner runs it: a separate process with INPUT_* and GITHUB_* variables."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import events

SRC = Path(__file__).resolve().parents[2] / "src"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multistage"


@dataclass
class ActionRun:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    @property
    def log(self) -> str:
        return self.stdout + self.stderr


def parse_outputs(text: str) -> dict[str, str]:
    outputs = {}
    for match in re.finditer(r"^([\w-]+)<<(ghadelimiter_[\w-]+)\n(.*?)\n\2$", text, re.M | re.S):
        outputs[match.group(1)] = match.group(3)
    return outputs


def sample_workspace(dest: Path) -> Path:
    """A copy of examples/multistage with the host's static busybox in its context."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("busybox"))
    from tests.support.images import busybox_context

    busybox_context(dest)
    return dest


def run_action(workspace: Path, event_name: str, payload: dict[str, Any], inputs: dict[str, str],
               extra_env: dict[str, str] | None = None, timeout: float = 600) -> ActionRun:
    run_dir = workspace.parent / f"run-{os.urandom(4).hex()}"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    env.update(events.env_for(run_dir, event_name, payload))
    env["GITHUB_WORKSPACE"] = str(workspace)
    output_file, summary_file = run_dir / "output", run_dir / "summary.md"
    output_file.touch()
    summary_file.touch()
    env.update({"GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary_file),
                "PYTHONPATH": str(SRC)})
    env.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
    env.update(extra_env or {})
    proc = subprocess.run([sys.executable, "-m", "regcache"], cwd=workspace, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return ActionRun(proc.returncode, proc.stdout, proc.stderr, parse_outputs(output_file.read_text()),
                     summary_file.read_text())
