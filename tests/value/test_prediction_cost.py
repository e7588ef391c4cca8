"""The cost per 1,000 predictions is charged on every month's predictions (docs/decisions.md D53):
a model's first refresh reads its daily exposure counts over the whole history, and an app
database whose counts reach back only 90 days (a first refresh before D53) gets the rest on its
next refresh, with nothing stored lost. Checked against a brute-force count of the demo
warehouse's exposures."""

from __future__ import annotations

import calendar
import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from valuetrack import ledger
from valuetrack.context import open_context
from valuetrack.registry.spec import amount_on
from valuetrack.store import db

AS_OF = dt.date(2026, 12, 3)  # the demo's data runs 560 days back; its first refresh read 90 days before D53


def _predictions_per_day(workspace: Path, spec, as_of: dt.date) -> pd.Series:
    """Brute force: the model's exposures in the warehouse, counted per local day before the as-of date."""
    ex = spec.attribution.exposures
    with duckdb.connect(str(workspace / "sample_data" / "demo.duckdb"), read_only=True) as con:
        ts = con.execute(f"SELECT {ex.timestamp} AS ts FROM {ex.table} WHERE {ex.model} = ?",  # noqa: S608 - the demo's
                         [ex.model_value or spec.name]).df()["ts"]
    ts = pd.to_datetime(ts, utc=True)
    days = ts.dt.tz_convert(spec.timezone).dt.date
    days = days[days < as_of]
    return days.value_counts().sort_index()


def _by_month(per_day: pd.Series) -> dict[str, float]:
    out: dict[str, float] = {}
    for day, n in per_day.items():
        out[f"{day:%Y-%m}"] = out.get(f"{day:%Y-%m}", 0.0) + float(n)
    return out


def _expected_cost(spec, month: str, per_day: pd.Series, as_of: dt.date) -> float:
    """The month's running cost by hand: each live day's monthly cost ÷ the month's days, plus the
    cost per 1,000 predictions on that day's predictions."""
    year, mon = map(int, month.split("-"))
    length = calendar.monthrange(year, mon)[1]
    total = 0.0
    for d in range(1, length + 1):
        day = dt.date(year, mon, d)
        if day >= as_of:
            break
        if day >= spec.interventions[0].start:  # live from the launch
            total += amount_on(spec.monthly_cost, day) / length
        total += amount_on(spec.cost_per_1k_predictions, day) * float(per_day.get(day, 0)) / 1000.0
    return total


@pytest.fixture
def demo(workspace: Path, cli) -> Path:
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF.isoformat()).code == 0
    assert cli("refresh", "--as-of", AS_OF.isoformat()).code == 0
    return workspace


def _check_every_month(workspace: Path, as_of: dt.date) -> dict[str, dict[str, float]]:
    """Every month of every model with exposures: its predictions are the warehouse's and its cost
    is the hand-computed one (to the cent). Returns the predictions per model and month."""
    ctx = open_context()
    counted = {}
    for reg in ctx.registry.list():
        spec = reg.spec
        if spec.attribution.exposures is None:
            continue
        per_day = _predictions_per_day(workspace, spec, as_of)
        want = _by_month(per_day)
        record = ledger.model(ctx, spec.name)
        got = {f"{m.period_start:%Y-%m}": m for m in record.months}
        assert {k: m.predictions for k, m in got.items() if m.predictions} == want, spec.name
        for month, m in got.items():
            assert m.cost == pytest.approx(_expected_cost(spec, month, per_day, as_of), abs=0.005), (spec.name, month)
        counted[spec.name] = want
    return counted


def test_every_months_predictions_and_their_cost_come_from_the_whole_history(demo: Path) -> None:
    counted = _check_every_month(demo, AS_OF)
    # the demo's April 2026 (more than 90 days before the as-of date) shows its real predictions
    fraud = open_context().registry.get("fraud-screen").spec
    april = next(m for m in ledger.model(open_context(), "fraud-screen").months if f"{m.period_start:%Y-%m}" == "2026-04")
    assert april.predictions == counted["fraud-screen"]["2026-04"] > 0
    # hand-check: 30 days at 9,000 × 0.05 a month, plus 0.50 per 1,000 predictions
    assert amount_on(fraud.monthly_cost, dt.date(2026, 4, 1)) == 450.0
    assert april.cost == pytest.approx(450.0 + 0.5 * april.predictions / 1000, abs=0.005)
    # months outside the last 90 days are most of the history
    assert min(counted["fraud-screen"]) < f"{AS_OF - dt.timedelta(days=365):%Y-%m}"


def test_a_database_of_the_previous_version_gets_the_whole_history_on_its_next_refresh(demo: Path, cli) -> None:
    """An app database whose first refresh stored 90 days of daily exposure counts (before D53, at
    migration 0021): opened by this version, its next (incremental) refresh reads the counts over the
    whole history; every other stored row stays; the refresh after that reads only its new days."""
    url = f"sqlite:///{demo / 'valuetrack.db'}"
    first_day = AS_OF - dt.timedelta(days=89)
    db.dispose_all()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what the previous version's first refresh stored
        conn.execute(sa.text("DELETE FROM health_daily WHERE day < :d"), {"d": first_day.isoformat()})
        cfg = db._alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0021")

    def rows(table: str, where: str = "") -> set[tuple]:
        with engine.connect() as conn:
            return set(conn.execute(sa.text(f"SELECT * FROM {table} {where}")).all())  # noqa: S608 - fixed names

    # (a classifier's decisions re-read their last label_lag_days at every refresh: not compared)
    kept = {t: rows(t) for t in ("ab_aggregates", "series_points", "health_histogram", "guardrail_aggregates")}
    daily_before = rows("health_daily")
    engine.dispose()

    nxt = AS_OF + dt.timedelta(days=1)
    out = cli("refresh", "--as-of", nxt.isoformat(), "--json", schema="refresh").json["refreshed"]
    assert {r["status"] for r in out} == {"ok"} and all(r["since_day"] is not None for r in out)  # incremental
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        since = dict(conn.execute(sa.text("SELECT model_name, min(since_day) FROM refreshes WHERE as_of = :d "
                                          "GROUP BY model_name"), {"d": nxt.isoformat()}).all())
        marked = dict(conn.execute(sa.text("SELECT model_name, exposures_from FROM refreshes WHERE as_of = :d"),
                                   {"d": nxt.isoformat()}).all())
    # rows of the days before each model's since day are untouched (the histogram's too)
    for table, before in kept.items():
        after = rows(table)
        for row in before:
            if str(row[1]) < str(since[row[0]]):
                assert row in after, (table, row)
    assert {r[:4] for r in daily_before} <= {r[:4] for r in rows("health_daily")}  # nothing stored is lost
    exposed = {m.name for m in open_context().registry.list() if m.spec.attribution.exposures is not None}
    assert {k for k, v in marked.items() if v is not None} == exposed
    _check_every_month(demo, nxt)  # every month counted again, from the whole history

    # the next refresh reads only the new days of the counts: no row before its since day is re-read
    later = nxt + dt.timedelta(days=1)
    assert cli("refresh", "--as-of", later.isoformat()).code == 0
    with engine.connect() as conn:
        last = dict(conn.execute(sa.text("SELECT model_name, id FROM refreshes WHERE as_of = :d"),
                                 {"d": later.isoformat()}).all())
        since_last = dict(conn.execute(sa.text("SELECT model_name, since_day FROM refreshes WHERE as_of = :d"),
                                       {"d": later.isoformat()}).all())
        for name in exposed:
            first_reread = conn.execute(sa.text("SELECT min(day) FROM health_daily WHERE model_name = :m AND refresh_id = :r"),
                                        {"m": name, "r": last[name]}).scalar()
            assert str(first_reread) >= str(since_last[name]), name
    engine.dispose()
