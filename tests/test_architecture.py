"""Which way the imports run (docs/architecture.md): read from the source, every import counted,
including those inside functions; only imports under ``if TYPE_CHECKING:`` are left out."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "valuetrack"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # "from pkg import module"
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in out if name.startswith("valuetrack")}


@lru_cache(maxsize=1)
def graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in [*PACKAGE.rglob("*.py")] if "migrations" not in p.parts}
    edges = {}
    for name, path in files.items():
        found = _imports(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py")
        edges[name] = {m for m in found if m in files and m != name}
    return edges


def _imports_of(prefix: str) -> dict[str, set[str]]:
    return {m: deps for m, deps in graph().items() if m == prefix or m.startswith(prefix + ".")}


def _reaches(start: str, goal: str, within: set[str]) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in graph().get(node, ()):
            if nxt == goal:
                return True
            if nxt in within and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_the_graph_sees_the_package() -> None:
    g = graph()
    assert len(g) > 50
    assert "valuetrack.ledger" in g["valuetrack.cli"]  # a function-level import is counted
    assert "valuetrack.store.db" in g["valuetrack.ledger"]


def test_ui_imports_no_store_module() -> None:
    bad = {m: sorted(d for d in deps if d.startswith("valuetrack.store")) for m, deps in _imports_of("valuetrack.ui").items()}
    assert not {m: d for m, d in bad.items() if d}, "ui reads through valuetrack.ledger and the context, not store/"


def test_pages_import_no_store_module_and_no_valuation() -> None:
    for path in sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]:
        found = _imports(ast.parse(path.read_text(encoding="utf-8")), path.stem, False)
        assert not [m for m in found if m.startswith(("valuetrack.store", "valuetrack.value"))], path.name
        assert "valuetrack.valuation" not in found, path.name


def test_store_imports_nothing_from_value() -> None:
    bad = {m: sorted(d for d in deps if d.startswith(("valuetrack.value", "valuetrack.valuation", "valuetrack.attribution")))
           for m, deps in _imports_of("valuetrack.store").items()}
    assert not {m: d for m, d in bad.items() if d}


def test_readers_do_not_reach_the_valuation_by_import() -> None:
    """The read API, the reports and the CLI's read commands import no valuation code at all."""
    for reader in ("valuetrack.ledger", "valuetrack.reports.snapshot", "valuetrack.reports.render",
                   "valuetrack.reports.export", "valuetrack.ui.state", "valuetrack.ui.views"):
        assert "valuetrack.valuation" not in graph()[reader], reader


@pytest.mark.parametrize("a,b", [("valuetrack.attribution.its", "valuetrack.attribution.timeseries"),
                                 ("valuetrack.reports.snapshot", "valuetrack.reports.render"),
                                 ("valuetrack.reports.snapshot", "valuetrack.reports.store"),
                                 ("valuetrack.reports.render", "valuetrack.reports.store")])
def test_no_import_cycle_between(a: str, b: str) -> None:
    within = {a, b}
    assert not (_reaches(a, b, within) and _reaches(b, a, within)), f"{a} and {b} import each other"


def test_attribution_is_pure_statistics() -> None:
    """The methods (valuetrack.attribution) import nothing from the money, the valuation, the stores
    or the pages: they are the lowest layer of the valuation (the house's import rules)."""
    upper = ("valuetrack.value", "valuetrack.valuation", "valuetrack.store", "valuetrack.ui", "valuetrack.ledger")
    bad = {m: sorted(d for d in deps if d.startswith(upper)) for m, deps in _imports_of("valuetrack.attribution").items()}
    assert not {m: d for m, d in bad.items() if d}


def test_the_read_api_loads_no_statistics_library() -> None:
    """The ledger's read API (every page, `value`, `flags`, the reports) imports neither
    scipy.stats nor statsmodels: at ≈ 0.5 s and more, they were most of a CLI read's time. Checked in
    a new interpreter, as a command starts."""
    import subprocess
    import sys

    code = ("import sys, valuetrack.ledger, valuetrack.ui.state; "
            "print(sorted(m for m in sys.modules if m in ('scipy.stats', 'statsmodels')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
