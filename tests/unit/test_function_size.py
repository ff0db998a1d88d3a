"""No function in songmap longer than 80 lines or more complex than 14 (issue 14).

A function that does not fit on a screen, or whose branches cannot be followed, hides
the step that goes wrong; long ones are cut into small named steps, not waived. Length
counts every line from ``def`` to the last line of the body (docstring and comments
included); complexity is McCabe's, as ruff's C901 counts it.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import songmap

MAX_LINES = 80
MAX_COMPLEXITY = 14

#: Functions being cut down on other branches of issue 14 ("result": pipeline.py,
#: "workers": batch/); the integrator empties these sets when those branches land.
PENDING_LENGTH = {
    "songmap/pipeline.py::Analyzer._decide",
    "songmap/batch/run.py::run_batch",
}
PENDING_COMPLEXITY = {
    "songmap/batch/run.py::run_batch",
    "songmap/batch/discover.py::discover_audio",
}

PACKAGE = Path(songmap.__file__).resolve().parent


def long_functions(root: Path, *, max_lines: int = MAX_LINES) -> dict[str, int]:
    """``"pkg/module.py::Class.function"`` -> length in lines, for every function (nested
    ones and methods too) under ``root`` longer than ``max_lines``."""
    found: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        _walk(tree, name, "", max_lines, found)
    return found


def _walk(node: ast.AST, module: str, prefix: str, max_lines: int,
          found: dict[str, int]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qualname = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                lines = (child.end_lineno or child.lineno) - child.lineno + 1
                if lines > max_lines:
                    found[f"{module}::{qualname}"] = lines
            _walk(child, module, f"{qualname}.", max_lines, found)
        else:
            _walk(child, module, prefix, max_lines, found)


def complex_functions(root: Path, *, max_complexity: int = MAX_COMPLEXITY) -> dict[str, str]:
    """``"pkg/module.py::function"`` -> ruff's message, for every function under ``root``
    whose McCabe complexity is above ``max_complexity`` (noqa comments do not count)."""
    if shutil.which("ruff") is None and subprocess.run(
            [sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode:
        pytest.skip("ruff is not installed (pip install ruff)")
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--ignore-noqa",
         "--select", "C901", "--config", f"lint.mccabe.max-complexity={max_complexity}",
         "--output-format", "json", "--exit-zero", str(root)],
        capture_output=True, text=True, check=True)
    found: dict[str, str] = {}
    for item in json.loads(run.stdout):
        module = Path(item["filename"]).resolve().relative_to(root.parent).as_posix()
        function = item["message"].split("`")[1]
        found[f"{module}::{function}"] = item["message"]
    return found


def test_no_function_is_longer_than_80_lines():
    found = long_functions(PACKAGE)
    new = {k: v for k, v in found.items() if k not in PENDING_LENGTH}
    assert not new, "cut these into small named steps:\n" + "\n".join(
        f"  {k}: {v} lines" for k, v in sorted(new.items()))
    done = PENDING_LENGTH - set(found)
    assert not done, f"now within {MAX_LINES} lines, remove from PENDING_LENGTH: {sorted(done)}"


def test_no_function_is_more_complex_than_14():
    found = complex_functions(PACKAGE)
    new = {k: v for k, v in found.items() if k not in PENDING_COMPLEXITY}
    assert not new, "cut these into small named steps:\n" + "\n".join(
        f"  {k}: {v}" for k, v in sorted(new.items()))
    done = PENDING_COMPLEXITY - set(found)
    assert not done, f"now simple enough, remove from PENDING_COMPLEXITY: {sorted(done)}"


def test_the_checks_find_a_long_and_a_tangled_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(15))
    (pkg / "mod.py").write_text(
        f"class A:\n    def short(self):\n        return 1\n\n"
        f"    def long(self):\n        def inner():\n{body.replace('    ', '            ')}\n"
        f"        return inner\n\n"
        f"def tangled(x):\n{branches}\n    return -1\n\n"
        f"def fits():\n{body[:-len('    x79 = 79')].rstrip()}\n")
    assert long_functions(pkg) == {"pkg/mod.py::A.long": 83, "pkg/mod.py::A.long.inner": 81}
    assert set(complex_functions(pkg)) == {"pkg/mod.py::tangled"}
