"""Where a benchmark's results go: <name>.json (the data) and <name>.txt (the table it printed), under a
dated name and, for a run the README cites, a -latest name too (tests/unit/test_readme_figures.py checks the
README against those)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def stamp(when: datetime | None = None) -> str:
    """The dated part of a results file's name: 2026-11-30T054303Z."""
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%SZ")


def save(directory: Path, names: Sequence[str], results: dict[str, Any], table: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    for name in names:
        (directory / f"{name}.json").write_text(text)
        (directory / f"{name}.txt").write_text(table)
