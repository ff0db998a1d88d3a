"""Issue 14: the service and the batch share ``songmap.workers`` and never import each
other; ``workers`` imports the pipeline and below, never the packages that use it."""

from __future__ import annotations

import ast
from pathlib import Path

import songmap

PACKAGE = Path(songmap.__file__).parent


def _imports(folder: str) -> dict[str, set[str]]:
    """Module file -> every songmap module it imports (at the top or inside functions)."""
    out: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        out[str(path.relative_to(PACKAGE))] = {n for n in names if n.startswith("songmap.")}
    return out


def _offending(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {module: sorted(n for n in names if n.startswith(forbidden))
            for module, names in _imports(folder).items()
            if any(n.startswith(forbidden) for n in names)}


def test_workers_import_nothing_above_them():
    assert _imports("workers"), "no workers package found"
    assert _offending("workers", ("songmap.api", "songmap.batch", "songmap.cli")) == {}


def test_the_service_and_the_batch_do_not_import_each_other():
    assert _offending("api", ("songmap.batch",)) == {}
    assert _offending("batch", ("songmap.api",)) == {}
