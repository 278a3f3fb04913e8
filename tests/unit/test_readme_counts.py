"""The README's numbers are counted from the tests they describe: a claim fails here when it stops being true.

- "N malformed inputs and payloads": the cases of test_bad_inputs.BAD;
- "N malformed prune inputs": the cases of test_bad_inputs.PRUNE_BAD;
- "N hostile but valid values": the cases of test_bad_inputs.HOSTILE;
- the Development section's module list: the modules under src/regcache;
- "N kinds of broken registry, each a run of the action that still builds and loads the image, with a
  warning": the test cases of tests/integration/test_faults.py that assert exactly that
  (``assert_built_with_warning``), each parametrized case counted once.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.unit.test_bad_inputs import BAD, HOSTILE, PRUNE_BAD

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FAULTS = ROOT / "tests" / "integration" / "test_faults.py"


def _claim(pattern: str) -> int:
    text = re.sub(r"\s+", " ", README.read_text(encoding="utf-8"))
    found = re.findall(pattern, text)
    if len(found) != 1:
        pytest.fail(f"README.md states {pattern!r} {len(found)} times, not once: reword it, or this test with it")
    return int(found[0])


def _parametrized_cases(function: ast.FunctionDef) -> int:
    cases = 1
    for decorator in function.decorator_list:
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "parametrize"):
            values = decorator.args[1] if len(decorator.args) > 1 else None
            if not isinstance(values, ast.List | ast.Tuple):
                pytest.fail(f"{function.name}: its parametrize values are not a literal list: count them here")
            cases *= len(values.elts)
    return cases


def _calls(function: ast.FunctionDef, name: str) -> bool:
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
               for node in ast.walk(function))


def fault_runs() -> dict[str, int]:
    """test function -> its cases, for each test of test_faults.py that asserts a run built with a warning."""
    tree = ast.parse(FAULTS.read_text(encoding="utf-8"))
    return {node.name: _parametrized_cases(node) for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            and _calls(node, "assert_built_with_warning")}


def test_bad_input_count():
    assert _claim(r"(\d+) malformed inputs and payloads") == len(BAD)


def test_bad_prune_input_count():
    assert _claim(r"(\d+) malformed prune inputs") == len(PRUNE_BAD)


def test_hostile_value_count():
    assert _claim(r"(\d+) hostile but valid values") == len(HOSTILE)


def test_fault_count():
    runs = fault_runs()
    assert _claim(r"(\d+) kinds of broken registry") == sum(runs.values()), runs


def test_the_fault_count_is_not_vacuous():
    runs = fault_runs()
    assert runs["test_registry_answers_5xx"] == 4 and runs["test_export_denied"] == 2, runs
    # Concurrent writers are no broken registry, and give no warning: not one of them.
    assert "test_four_concurrent_writers_then_a_full_cache_hit" not in runs


def test_the_readmes_prune_workflow_is_the_one_the_e2e_tier_runs():
    """README, "Pruning": the example is tests/e2e/workflows/prune.yml, with `uses: owner/regcache/prune@v1`
    for the `./prune` that act runs."""
    workflow = (ROOT / "tests" / "e2e" / "workflows" / "prune.yml").read_text(encoding="utf-8")
    local = "uses: ./prune # zizmor: ignore[self-repository] act runs this checkout's copy"
    assert local in workflow
    published = workflow.replace(local, "uses: owner/regcache/prune@v1")
    assert f"```yaml\n{published}```" in README.read_text(encoding="utf-8")


def test_the_readmes_module_list_is_src():
    """The Development section names every module under src/regcache, and no module that is gone."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index("```\nsrc/regcache/\n"):]
    block = block[:block.index("\n```", 4)]
    listed = re.findall(r"^  (\S+\.py) ", block, flags=re.MULTILINE)
    present = sorted(p.name for p in (ROOT / "src" / "regcache").glob("*.py") if p.name != "__init__.py")
    assert sorted(listed) == present
    assert len(listed) == len(set(listed))
