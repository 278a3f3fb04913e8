"""The action image installs requirements-image.txt with pip --no-deps: it must be requirements.txt's pins,
closed under the dependencies' Requires-Dist except for what scripts/lock.sh leaves out on purpose.

Read from the development venv's installed metadata, which requirements.txt pins (scripts/dev-env.sh).
Whether the image then runs is the e2e tier's part: it runs the image built from the Dockerfile.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {_name(line): line.split("==", 1)[1] for line in lines}


def _leave_out() -> set[str]:
    match = re.search(r"^LEAVE_OUT=(\S+)", (ROOT / "scripts" / "lock.sh").read_text(), re.M)
    assert match, "scripts/lock.sh names what it leaves out in LEAVE_OUT="
    return {_name(name) for name in match.group(1).split(",")}


def test_the_image_lock_is_the_runtime_lock_less_what_only_unimported_modules_need():
    full, image = _pins(ROOT / "requirements.txt"), _pins(ROOT / "requirements-image.txt")
    assert {name: full.get(name) for name in image} == image, "requirements-image.txt pins differ from requirements.txt"
    roots = [_name(dep) for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    leave_out = _leave_out()
    closure, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in closure or name in leave_out:
            continue
        closure.add(name)
        todo += [_name(req) for req in md.requires(name) or [] if "extra ==" not in req]
    assert set(image) == closure
    assert leave_out and not leave_out & set(image)
    assert set(roots) <= set(image)


def test_what_is_left_out_is_imported_only_by_modules_regcache_never_imports():
    """actions-toolkit's github module is what needs PyGithub; regcache imports its command module only."""
    sources = "\n".join(path.read_text() for path in (ROOT / "src").rglob("*.py"))
    imported = set(re.findall(r"^\s*(?:from|import) (actions_toolkit[.\w]*)", sources, re.M))
    assert imported == {"actions_toolkit.command"}
    module = Path(md.distribution("actions-toolkit").locate_file("actions_toolkit/command.py"))
    closure_sources = module.read_text() + (module.parent / "utils.py").read_text()
    assert "github" not in re.findall(r"^\s*(?:from|import) ([\w.]+)", closure_sources, re.M)
