"""Property-based tests (hypothesis): random manifests and mutations of a valid one, random
identifiers, random CSVs for `attribute ab`."""

from __future__ import annotations

import datetime as dt
import string
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.cases import TRACEBACK, VALID_MANIFEST, run_cli
from tests.reliability.conftest import db_rows
from valuetrack.access import Actor
from valuetrack.errors import UnsafeSQL, ValidationError
from valuetrack.registry.manifest import ManifestEntry, parse_manifest
from valuetrack.registry.spec import ModelSpec
from valuetrack.registry.store import RegistryStore
from valuetrack.sqlsafety import check_identifier
from valuetrack.store.db import open_engine

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
VALID = parse_manifest(VALID_MANIFEST)[0].spec.to_dict()

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                    st.dates(), st.datetimes(), st.sampled_from(["", "ab", "UTC", "USD", "x" * 300, "\x00", "a;b"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=40)


def _paths(d: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, prefix + (k,))
    return out


PATHS = _paths(VALID)


def _mutate(d: Any, path: tuple, value: Any, delete: bool) -> Any:
    import copy

    d = copy.deepcopy(d)
    node = d
    for key in path[:-1]:
        node = node[key]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return d


STORE_DIR = Path(tempfile.mkdtemp(prefix="vt-props-"))
STORE = RegistryStore(open_engine(f"sqlite:///{STORE_DIR / 'app.db'}"))
STORE.apply(parse_manifest(VALID_MANIFEST), Actor("setup"))
BEFORE = db_rows(STORE.engine)


@SETTINGS
@given(path=st.sampled_from(PATHS), value=values, delete=st.booleans(), extra=st.dictionaries(st.text(max_size=6), values, max_size=2))
def test_mutated_manifest_is_valid_or_a_validation_error_and_failures_change_nothing(path: tuple, value: Any, delete: bool, extra: dict) -> None:
    data = _mutate(VALID, path, value, delete)
    data.update({k: v for k, v in extra.items() if k not in data})
    try:
        spec = ModelSpec.from_dict(data)
    except ValidationError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    # valid: registering it works; registering it together with an invalid entry writes nothing
    try:
        STORE.apply([ManifestEntry(spec, revision=99)], Actor("prop"))
    except ValidationError:
        pass
    except Exception as exc:  # only typed errors (Conflict for revision 99) may come out
        from valuetrack.errors import ValuetrackError

        assert isinstance(exc, ValuetrackError), exc
    assert db_rows(STORE.engine) == BEFORE


@SETTINGS
@given(doc=st.dictionaries(st.sampled_from(["models", "title", "x"]), values, max_size=3))
def test_random_toml_documents_only_raise_validation_errors(doc: dict) -> None:
    try:
        text = tomli_w.dumps({k: v for k, v in doc.items()})
    except Exception:
        return  # not representable in TOML (None, nested None...)
    try:
        parse_manifest(text)
    except ValidationError:
        pass


@SETTINGS
@given(text=st.text(max_size=5000))
def test_random_manifest_text_only_raises_validation_errors(text: str) -> None:
    try:
        parse_manifest(text)
    except ValidationError:
        pass


DIALECTS = {}
for name, module, cls in (("duckdb", "duckdb_engine", "Dialect"), ("bigquery", "sqlalchemy_bigquery", "BigQueryDialect"),
                          ("snowflake", "snowflake.sqlalchemy.snowdialect", "SnowflakeDialect"),
                          ("awsathena", "pyathena.sqlalchemy.base", "AthenaDialect")):
    import importlib

    DIALECTS[name] = getattr(importlib.import_module(module), cls)()


@SETTINGS
@given(name=st.one_of(st.text(max_size=40), st.from_regex(r"[A-Za-z_][A-Za-z0-9_$-]{0,20}", fullmatch=True)))
def test_identifiers_are_refused_or_quoted_by_every_dialect(name: str) -> None:
    try:
        check_identifier(name)
    except UnsafeSQL:
        return
    assert set(name) <= set(string.ascii_letters + string.digits + "_$-")
    for dialect_name, dialect in DIALECTS.items():
        sql = str(sa.select(sa.column(name)).select_from(sa.table("t")).compile(dialect=dialect))
        quoted = dialect.identifier_preparer.quote(name)
        assert quoted in sql, (dialect_name, sql)
        inner = quoted[1:-1] if quoted != name else name
        assert inner == name, (dialect_name, quoted)  # nothing to escape: the name is plain


cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-10 ** 6, 10 ** 6),
                  st.sampled_from(["", "x", "1e5", "NaN", "inf", "-", "1,5"]))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.tuples(st.sampled_from(["model", "holdout", "other", ""]), cells), min_size=0, max_size=40))
def test_random_csv_gives_a_result_or_a_validation_error(rows: list) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ab.csv"
        pd.DataFrame(rows, columns=["arm", "y"]).to_csv(path, index=False)
        run = run_cli("attribute", "ab", "--data", path, "--metric", "y", "--arm-col", "arm",
                      "--control", "holdout", "--treatment", "model", "--json")
    assert run.code in (0, 1) and not TRACEBACK.search(run.err + run.out), run.err
    if run.code == 1:
        assert run.err.startswith("valuetrack: error:")


_ = dt


# -- deep nesting and long text: far beyond what a person writes, where recursive parsers break ----

LONG_CHARS = st.sampled_from(["x", "é", "\u202e", "'", '"', "\\", "(", "[", "{", ":b", "${VAR}", "\U0001f600"])


@SETTINGS
@given(depth=st.integers(min_value=1, max_value=2000), shape=st.sampled_from(["array", "inline", "dotted", "header"]))
def test_any_nesting_depth_gives_a_manifest_or_a_validation_error(depth: int, shape: str) -> None:
    """Up to 2,000 levels in every way TOML nests: never a RecursionError, always fast."""
    import time

    value = {"array": "[" * depth + "1" + "]" * depth, "inline": "{a = " * depth + "1" + "}" * depth}.get(shape)
    if shape == "dotted":
        text = "x." + ".".join(["a"] * depth) + " = 1\n" + VALID_MANIFEST
    elif shape == "header":
        text = "[" + ".".join(["t"] * depth) + "]\nv = 1\n" + VALID_MANIFEST
    else:
        text = VALID_MANIFEST.replace('team = "retention"', f"team = {value}", 1)
    started = time.perf_counter()
    try:
        parse_manifest(text)
    except ValidationError as exc:
        assert exc.problems and all(p for p in exc.problems)
    assert time.perf_counter() - started < 2.0


@SETTINGS
@given(char=LONG_CHARS, n=st.integers(min_value=0, max_value=200_000),
       field=st.sampled_from(["display_name", "owner", "team", "where", "table", "kpi"]))
def test_long_text_in_any_field_gives_a_manifest_or_a_validation_error(char: str, n: int, field: str) -> None:
    """Up to 200,000 characters (0.8 MB) of awkward text in a text field: refused or accepted, never a crash."""
    body = (char * n).replace("\\", "\\\\").replace('"', '\\"')
    old = {"display_name": 'display_name = "Churn save offers v3"', "owner": 'owner = "retention-team@example.com"',
           "team": 'team = "retention"', "where": "where = \"event_type = 'purchase'\"",
           "table": 'table = "exposures"', "kpi": 'name = "retained_revenue"'}[field]
    key = old.split(" = ")[0]
    try:
        parse_manifest(VALID_MANIFEST.replace(old, f'{key} = "{body}"', 1))
    except ValidationError as exc:
        assert exc.problems and all(p for p in exc.problems)


@SETTINGS
@given(depth=st.integers(min_value=0, max_value=500), inner=st.sampled_from(["a = 1", "a = 'x:b'", "a = :b", "a", "(", "1"]))
def test_any_where_filter_nesting_is_a_predicate_or_unsafe_sql(depth: int, inner: str) -> None:
    from valuetrack.sqlsafety import check_predicate

    try:
        check_predicate("(" * depth + inner + ")" * depth)
    except UnsafeSQL as exc:
        assert exc.problems and exc.problems[0]
