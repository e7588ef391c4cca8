"""Checks for everything a user gives us that ends up in SQL.

Identifiers (tables, columns) must be plain names; the dialect quotes them when the query is
compiled, so they are never formatted into a string. Where-filters and custom SQL are parsed with
sqlglot and refused unless they are read-only: a where-filter must be a single row predicate (no
subqueries, no statements), custom SQL a single SELECT.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from valuetrack.errors import UnsafeSQL, ValidationError
from valuetrack.limits import check_filter_nesting

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,127}$")
_RESERVED_OK = 3  # project.dataset.table (BigQuery), database.schema.table (Snowflake)

# Functions that read state outside the row or have side effects in some warehouse.
_FORBIDDEN_FUNCTIONS = {
    "pg_sleep", "sleep", "benchmark", "load_file", "read_csv", "read_parquet", "read_json",
    "read_csv_auto", "read_text", "read_blob", "system", "getenv", "query", "query_table",
    "external_query", "current_setting", "set_config", "dblink", "lo_import", "copy",
}
_FORBIDDEN_NODES = (
    exp.Select, exp.Subquery, exp.Union, exp.Insert, exp.Update, exp.Delete, exp.Create,
    exp.Drop, exp.Alter, exp.Command, exp.Merge, exp.Into, exp.Table, exp.Set, exp.Pragma,
    exp.Use, exp.Transaction, exp.Commit, exp.Rollback,
)


def check_identifier(name: str, *, qualified: bool = False) -> str:
    """Return ``name`` if it is a plain identifier (or dotted, when ``qualified``); raise otherwise.

    Raises:
        UnsafeSQL: naming the offending value and what is allowed.
    """
    if not isinstance(name, str) or not name:
        raise UnsafeSQL("must be a non-empty name")
    parts = name.split(".") if qualified else [name]
    if len(parts) > _RESERVED_OK or not all(_IDENT.fullmatch(p) for p in parts) or "--" in name:
        allowed = "letters, digits, '_', '$' and '-', starting with a letter or '_'"
        shape = " (up to 3 parts joined by '.')" if qualified else ""
        raise UnsafeSQL(f"{name!r} is not a plain name: use {allowed}{shape}")
    return name


def split_table(name: str) -> tuple[str | None, str]:
    """``'analytics.exposures'`` → ``('analytics', 'exposures')``; the schema part may itself be dotted."""
    check_identifier(name, qualified=True)
    schema, _, table = name.rpartition(".")
    return (schema or None), table


def check_predicate(sql: str, *, dialect: str | None = None) -> exp.Expression:
    """Parse a where-filter and return its expression if it is a single read-only row predicate.

    Raises:
        UnsafeSQL: when it does not parse, holds several statements, a subquery, a statement
            (INSERT, DROP, ...), or a function that reads outside the row.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise UnsafeSQL("the filter is empty")
    if ";" in sql:
        raise UnsafeSQL(f"{sql!r} holds ';': a filter is one condition, not several statements")
    try:
        check_filter_nesting(sql)
    except ValidationError as exc:
        raise UnsafeSQL(f"{_short(sql)}: {exc.problems[0]}") from None
    try:
        parsed = sqlglot.parse(sql, read=dialect)
    except (ParseError, TokenError) as exc:
        raise UnsafeSQL(f"{sql!r} does not parse as SQL ({_first_line(exc)})") from None
    except RecursionError:
        raise UnsafeSQL(f"{_short(sql)}: nested too deeply to read") from None
    if len(parsed) != 1 or parsed[0] is None:
        raise UnsafeSQL(f"{sql!r} must be exactly one condition")
    tree = parsed[0]
    if not isinstance(tree, exp.Condition) or isinstance(tree, exp.Query):
        raise UnsafeSQL(f"{sql!r} is not a condition such as \"event_type = 'purchase'\"")
    _refuse_unsafe_nodes(tree, sql, allow_select=False)
    bind = next((n for n in tree.walk() if isinstance(n, (exp.Placeholder, exp.Parameter))), None)
    if bind is not None:  # the driver would ask for a value that valuetrack never supplies
        raise UnsafeSQL(f"{sql!r} holds the bind parameter {bind.sql()!r}; write the value itself, "
                        "e.g. \"event_type = 'purchase'\"")
    if any(isinstance(n, exp.Identifier) and not n.name.strip() for n in tree.walk()):
        raise UnsafeSQL(f"{sql!r} holds an empty quoted name")
    if not any(isinstance(n, exp.Column) for n in tree.walk()):
        # a constant ('1 OR 1=1', "''") filters nothing or everything: a mistake, or a probe
        raise UnsafeSQL(f"{sql!r} does not refer to any column; a filter compares a column, "
                        "e.g. \"event_type = 'purchase'\"")
    return tree


def check_select(sql: str, *, dialect: str | None = None) -> exp.Expression:
    """Parse custom SQL and return it if it is a single read-only SELECT (CTEs allowed)."""
    if not isinstance(sql, str) or not sql.strip():
        raise UnsafeSQL("the query is empty")
    try:
        parsed = [p for p in sqlglot.parse(sql.strip().rstrip(";"), read=dialect) if p is not None]
    except (ParseError, TokenError) as exc:
        raise UnsafeSQL(f"custom SQL does not parse ({_first_line(exc)})") from None
    except RecursionError:
        raise UnsafeSQL("custom SQL is nested too deeply to read") from None
    if len(parsed) != 1:
        raise UnsafeSQL("custom SQL must be exactly one SELECT statement")
    tree = parsed[0]
    if not isinstance(tree, exp.Query):
        raise UnsafeSQL(f"custom SQL must be a SELECT, not {tree.key.upper()}")
    _refuse_unsafe_nodes(tree, sql, allow_select=True)
    return tree


def _refuse_unsafe_nodes(tree: exp.Expression, sql: str, *, allow_select: bool) -> None:
    for node in tree.walk():
        if allow_select and isinstance(node, (exp.Select, exp.Subquery, exp.Union, exp.Table, exp.With, exp.CTE)):
            continue
        if isinstance(node, _FORBIDDEN_NODES):
            what = "a subquery" if isinstance(node, (exp.Select, exp.Subquery, exp.Table)) else node.key.upper()
            raise UnsafeSQL(f"{sql!r} contains {what}; only read-only row conditions are allowed")
        if isinstance(node, exp.Func):
            fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if fname in _FORBIDDEN_FUNCTIONS:
                raise UnsafeSQL(f"{sql!r} calls {fname}(), which is not allowed in a filter")


def _short(sql: str) -> str:
    return repr(sql if len(sql) <= 80 else sql[:77] + "...")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
