"""Fixtures for the page tests: one small demo company built once per session (scale 0.1, as of a
fixed date), a fresh copy of it for tests that change the registry, and the CLI's `value --json`
for the same date, which the pages must match to the cent."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from valuetrack.store.db import dispose_all

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-06-15"
USER = "tester@example.com"


def run_cli(*args: str) -> tuple[int, str]:
    from valuetrack.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    return code, out.getvalue()


@pytest.fixture(autouse=True)
def _no_legacy_pages_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest resets Streamlit's legacy pages/ mode before every run, and a page leaves that mode
    by rerunning (valuetrack.ui.components.through_app), which would drop a button press under test.
    A real server enters the mode once per process, before any widget exists."""
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def patched(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", patched)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("page-demo")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("VALUETRACK_CONFIG", raising=False)
    mp.setenv("VALUETRACK_USER", USER)
    assert run_cli("demo", "--scale", "0.1", "--as-of", AS_OF)[0] == 0
    assert run_cli("refresh", "--as-of", AS_OF)[0] == 0
    mp.undo()
    dispose_all()
    return root


def _enter(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(path)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", USER)
    monkeypatch.setenv("VALUETRACK_AS_OF", AS_OF)
    return path


@pytest.fixture
def in_demo(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in the shared demo (read-only tests)."""
    return _enter(demo_dir, monkeypatch)


@pytest.fixture
def demo_copy(demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the demo, for tests that change the registry."""
    dest = tmp_path / "demo"
    shutil.copytree(demo_dir, dest)
    yield _enter(dest, monkeypatch)
    dispose_all()


@pytest.fixture(scope="session")
def value_json(demo_dir: Path) -> dict[str, Any]:
    """`valuetrack value --as-of AS_OF --json` on the demo."""
    mp = pytest.MonkeyPatch()
    mp.chdir(demo_dir)
    mp.delenv("VALUETRACK_CONFIG", raising=False)
    code, out = run_cli("value", "--as-of", AS_OF, "--json")
    mp.undo()
    assert code == 0
    return json.loads(out)


def app(page: str | None = None, **query: str) -> AppTest:
    """The app (optionally switched to ``page``), not yet run."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if page:
        at.switch_page(page)
    for k, v in query.items():
        at.query_params[k] = v
    return at


def assert_clean(at: AppTest) -> None:
    """No exception and no 'Something went wrong' message (the app turns errors into messages)."""
    assert not at.exception, [e.value for e in at.exception]
    wrong = [e.value for e in at.error if "Something went wrong" in e.value]
    assert not wrong, wrong


def svg_charts(at: AppTest) -> list[Any]:
    """The charts a page draws as inline SVG (valuetrack.svgcharts, D51), parsed: each must be
    well-formed XML on one line (what the page passes through Markdown)."""
    import xml.etree.ElementTree as ET

    out = []
    for el in at.markdown:
        if 'data-testid="svg-chart"' in el.value:
            markup = el.value.split("\n")[1]
            assert el.value.count("\n") == 2 and markup.startswith("<svg "), el.value[:200]
            out.append(ET.fromstring(markup))
    return out


def html_tables(at: AppTest) -> list[dict[str, Any]]:
    """The HTML tables a page shows (st.html): each {"head": [...], "rows": [{"key": data-model or
    None, "cells": [...]}, ...]} with the cells' visible text."""
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tables: list[dict[str, Any]] = []
            self.cell: list[str] | None = None
            self.row: dict[str, Any] | None = None
            self.in_head = False

        def handle_starttag(self, tag: str, attrs: list) -> None:
            a = dict(attrs)
            if tag == "table":
                self.tables.append({"head": [], "rows": [], "id": a.get("data-testid")})
            elif tag == "thead":
                self.in_head = True
            elif tag == "tr" and not self.in_head:
                self.row = {"key": a.get("data-model"), "cells": []}
                self.tables[-1]["rows"].append(self.row)
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag: str) -> None:
            if tag == "thead":
                self.in_head = False
            elif tag in ("td", "th") and self.cell is not None:
                text = " ".join("".join(self.cell).split())
                (self.tables[-1]["head"] if self.in_head else self.row["cells"]).append(text)
                self.cell = None

        def handle_data(self, data: str) -> None:
            if self.cell is not None:
                self.cell.append(data)

    parser = Parser()
    for el in at.get("html"):
        parser.feed(el.proto.body)
    return parser.tables


def portfolio_table(at: AppTest) -> dict[str, dict[str, str]]:
    """The portfolio table: model name → {column header: cell text}."""
    table = next(t for t in html_tables(at) if t["id"] == "portfolio-table")
    return {r["key"]: dict(zip(table["head"], r["cells"])) for r in table["rows"]}


def shown(markdown: str) -> str:
    """The text a Markdown source displays, as far as backslash escapes and the invisible autolink
    breakers go (valuetrack.ui.safe.md): for comparing page text with the CLI's."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u200b", "")
