"""Shared fixtures: an isolated workspace (settings file + SQLite app database in tmp_path) and a
helper that runs the real CLI entry point in-process and validates its --json output."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.manifests import VALID_MANIFEST  # noqa: F401  (tests import it from here too)
from valuetrack import schemas
from valuetrack.cli import main
from valuetrack.store.db import dispose_all

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a valuetrack.toml whose app database and demo connection live inside it."""
    (tmp_path / "sample_data").mkdir()
    (tmp_path / "valuetrack.toml").write_text(textwrap.dedent("""
        [store]
        url = "sqlite:///valuetrack.db"
        currency = "USD"

        [connections.demo]
        url = "duckdb:///sample_data/demo.duckdb"

        [connections.other]
        url = "duckdb:///sample_data/other.duckdb"
    """))
    monkeypatch.setenv("VALUETRACK_CONFIG", str(tmp_path / "valuetrack.toml"))
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    monkeypatch.delenv("VALUETRACK_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    dispose_all()


@pytest.fixture(scope="session")
def demo_builder(tmp_path_factory: pytest.TempPathFactory):
    """``demo_builder(scale, as_of)`` → a folder of its own holding the demo company (warehouse,
    app database with the models registered and refreshed as of ``as_of``). Each (scale, as_of) is
    built once per session; every call gets a fresh copy, so tests may change it freely."""
    import shutil

    built: dict[tuple[float, str], Path] = {}

    def build(scale: float, as_of: str) -> Path:
        key = (scale, as_of)
        if key not in built:
            root = tmp_path_factory.mktemp(f"demo-{scale}-{as_of}")
            with pytest.MonkeyPatch.context() as mp:
                mp.chdir(root)
                mp.delenv("VALUETRACK_CONFIG", raising=False)
                mp.setenv("VALUETRACK_USER", "tester@example.com")
                assert main(["demo", "--scale", str(scale), "--as-of", as_of]) == 0
                assert main(["refresh", "--as-of", as_of]) == 0
                dispose_all()
            built[key] = root
        copy = tmp_path_factory.mktemp("demo-copy")
        shutil.copytree(built[key], copy, dirs_exist_ok=True)
        return copy

    return build


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """``cli("models", "list", "--json", schema="models_list")`` → CliResult; with --json the
    output is validated against the named schema (error.json for an error document)."""

    def run(*args: str, schema: str | None = None) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        result = CliResult(code, captured.out, captured.err)
        if "--json" in args and captured.out.strip():
            # a failed command prints the error document; a partial failure (refresh) its own
            is_error = code != 0 and "error" in result.json
            schemas.validate("error" if is_error or not schema else schema, result.json)
        return result

    return run




def free_port() -> int:
    """A free TCP port on the loopback interface, for a local server a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(VALID_MANIFEST)
    return path
