"""`valuetrack export --to-warehouse` on DuckDB (docs/writeback.md): the table, read back with
DuckDB's own SQL, equals `value --json` to the cent; DECIMAL money; replaced per as-of; written only
where the connection grants it; every other query stays read-only. The same write on the Snowflake
and BigQuery stand-ins is in tests/connectors/test_writeback_warehouses.py."""

from __future__ import annotations

import datetime as dt
import decimal
import textwrap
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from valuetrack.errors import UnsafeSQL

AS_OF = "2026-06-30"


def to_cent(x: float | None) -> decimal.Decimal | None:
    return None if x is None else decimal.Decimal(repr(x)).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP)


@pytest.fixture
def company(demo_builder, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = demo_builder(0.1, AS_OF)
    (folder / "valuetrack.toml").write_text(textwrap.dedent("""
        [store]
        url = "sqlite:///valuetrack.db"
        [connections.demo]
        url = "duckdb:///sample_data/demo.duckdb"
        [connections.bi]
        url = "duckdb:///bi.duckdb"
        write_tables = ["valuetrack_values"]
    """))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("VALUETRACK_CONFIG", str(folder / "valuetrack.toml"))
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    return folder


def _query(folder: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(folder / "bi.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def test_the_table_equals_value_json_to_the_cent(company: Path, cli) -> None:
    from valuetrack.store.db import dispose_all

    written = cli("export", "--to-warehouse", "bi", "--as-of", AS_OF, "--json", schema="export")
    assert written.code == 0, written.err
    dispose_all()
    value = cli("value", "--as-of", AS_OF, "--json", schema="value").json
    flags = cli("flags", "--as-of", AS_OF, "--json", schema="flags").json["flags"]
    rows = _query(company, "SELECT model, gross, cost, net, net_lo, net_hi, flags, period_start, period_end "
                           "FROM valuetrack_values WHERE as_of = ? AND period = 'to_date' ORDER BY model",
                  dt.date.fromisoformat(AS_OF))
    assert len(rows) == len(value["models"]) == written.json["rows"]["to_date"]
    for (model, gross, cost, net, lo, hi, fl, start, end), m in zip(rows, sorted(value["models"], key=lambda m: m["model"])):
        assert model == m["model"]
        assert (gross, cost, net) == (to_cent(m["gross"]), to_cent(m["cost"]), to_cent(m["net"]))
        assert (lo, hi) == ((to_cent(m["ci_net"][0]), to_cent(m["ci_net"][1])) if m["ci_net"] else (None, None))
        assert (str(start), str(end)) == (m["period_start"], m["period_end"])
        assert set((fl or "").split(",")) - {""} == {f["type"] for f in flags if f["model"] == model}

    month = cli("value", "--as-of", AS_OF, "--month", "2026-05", "--json", schema="value").json
    got = dict(_query(company, "SELECT model, net FROM valuetrack_values WHERE period = 'month' "
                               "AND period_start <= DATE '2026-05-31' AND period_end >= DATE '2026-05-01'"))
    expected = {m["model"]: to_cent(m["net"]) for m in month["models"] if m["net"] is not None and m["live_days"] > 0}
    assert expected and all(got[k] == v for k, v in expected.items())

    # the days of a month add up to the month (each rounded to the cent)
    for model, month_net, n_days, day_sum in _query(company, """
            SELECT m.model, m.net, COUNT(*), SUM(d.net) FROM valuetrack_values m JOIN valuetrack_values d
              ON d.model = m.model AND d.period = 'day' AND d.period_start BETWEEN m.period_start AND m.period_end
            WHERE m.period = 'month' AND m.net IS NOT NULL GROUP BY m.model, m.net, m.period_start"""):
        assert abs(day_sum - month_net) <= decimal.Decimal("0.005") * n_days + decimal.Decimal("0.01"), model

    types = dict(_query(company, "SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'valuetrack_values'"))
    assert {types[c] for c in ("gross", "cost", "net", "net_lo", "net_hi")} == {"DECIMAL(18,2)"}


def test_rerunning_replaces_the_as_of_and_keeps_the_others(company: Path, cli) -> None:
    first = cli("export", "--to-warehouse", "bi", "--as-of", AS_OF, "--json", schema="export").json
    total = sum(first["rows"].values())
    assert first["replaced"] == 0
    again = cli("export", "--to-warehouse", "bi", "--as-of", AS_OF, "--json", schema="export").json
    assert again["replaced"] == total and again["rows"] == first["rows"]
    assert cli("refresh", "--as-of", "2026-07-01").code == 0  # a newer valuation
    later = cli("export", "--to-warehouse", "bi", "--as-of", "2026-07-01", "--json", schema="export").json
    counts = dict(_query(company, "SELECT CAST(as_of AS VARCHAR), COUNT(*) FROM valuetrack_values GROUP BY 1"))
    assert counts == {AS_OF: total, "2026-07-01": sum(later["rows"].values())}


def test_writing_needs_the_table_granted_and_reading_stays_read_only(company: Path, cli) -> None:
    refused = cli("export", "--to-warehouse", "demo", "--as-of", AS_OF)
    assert refused.code == 1 and 'write_tables = ["valuetrack_values"]' in refused.err
    other = cli("export", "--to-warehouse", "bi", "--table", "other_table", "--as-of", AS_OF)
    assert other.code == 1 and "'other_table'" in other.err
    bad = cli("export", "--to-warehouse", "bi", "--table", "x; drop table y", "--as-of", AS_OF)
    assert bad.code == 1 and "Traceback" not in bad.err
    assert not (company / "bi.duckdb").exists()

    from valuetrack.connectors import get_connector
    from valuetrack.context import open_context

    ctx = open_context()
    connector = get_connector(ctx.settings.connection("bi"), ctx.settings.secrets())
    table = sa.table("valuetrack_values", sa.column("as_of"))
    with pytest.raises(UnsafeSQL):  # granted a table to write, the connection still runs only reads
        connector.run(sa.delete(table), model="demo", purpose="test")
    with pytest.raises(UnsafeSQL):
        connector.run(sa.text("DROP TABLE valuetrack_values"), model="demo", purpose="test")


def test_refresh_can_export_at_each_run(company: Path, cli) -> None:
    refused = cli("refresh", "--as-of", AS_OF, "--export-to", "demo")
    assert refused.code == 1 and "write_tables" in refused.err  # refused before refreshing anything
    done = cli("refresh", "--as-of", AS_OF, "--export-to", "bi", "--lock", "--json", schema="refresh")
    assert done.code == 0, done.err
    models = len(cli("value", "--as-of", AS_OF, "--json", schema="value").json["models"])
    assert done.json["export"]["rows"]["to_date"] == models
    assert _query(company, "SELECT COUNT(*) FROM valuetrack_values WHERE period = 'to_date'") == [(models,)]
