"""Launch the local-bigquery emulator with DuckDB kept offline.

Run with the interpreter of the stand-in venv (``.venvs/bigquery/bin/python``), which
``scripts/standins/setup.sh`` creates. local-bigquery opens DuckDB with ``duckdb.connect()`` and
needs the ``ducklake`` extension (storage) and ``spatial`` (its GEOGRAPHY functions run
``INSTALL spatial; LOAD spatial``). DuckDB would download both at run time; here they come from
the PyPI wheels ``duckdb-extension-ducklake`` / ``duckdb-extension-spatial`` instead. This
launcher links their files into an extension directory laid out as DuckDB expects
(``<dir>/v<duckdb version>/<platform>/<name>.duckdb_extension``) and wraps ``duckdb.connect`` so
every connection uses that directory with auto-install off, so nothing is ever downloaded.

Usage:
    python bigquery_server.py --check
    python bigquery_server.py serve --host 127.0.0.1 --port P --grpc-port G --data-dir DIR
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import duckdb

EXTENSIONS = ("ducklake", "spatial")


def extension_dir() -> Path:
    """Build (idempotently) the offline extension directory and return it."""
    root = Path(os.environ.get("VALUETRACK_DUCKDB_EXTENSION_DIR", Path(sys.prefix) / "duckdb_extensions"))
    platform = duckdb.execute("PRAGMA platform").fetchone()[0]
    version = duckdb.__version__
    target = root / f"v{version}" / platform
    target.mkdir(parents=True, exist_ok=True)
    for name in EXTENSIONS:
        spec = importlib.util.find_spec(f"duckdb_extension_{name}")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"missing PyPI package duckdb-extension-{name}=={version}: run scripts/standins/setup.sh")
        pkg = Path(next(iter(spec.submodule_search_locations)))
        source = pkg / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
        if not source.exists():
            found = sorted(pkg.glob("extensions/*/*.duckdb_extension"))
            raise SystemExit(
                f"duckdb-extension-{name} does not match duckdb {version} (has {[str(p) for p in found]}): "
                "pin both to the same version in scripts/standins/setup.sh"
            )
        link = target / source.name
        if not link.exists() or link.resolve() != source.resolve():
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(source)
    return root


def patch_duckdb(root: Path) -> None:
    """Make every ``duckdb.connect`` use the offline extension directory, auto-install off."""
    offline = {
        "extension_directory": str(root),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
    }
    original = duckdb.connect

    def connect(database: str = ":memory:", read_only: bool = False, config: dict | None = None, **kwargs):
        config = {**offline, **(config or {})}
        # duckdb 1.5 rejects TimeZone in the connect config ("the icu extension needs to be
        # loaded. But it could not be autoloaded") although icu is statically linked: online it
        # would download icu again. Setting it right after connecting works offline.
        late = {key: config.pop(key) for key in ("TimeZone", "Calendar") if key in config}
        con = original(database, read_only=read_only, config=config, **kwargs)
        for key, value in late.items():
            con.execute(f"SET {key} = '{value}'")
        return con

    duckdb.connect = connect
    # the module-level default connection (duckdb.sql, duckdb.execute) ignores connect()
    duckdb.execute(f"SET extension_directory = '{root}'")
    duckdb.execute("SET autoinstall_known_extensions = false")


def check(root: Path) -> None:
    con = duckdb.connect(config={"TimeZone": "UTC"})
    for name in EXTENSIONS:
        con.execute(f"INSTALL {name}; LOAD {name}")
    con.execute("SELECT ST_AsText(ST_Point(1, 2))").fetchall()
    print(f"duckdb {duckdb.__version__}: extensions {', '.join(EXTENSIONS)} load offline from {root}")


def main(argv: list[str]) -> None:
    root = extension_dir()
    patch_duckdb(root)
    if argv[:1] == ["--check"]:
        check(root)
        return
    from local_bigquery.cli import main as cli_main

    cli_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
