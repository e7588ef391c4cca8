"""The portfolio page renders the registered models (Streamlit AppTest, no browser)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def test_empty_registry_tells_the_user_what_to_do(workspace: Path) -> None:
    at = _app().run()
    assert not at.exception
    assert "valuetrack demo" in at.info[0].value


def test_lists_registered_models(workspace: Path, cli, manifest: Path) -> None:
    assert cli("models", "register", "--file", manifest).code == 0
    at = _app().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["name"]) == ["churn-save-offers", "dynamic-pricing"]
    assert at.metric[0].value == "2"
