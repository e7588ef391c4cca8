"""The ledger's store: an app database of the previous version (before migration 0013) upgrades in
place with nothing lost; its first valuation fills the ledger; timelines are kept for the newest
as-of and month-ends only; flags keep their history across looks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from tests.reliability.conftest import db_rows
from valuetrack.store import db
from valuetrack.store.schema import LEDGER_TABLES

AS_OF = "2026-03-01"
KEPT = ("models", "audit_log", "refreshes", "ab_aggregates", "series_points", "health_daily", "report_snapshots",
        "value_results")


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_previous_version_database_upgrades_in_place(workspace: Path, cli) -> None:
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    issued = cli("report", "--month", "2026-01", "--format", "csv", "--out", workspace / "jan.csv",
                 "--as-of", AS_OF, "--json", schema="report").json
    url = f"sqlite:///{workspace / 'valuetrack.db'}"
    db.dispose_all()
    engine = sa.create_engine(url)
    cfg = db._alembic_config()
    with engine.begin() as conn:  # the app database as the previous version left it
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    engine.dispose()
    assert not {t.name for t in LEDGER_TABLES} & _tables(url)
    before = db_rows(url)

    # the new version opens it: migrated in place, nothing in the registry or the snapshots lost
    unvalued = cli("value", "--as-of", AS_OF, "--json")
    assert unvalued.code == 1 and unvalued.json["error"]["code"] == "not_valued"
    db.dispose_all()
    after = db_rows(url)
    # refreshes gained two columns (0022: exposures_from, 0025: definition), NULL on the rows stored before
    assert {r[-2:] for r in after["refreshes"]} == {("None", "None")}
    after["refreshes"] = [r[:-2] for r in after["refreshes"]]
    for table in KEPT:
        assert after[table] == before[table], table
    assert {t.name for t in LEDGER_TABLES} <= _tables(url)
    # its first refresh fills the ledger; the issued report exports as it was issued
    assert cli("refresh", "--as-of", AS_OF).code == 0
    value = cli("value", "--as-of", AS_OF, "--json", schema="value").json
    assert value["models"] and all(m["net"] is not None for m in value["models"] if m["method"] == "ab")
    from valuetrack.context import open_context

    stored = open_context().snapshots.get(issued["snapshot_id"])
    assert stored.export("csv") == (workspace / "jan.csv").read_bytes()


def test_timelines_are_kept_for_the_newest_as_of_and_month_ends(workspace: Path, cli) -> None:
    from valuetrack.context import open_context

    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    for day in ("2026-02-10", "2026-02-20", "2026-02-27", "2026-02-28"):
        assert cli("revalue", "--as-of", day).code == 0
    ctx = open_context()
    kept = {}
    with ctx.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT a.as_of, count(t.model_name) FROM ledger_asofs a LEFT JOIN ledger_timeline t "
                                    "ON t.asof_id = a.id GROUP BY a.id, a.as_of")).all()
    for as_of, n in rows:
        kept[str(as_of)[:10]] = n
    models = len(ctx.registry.list())
    # the newest valuation (2026-02-28 was written last) and the last as-of of each month keep theirs
    assert kept["2026-02-28"] > 0 and kept["2026-03-01"] > 0
    assert kept["2026-02-10"] == kept["2026-02-20"] == kept["2026-02-27"] == 0
    assert max(kept.values()) <= models
    # figures of every as-of stay: a past as-of reads what was valued then
    past = cli("value", "--as-of", "2026-02-20", "--json", schema="value").json
    assert past["as_of"] == "2026-02-20" and past["period_end"] == "2026-02-19"


def test_flags_keep_their_history(workspace: Path, cli) -> None:
    from valuetrack import ledger
    from valuetrack.context import open_context

    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    assert cli("revalue", "--as-of", "2026-03-02").code == 0
    ctx = open_context()
    pv = ledger.portfolio(ctx)
    assert pv.flags
    f = pv.flags[0]
    history = [h for h in ledger.model(ctx, f.model).history if h["type"] == f.type]
    assert [h["status"] for h in history] == ["raised", "raised"]
    # raised on the first look, carried while it stays raised, with the evidence of each look
    assert {h["raised_on"] for h in history} == {dt.date(2026, 3, 1)}
    assert all(h["evidence"] for h in history)
    flags = cli("flags", "--json", schema="flags").json["flags"]
    assert next(x for x in flags if (x["model"], x["type"]) == (f.model, f.type))["raised_on"] == "2026-03-01"
    # a model retired leaves the flags: the next look records the flag cleared, with the day
    assert cli("models", "retire", f.model).code == 0
    history = [h for h in ledger.model(ctx, f.model).history if h["type"] == f.type]
    assert history[-1]["status"] == "cleared" and history[-1]["cleared_on"] == dt.date(2026, 3, 2)


def test_packed_series_read_back_as_the_json_values_stored_before_packing() -> None:
    """series_columns packs a chart series (D55); series_values gives back exactly what the ledger
    stored before packing, a JSON round trip of the cleaned values: same numbers to the bit, same
    types, NaN and ±inf as None, days as ISO text; columns it cannot pack stay JSON values."""
    import json

    import numpy as np
    import pandas as pd

    from valuetrack.jsonsafe import clean
    from valuetrack.store.ledger import _default, series_columns, series_values

    rng = np.random.default_rng(55)
    n = 400
    floats = rng.normal(0, 1e3, n) * 10.0 ** rng.integers(-12, 12, n)
    floats[rng.integers(0, n, 20)] = np.nan
    floats[:3] = [np.inf, -np.inf, -0.0]
    days = [dt.date(2024, 2, 27) + dt.timedelta(days=int(d)) for d in rng.integers(0, 900, n)]
    frame = pd.DataFrame({
        "day": days, "effect": floats, "f32": floats.astype(np.float32), "n": rng.integers(-5, 10**12, n),
        "n32": rng.integers(0, 100, n).astype(np.int32), "provisional": rng.random(n) < 0.3,
        "arm": rng.choice(["holdout", "model", "control"], n), "stamp": pd.to_datetime(days),
        "hour": pd.to_datetime(days) + pd.Timedelta(hours=1), "gap": [None if i % 7 else d for i, d in enumerate(days)],
        "when": [dt.datetime(2026, 1, 1, 10)] * n, "nullable": pd.array(rng.integers(0, 3, n), dtype="Int64"),
        "u": rng.integers(0, 9, n).astype(np.uint16), "mixed": ["a" if i % 2 else 1 for i in range(n)],
    })
    frame.loc[5, "nullable"] = pd.NA

    def before(column: pd.Series) -> list:  # what the ledger stored: the values' JSON round trip
        return json.loads(json.dumps(clean(column.tolist()), default=_default))

    packed = series_columns(frame)
    stored = json.loads(json.dumps(packed))  # through the JSON column
    got = series_values({"timeline": stored})["timeline"]
    assert list(got) == list(frame.columns)
    for c in frame.columns:
        assert json.dumps(got[c]) == json.dumps(before(frame[c])), c
        assert [type(v) for v in got[c]] == [type(v) for v in before(frame[c])], c
    # the long numeric, day and text columns are the packed ones
    assert {c for c, v in stored.items() if isinstance(v, dict)} == {
        "day", "effect", "f32", "n", "n32", "provisional", "arm", "stamp"}
    assert series_columns(frame.iloc[:0]) == series_columns(None) == {}


def test_a_timeline_stored_before_packing_still_reads(workspace: Path, cli) -> None:
    """An app database upgraded in place keeps the timelines its previous version stored, as JSON
    values per column: they read as before, and as the packed ones do (D55)."""
    import json

    import pandas as pd

    from valuetrack import ledger
    from valuetrack.context import open_context
    from valuetrack.store.schema import ledger_timeline as t

    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    ctx = open_context()
    asof_id = ledger.latest_id(ctx)
    name = next(m.model for m in ledger.portfolio(ctx).models if m.method == "ab" and m.net is not None)
    with ctx.engine.connect() as conn:
        packed = conn.execute(sa.select(t.c.series).where(t.c.asof_id == asof_id, t.c.model_name == name)).scalar()
    assert isinstance(packed["timeline"]["effect"], dict) and isinstance(packed["daily"]["day"], dict)
    values = ctx.ledger.timeline(asof_id, name)
    frames = ledger.model(ctx, name).timeline
    assert len(frames["timeline"]) > 30 and len(frames["daily"]) > 30
    with ctx.engine.begin() as conn:  # the row as the previous version wrote it
        conn.execute(t.update().where(t.c.asof_id == asof_id, t.c.model_name == name).values(series=values))
        old = conn.execute(sa.select(t.c.series).where(t.c.asof_id == asof_id, t.c.model_name == name)).scalar()
    assert all(type(v) is list for part in old.values() for v in part.values())
    assert json.dumps(ctx.ledger.timeline(asof_id, name)) == json.dumps(values)
    for part, frame in ledger.model(ctx, name).timeline.items():
        pd.testing.assert_frame_equal(frame, frames[part], check_exact=True)
