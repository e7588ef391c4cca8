"""Flags, reports and connections render on the demo; empty states on an empty workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pages.conftest import AS_OF, app, assert_clean, html_tables, shown

PAGES = ["pages/portfolio.py", "pages/model.py", "pages/flags.py", "pages/reports.py", "pages/register.py",
         "pages/connections.py"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_workspace(workspace: Path, page: str) -> None:
    at = app(page).run()
    assert_clean(at)


def test_flags_page_shows_each_flag_with_numbers_and_next_step(in_demo: Path, value_json: dict) -> None:
    at = app("pages/flags.py").run()
    assert_clean(at)
    text = shown(" ".join(md.value for md in at.markdown))
    for f in value_json["flags"]:
        assert f["reason"] in text
        assert f["action"] in text
    assert any(c.value.startswith("The numbers:") for c in at.caption)


def test_reports_page_previews_and_offers_downloads(in_demo: Path) -> None:
    at = app("pages/reports.py").run()
    assert_clean(at)
    assert at.selectbox(key="month").value == "2026-05"
    labels = {b.proto.label for b in at.get("download_button")}
    assert labels == {"PDF", "HTML", "CSV", "XLSX"}
    assert at.get("iframe")


def test_connections_page_tests_the_demo_warehouse(in_demo: Path) -> None:
    at = app("pages/connections.py").run()
    assert_clean(at)
    at.button(key="test-demo").click().run()
    assert_clean(at)
    assert any(s.value.startswith("Connected") for s in at.success)
    assert "duckdb:///" in shown(" ".join(md.value for md in at.markdown))
    history = next(t for t in html_tables(at) if t["id"] == "refreshes")
    status = history["head"].index("Status")
    assert history["rows"] and all(r["cells"][status] == "ok" for r in history["rows"])
