"""songmap's imports flow one way: every import a module runs (at module level or inside
a function) points to a strictly lower layer or stays inside the module's own part, and
no two modules import each other, directly or round a circle.

Imports under ``if TYPE_CHECKING:`` are annotations: Python never runs them, so they
cannot make a circle or load a higher layer, and they are left out (a table builder
below the schema may name ``AnalysisResult`` in its signature). Imports by name
(``importlib.import_module("songmap.plot")``, an exporter's ``"songmap.plot:render_png"``)
count: any string constant that is exactly a module's dotted name, or ``module:attribute``,
is an edge (logger names excepted).

The layer table is CONTRIBUTING.md's ``layers`` block (one place, read here). The graph
is built from the source with :mod:`ast` (nothing is imported), so the test needs no
third-party tool and runs in well under a second.

``python tests/unit/test_layers.py`` prints the package-level picture (parts and the
edges between them, each edge with its number of imports).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = REPO / "src" / "songmap"
CONTRIBUTING = REPO / "CONTRIBUTING.md"

# Edges a branch in flight removes, listed exactly so this test passes until it lands (the
# api <-> batch imports and api.jobs -> api.service went with branch `workers`: empty).
PENDING: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Import:
    """One import statement's target inside the package."""

    source: str  # importing module, dotted
    target: str  # imported module, dotted (the deepest existing module the statement names)
    line: int
    where: str  # "module", "function", "type-checking" or "by-name"

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line}, {self.where}-level)"


def module_names(root: Path) -> dict[str, Path]:
    """Every module under ``root`` (a package directory) by its dotted name."""
    base = root.parent
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.Module):
    """(import node, where) for every import in the tree; ``where`` is the context."""

    def visit(node: ast.AST, where: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, where
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from visit(child, "function")
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), "type-checking")
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), where)
            else:
                yield from visit(child, where)

    yield from visit(tree, "module")


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The deepest known module that ``name`` (dotted) is or lies in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """The package-internal imports of one module (edges to itself dropped)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node, where in _statements(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                anchor = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            # `from pkg import name` may name a submodule: the edge goes to it then
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for name in targets:
            target = _resolve(name, known)
            if target is not None and target != module:
                found.append(Import(module, target, node.lineno, where))
    return found + _by_name(module, tree, known)


def _by_name(module: str, tree: ast.Module, known: dict[str, Path]) -> list[Import]:
    """Modules named by a string constant: ``"songmap.plot"`` or ``"songmap.plot:render_png"``
    (``importlib.import_module``, an exporter's target); ``getLogger`` names left out."""
    loggers = {
        id(arg)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) == "getLogger"
        for arg in node.args
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        name = node.value.split(":")[0] if node.value.count(":") == 1 else node.value
        # a submodule's name only: the bare package name is also a word ("songmap")
        if "." in name and name in known and name != module and id(node) not in loggers:
            found.append(Import(module, name, node.lineno, "by-name"))
    return found


def import_graph(root: Path = PACKAGE_ROOT, *, type_checking: bool = False) -> list[Import]:
    """Every package-internal import of every module under ``root`` (those under
    ``if TYPE_CHECKING:`` only when ``type_checking``)."""
    known = module_names(root)
    edges = [edge for name, path in known.items() for edge in imports_of(name, path, known)]
    return [e for e in edges if type_checking or e.where != "type-checking"]


def read_layers(text: str) -> list[list[str]]:
    """The layer table of a ```` ```layers ```` block, top layer first: one layer a line,
    its parts separated by spaces (``#`` starts a comment)."""
    match = re.search(r"```layers\n(.*?)```", text, flags=re.S)
    if match is None:
        raise ValueError("no ```layers block found")
    layers = []
    for line in match.group(1).splitlines():
        parts = line.split("#", 1)[0].split()
        if parts:
            layers.append(parts)
    return layers


def part_of(module: str, package: str, parts: set[str]) -> str:
    """The part a module belongs to: the longest listed prefix (``api``, ``models``,
    ``schema``); the package's own ``__init__`` is the part named after the package."""
    rest = module[len(package) + 1 :] if module != package else ""
    pieces = rest.split(".") if rest else []
    for n in range(len(pieces), 0, -1):
        candidate = ".".join(pieces[:n])
        if candidate in parts:
            return candidate
    return package if not pieces else pieces[0]


def layer_violations(
    edges: list[Import], layers: list[list[str]], *, package: str, pending=frozenset()
) -> list[str]:
    """Each import that does not point to a strictly lower layer (or inside its own part),
    and each module that belongs to no listed part."""
    rank = {part: i for i, layer in enumerate(layers) for part in layer}
    parts = set(rank)
    problems = []
    for edge in edges:
        src = part_of(edge.source, package, parts)
        dst = part_of(edge.target, package, parts)
        for part, module in ((src, edge.source), (dst, edge.target)):
            if part not in rank:
                problems.append(f"{module}: its part {part!r} is in no layer")
        if src == dst or src not in rank or dst not in rank:
            continue
        if rank[dst] <= rank[src] and (edge.source, edge.target) not in pending:
            direction = "same layer" if rank[dst] == rank[src] else "upward"
            problems.append(f"{direction}: {edge}  [{src} -> {dst}]")
    return sorted(set(problems))


def find_cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(groups)


def cycle_report(edges: list[Import], groups: list[list[str]]) -> list[str]:
    """Each circle with the imports that close it."""
    lines = []
    for group in groups:
        members = set(group)
        inside = {str(e) for e in edges if e.source in members and e.target in members}
        lines.append("cycle: " + ", ".join(group) + "\n    " + "\n    ".join(sorted(inside)))
    return lines


def part_summary(edges: list[Import], layers: list[list[str]], *, package: str) -> str:
    """The package-level picture: each part's outgoing edges with their import counts."""
    parts = {part for layer in layers for part in layer}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for edge in edges:
        src, dst = part_of(edge.source, package, parts), part_of(edge.target, package, parts)
        if src != dst:
            counts[src, dst] += 1
    out = []
    for i, layer in enumerate(layers):
        for part in layer:
            targets = sorted(f"{dst}({n})" for (src, dst), n in counts.items() if src == part)
            out.append(f"L{i} {part:<12} -> {' '.join(targets) or '-'}")
    return "\n".join(out)


# ---- the real package -------------------------------------------------------------------


@pytest.fixture(scope="module")
def edges() -> list[Import]:
    return import_graph(PACKAGE_ROOT)


@pytest.fixture(scope="module")
def layers() -> list[list[str]]:
    return read_layers(CONTRIBUTING.read_text(encoding="utf-8"))


def test_every_import_points_down(edges, layers):
    problems = layer_violations(edges, layers, package="songmap", pending=PENDING)
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_no_import_cycle(edges):
    groups = find_cycles([e for e in edges if (e.source, e.target) not in PENDING])
    assert not groups, "\n".join(cycle_report(edges, groups))


def test_pending_edges_still_exist(edges):
    """An exemption that no longer matches an import is stale: remove it from PENDING."""
    present = {(e.source, e.target) for e in edges}
    assert set(PENDING) <= present, f"stale PENDING entries: {set(PENDING) - present}"


def test_every_module_has_a_layer(edges, layers):
    parts = {part for layer in layers for part in layer}
    listed = {part_of(m, "songmap", parts) for m in module_names(PACKAGE_ROOT)}
    assert listed <= parts, f"parts in no layer: {sorted(listed - parts)}"


def test_the_version_has_one_home():
    """pyproject.toml reads the version from songmap/_version.py; nothing else writes it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "songmap._version.__version__"
    import songmap
    from songmap import _version

    assert songmap.__version__ is _version.__version__


# ---- the checker on a tiny synthetic package ----------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


TINY_LAYERS = [["cli"], ["stage"], ["signals"]]
TINY = {
    "pkg/__init__.py": "",
    "pkg/cli.py": "from pkg.stage import run\n",
    "pkg/stage/__init__.py": "from .core import run\n",
    "pkg/stage/core.py": "from pkg import signals\n\ndef run():\n    return signals.x\n",
    "pkg/signals.py": "x = 1\n",
}


def test_clean_tiny_package_passes(tmp_path):
    root = _write(tmp_path, TINY)
    graph = import_graph(root)
    assert {(e.source, e.target) for e in graph} == {
        ("pkg.cli", "pkg.stage"),
        ("pkg.stage", "pkg.stage.core"),
        ("pkg.stage.core", "pkg.signals"),
    }
    assert layer_violations(graph, [["pkg"], *TINY_LAYERS], package="pkg") == []
    assert find_cycles(graph) == []


@pytest.mark.parametrize(
    "source, where",
    [
        ("from pkg.cli import main\n", "module"),
        ("import os\n\ndef f():\n    from .cli import main\n", "function"),
        ("class A:\n    def f(self):\n        import pkg.cli\n", "function"),
    ],
)
def test_new_upward_import_fails(tmp_path, source, where):
    root = _write(tmp_path, {**TINY, "pkg/signals.py": source})
    problems = layer_violations(import_graph(root), [["pkg"], *TINY_LAYERS], package="pkg")
    line = source.count("\n")
    expected = f"upward: pkg.signals -> pkg.cli (line {line}, {where}-level)  [signals -> cli]"
    assert problems == [expected]


def test_an_import_by_name_counts(tmp_path):
    source = ('import importlib, logging\nlog = logging.getLogger("pkg.cli")\n'
              'TARGET = "pkg.cli:main"\nNAME = "pkg"\n')
    root = _write(tmp_path, {**TINY, "pkg/signals.py": source})
    problems = layer_violations(import_graph(root), [["pkg"], *TINY_LAYERS], package="pkg")
    assert problems == ["upward: pkg.signals -> pkg.cli (line 3, by-name-level)  [signals -> cli]"]


def test_type_checking_imports_are_annotations_only(tmp_path):
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.cli import x\n"
    root = _write(tmp_path, {**TINY, "pkg/signals.py": source})
    assert layer_violations(import_graph(root), [["pkg"], *TINY_LAYERS], package="pkg") == []
    typed = import_graph(root, type_checking=True)
    assert [str(e) for e in typed if e.source == "pkg.signals"] == [
        "pkg.signals -> pkg.cli (line 3, type-checking-level)"
    ]


def test_pending_exempts_exactly_the_listed_edge(tmp_path):
    root = _write(tmp_path, {**TINY, "pkg/signals.py": "import pkg.cli\nimport pkg.stage\n"})
    graph = import_graph(root)
    problems = layer_violations(
        graph, [["pkg"], *TINY_LAYERS], package="pkg", pending={("pkg.signals", "pkg.cli")}
    )
    assert problems == [
        "upward: pkg.signals -> pkg.stage (line 2, module-level)  [signals -> stage]"
    ]


def test_same_layer_and_unlisted_parts_fail(tmp_path):
    files = {**TINY, "pkg/other.py": "from pkg import signals\n",
             "pkg/signals.py": "import pkg.extra\n", "pkg/extra.py": ""}
    layers = [["pkg"], ["cli"], ["stage", "other"], ["signals"]]
    problems = layer_violations(import_graph(_write(tmp_path, files)), layers, package="pkg")
    assert "pkg.extra: its part 'extra' is in no layer" in problems
    files = {**TINY, "pkg/stage/core.py": "from pkg import other\n", "pkg/other.py": ""}
    problems = layer_violations(import_graph(_write(tmp_path / "b", files)), layers, package="pkg")
    assert problems == [
        "same layer: pkg.stage.core -> pkg.other (line 1, module-level)  [stage -> other]"
    ]


def test_cycle_inside_a_part_is_found(tmp_path):
    root = _write(
        tmp_path,
        {**TINY, "pkg/stage/a.py": "def f():\n    from pkg.stage.b import g\n",
         "pkg/stage/b.py": "from pkg.stage.a import f\n"},
    )
    assert find_cycles(import_graph(root)) == [["pkg.stage.a", "pkg.stage.b"]]


def test_read_layers_reads_the_block():
    text = "intro\n```layers\ncli api   # the shells\n\npipeline\n```\nmore"
    assert read_layers(text) == [["cli", "api"], ["pipeline"]]
    with pytest.raises(ValueError, match="no ```layers block"):
        read_layers("no block")


def _main(argv: list[str]) -> None:
    """``[--raw] [PACKAGE_DIR]``: the picture of a package (default: this checkout's),
    ``--raw`` with one part a line in name order instead of the layer table."""
    root = Path(next((a for a in argv if not a.startswith("--")), PACKAGE_ROOT))
    graph = import_graph(root)
    table = [] if "--raw" in argv else read_layers(CONTRIBUTING.read_text(encoding="utf-8"))
    if not table:
        table = [[p] for p in sorted({part_of(m, "songmap", set()) for m in module_names(root)})]
    print(part_summary(graph, table, package="songmap"))
    print()
    problems = layer_violations(graph, table, package="songmap", pending=PENDING)
    print("\n".join(problems) or "no layer problems")
    print("\n".join(cycle_report(graph, find_cycles(graph))) or "no cycles")


if __name__ == "__main__":
    _main(sys.argv[1:])
