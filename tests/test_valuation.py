"""The valuation (valuetrack/valuation.py): one portfolio-wide as-of per run, written only when its
inputs did not change meanwhile, and figures that add up (months to the to-date total, the
payback date from the cumulative series the chart draws)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from pathlib import Path

import pytest

AS_OF = "2026-03-01"


@pytest.fixture
def valued(workspace: Path, cli) -> Path:
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    return workspace


def test_an_edit_before_the_first_valuation_values_nothing(workspace: Path, cli, manifest: Path) -> None:
    from valuetrack import ledger
    from valuetrack.context import open_context

    assert cli("models", "register", "--file", manifest).code == 0
    assert ledger.history(open_context()) == []  # the first refresh (or revalue) fills the ledger


def test_an_edit_is_valued_at_once_at_the_newest_as_of(valued: Path) -> None:
    from valuetrack import ledger
    from valuetrack.actions import save
    from valuetrack.context import open_context

    ctx = open_context()
    before = ledger.portfolio(ctx)
    reg = ctx.registry.get("homepage-recs")
    save(ctx, reg.spec.replace(monthly_cost=reg.spec.monthly_cost * 2), expected_revision=reg.revision)
    after = ledger.portfolio(ctx)
    assert after.asof_id > before.asof_id and after.as_of == before.as_of
    old = next(m for m in before.models if m.model == "homepage-recs")
    new = next(m for m in after.models if m.model == "homepage-recs")
    assert new.registry_revision == reg.revision + 1
    assert new.cost > old.cost and new.gross == old.gross  # the fixed cost doubled, the effect did not move
    assert new.net == pytest.approx(old.net - (new.cost - old.cost))
    assert [h["reason"] for h in ledger.history(ctx)][:2] == ["edit", "refresh"]


def test_a_valuation_whose_inputs_changed_is_not_written_and_runs_again(valued: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from valuetrack import ledger, valuation
    from valuetrack.context import open_context

    ctx = open_context()
    reg = ctx.registry.get("homepage-recs")
    real = valuation.build_record
    calls = []

    def edit_while_valuing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out = real(*args, **kwargs)
        if not calls:  # someone saves a new cost after this run read the registry
            ctx.registry.update(reg.spec.replace(monthly_cost=123.0), expected_revision=reg.revision, actor=ctx.actor)
        calls.append(1)
        return out

    monkeypatch.setattr(valuation, "build_record", edit_while_valuing)
    done = valuation.revalue(ctx, as_of=dt.date.fromisoformat(AS_OF))
    assert done.attempts == 2 and done.asof_id is not None
    record = ledger.model(ctx, "homepage-recs")
    assert record.asof["id"] == done.asof_id
    assert record.value.registry_revision == reg.revision + 1  # the written valuation includes the edit


def test_months_add_up_to_the_figure_to_date_and_payback_follows_the_cumulative_series(valued: Path) -> None:
    from valuetrack import ledger
    from valuetrack.context import open_context

    ctx = open_context()
    pv = ledger.portfolio(ctx)
    checked = 0
    for m in pv.models:
        if m.net is None or m.method != "ab":
            continue
        record = ledger.model(ctx, m.model)
        assert sum(x.net for x in record.months) == pytest.approx(m.net, rel=1e-9, abs=1e-6), m.model
        cumulative = record.timeline["cumulative"]
        assert cumulative["net"].iloc[-1] == pytest.approx(m.net, rel=1e-9, abs=1e-6)
        one_off = ctx.registry.get(m.model).spec.one_off_costs
        hit = cumulative[cumulative["net"] >= one_off]
        assert m.payback_date == (hit["day"].iloc[0] if len(hit) else None), m.model
        checked += 1
    assert checked >= 3
    # the portfolio's month totals are its models' months, as stored
    month = pv.months[-2]
    mp = ledger.portfolio(ctx, month=month)
    assert mp.totals["cost"] == pytest.approx(sum(x.cost for x in mp.models if x.state == "ok"))


def test_models_valued_in_worker_processes_give_the_same_record(valued: Path) -> None:
    """The forked workers of a large portfolio (value/parallel.py) write the very record one process
    writes: every period, month, timeline point, flag and failure, to the last bit."""
    import json

    from valuetrack import valuation
    from valuetrack.context import open_context
    from valuetrack.value.parallel import workers_for

    ctx = open_context()
    as_of = dt.date.fromisoformat(AS_OF)
    token = ctx.ledger.token()
    one, pv_one = valuation.build_record(ctx, as_of=as_of, reason="revalue", alpha=0.05, token=token)
    two, pv_two = valuation.build_record(ctx, as_of=as_of, reason="revalue", alpha=0.05, token=token, workers=2)

    def dump(record):  # noqa: ANN001, ANN202
        return json.dumps({k: getattr(record, k) for k in ("periods", "models", "monthly", "timeline", "flags",
                                                           "input_hash")}, sort_keys=True, default=str)

    assert len(pv_one.models) >= 10 and pv_one.flags  # the demo: every kind of model, some flagged
    assert dump(one) == dump(two)
    assert [m.error for m in pv_one.models] == [m.error for m in pv_two.models]
    # the value at risk reads what the workers sent back (D59: their valuations without the stored rows)
    var_one = valuation._var(pv_one)
    assert "error" not in var_one and var_one["models"]
    assert json.dumps(var_one, default=str) == json.dumps(valuation._var(pv_two), default=str)
    assert workers_for(12, cpus=8) == 1 and workers_for(200, cpus=2) == 2 and workers_for(1000, cpus=64) == 4


def test_months_before_launch_are_the_same_whoever_values_them(valued: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model's months before it went live are valued with the model (in its worker) back to the
    first month of the newest valuation, and by the record for any earlier month (D59): with that
    month unknown, in the middle of the portfolio's months, or where the record starts, the record
    is the same, in one process and from workers (whose valuations keep no stored rows)."""
    import json

    from valuetrack import valuation
    from valuetrack.context import open_context
    from valuetrack.store.ledger import LedgerStore

    ctx = open_context()
    as_of, token = dt.date.fromisoformat(AS_OF), ctx.ledger.token()
    months = sorted(m for m in ctx.ledger.asof()["periods"] if m != valuation.TO_DATE)
    assert ctx.ledger.first_month() == months[0] and len(months) >= 6

    def record(first: str | None, workers: int) -> str:
        monkeypatch.setattr(LedgerStore, "first_month", lambda self: first)
        one, _ = valuation.build_record(ctx, as_of=as_of, reason="revalue", alpha=0.05, token=token, workers=workers)
        return json.dumps({k: getattr(one, k) for k in ("periods", "models", "monthly", "timeline", "flags")},
                          sort_keys=True, default=str)

    expected = record(None, 1)  # every month before launch valued by the record
    assert any(not row["live"] for row in json.loads(expected)["monthly"])
    for first in (months[0], months[len(months) // 2]):
        assert record(first, 1) == expected
        assert record(first, 2) == expected


def test_a_worker_process_that_dies_leaves_the_valuation_to_the_parent(valued: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A worker killed mid-valuation (out of memory, a signal) must not hang or lose the valuation:
    the models are valued in the calling process instead, with the same figures."""
    import os

    from valuetrack.context import open_context
    from valuetrack.value.portfolio import value_portfolio

    ctx = open_context()
    as_of = dt.date.fromisoformat(AS_OF)
    parent = os.getpid()

    def dies_in_a_worker(v):  # noqa: ANN001, ANN202
        if os.getpid() != parent and v.reg.name == "homepage-recs":
            os._exit(9)
        return {}

    alone = value_portfolio(ctx, as_of=as_of)
    survived = value_portfolio(ctx, as_of=as_of, workers=2, prepare=dies_in_a_worker)
    assert [m.to_dict() for m in survived.models] == [m.to_dict() for m in alone.models]
    assert survived.totals == alone.totals
    assert "ended abruptly" in caplog.text  # the worker did die, and the parent valued the models


def test_the_value_at_risk_simulated_in_a_forked_process_is_the_one_computed_in_process(
        valued: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A command-line valuation simulates the value at risk in a forked process while it shapes and
    writes the record (valuation._start_var): it stores what one process stores, and a child that
    dies leaves the simulation to the parent."""
    import os

    from valuetrack import valuation
    from valuetrack.context import open_context
    from valuetrack.value.parallel import in_child
    from valuetrack.value.portfolio import value_portfolio

    ctx = open_context()
    as_of = dt.date.fromisoformat(AS_OF)
    valuation.revalue(ctx, as_of=as_of, workers=1)
    alone = ctx.var.latest()
    valuation.revalue(ctx, as_of=as_of, workers=2)
    forked = ctx.var.latest()
    assert alone["horizons"] and forked == alone

    pv = value_portfolio(ctx, as_of=as_of)
    parent = os.getpid()

    def dies_in_the_child():  # noqa: ANN202
        if os.getpid() != parent:
            os._exit(9)
        return valuation._var(pv)

    assert in_child(dies_in_the_child)() == valuation._var(pv)
    assert "ended abruptly" in caplog.text


def test_the_ledger_json_is_what_a_json_round_trip_gives(valued: Path) -> None:
    """valuetrack.store.ledger.jsonable builds in one pass what json.loads(json.dumps(...)) gave:
    checked on a whole valuation of the demo and on the awkward values a valuation can hold."""
    import datetime
    import decimal
    import json

    import numpy as np
    import pandas as pd

    from valuetrack import valuation
    from valuetrack.context import open_context
    from valuetrack.jsonsafe import clean
    from valuetrack.store import ledger

    def round_trip(value):  # noqa: ANN001, ANN202 - the reference: what the ledger stored before
        return json.loads(json.dumps(clean(value), default=ledger._default))

    ctx = open_context()
    record, pv = valuation.build_record(ctx, as_of=dt.date.fromisoformat(AS_OF), reason="x", alpha=0.05,
                                        token=ctx.ledger.token())
    figures = [m.to_dict() for m in pv.models] + [f.to_dict() for f in pv.flags] + [record.periods]
    odd = {"nan": float("nan"), "inf": -np.inf, "i64": np.int64(7), "f32": np.float32(0.1), "b": np.bool_(True),
           "arr": np.array([np.nan]), "day": datetime.date(2026, 3, 1), "ts": pd.Timestamp("2026-03-01 10:00"),
           "dt": datetime.datetime(2026, 3, 1, 10, 0), "dec": decimal.Decimal("1.25"), "tup": (1, (2.0, None)),
           "nested": [{"k": np.float64(2.5)}, [np.int32(3)]], 4: "int key", "s": np.str_("text")}
    for value in [*figures, odd]:
        assert ledger.jsonable(value) == round_trip(value)


def test_a_model_value_replaced_is_the_one_dataclasses_replace_gives(valued: Path) -> None:
    """The record copies a ModelValue per model per month with valuetrack.value.portfolio.replaced
    (no 50-argument __init__): the same object dataclasses.replace builds, as long as ModelValue's
    __init__ only sets its fields."""
    import dataclasses

    from valuetrack import ledger
    from valuetrack.context import open_context
    from valuetrack.value.portfolio import ModelValue, replaced

    assert not hasattr(ModelValue, "__post_init__") and not hasattr(ModelValue, "__slots__")
    value = ledger.portfolio(open_context()).models[0]
    changes = {"period_start": dt.date(2026, 1, 1), "health": {"status": "ok"}, "risk": {"level": "low"}}
    copy, reference = replaced(value, **changes), dataclasses.replace(value, **changes)
    assert copy == reference and copy.__dict__ == reference.__dict__ and list(copy.__dict__) == list(reference.__dict__)
    assert value.risk != changes["risk"]  # the original is left as it was
    with pytest.raises(TypeError):
        replaced(value, nett=1.0)


def test_structural_fits_are_kept_between_valuations_without_changing_a_figure(valued: Path) -> None:
    """D52: what the Kalman filter passes over an unchanged pre-period produced is kept in the app
    database by the valuation that wrote the ledger (here the refresh), and read by the next one,
    in another process too, and by the worker processes: no filter pass, the same record to the
    last bit as a valuation without it. D65: so is the whole result of a fit whose inputs did not
    change (here the same as-of), restored without a pass or a path. The table holds exactly the
    entries the newest valuation used."""
    import json
    import os
    import subprocess
    import sys

    import sqlalchemy as sa

    from valuetrack import valuation
    from valuetrack.context import open_context
    from valuetrack.store.schema import fit_cache

    ctx = open_context()
    structural = [r.name for r in ctx.registry.list() if r.spec.attribution.method == "structural"]
    assert structural

    def rows() -> dict[str, set[str]]:
        with ctx.engine.connect() as conn:
            out: dict[str, set[str]] = {}
            for name, key in conn.execute(sa.select(fit_cache.c.model_name, fit_cache.c.key)):
                out.setdefault(name, set()).add(key)
            return out

    def value(workers: int = 1):  # noqa: ANN202
        record, pv = valuation.build_record(ctx, as_of=dt.date.fromisoformat(AS_OF), reason="revalue", alpha=0.05,
                                            token=ctx.ledger.token(), workers=workers)
        dump = json.dumps({k: getattr(record, k) for k in ("periods", "models", "monthly", "timeline", "flags",
                                                           "input_hash")}, sort_keys=True, default=str)
        fits = {n: pv.valuations[n].data.fits for n in structural}
        return dump, {n: (f.passes, f.restored) for n, f in fits.items()}, record

    kept = rows()
    # the fit, its held-out refit and the kept result
    assert set(kept) == set(structural) and all(len(k) == 3 for k in kept.values())
    with_cache, passes, record = value()
    assert set(passes.values()) == {(0, 1)}
    assert {n: set(e) for n, e in record.fits.items()} == kept and not any(
        p for e in record.fits.values() for p in e.values())  # nothing new to write
    _, passes, _ = value(workers=2)
    assert set(passes.values()) == {(0, 1)}  # the forked workers read them too

    with ctx.engine.begin() as conn:
        conn.execute(fit_cache.delete())
    without, passes, _ = value()
    assert with_cache == without
    assert all(p == (2 * 25, 0) for p in passes.values())

    # another process values the portfolio and keeps the fits again (in the ledger's transaction)
    env = {**os.environ, "PYTHONPATH": str(Path(valuation.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-m", "valuetrack", "revalue", "--as-of", AS_OF], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert rows() == kept
    again, passes, _ = value()
    assert again == with_cache and set(passes.values()) == {(0, 1)}


def _ledger_rows(ctx) -> str:  # noqa: ANN001
    """The newest as-of's ledger rows, without ids, write times and each model's refresh timings."""
    import json

    import sqlalchemy as sa

    from valuetrack.store.schema import ledger_asofs, ledger_flags, ledger_models, ledger_monthly, ledger_timeline

    out = {}
    with ctx.engine.connect() as conn:
        asof_id = conn.execute(sa.select(sa.func.max(ledger_asofs.c.id))).scalar()
        for table in (ledger_asofs, ledger_models, ledger_monthly, ledger_timeline, ledger_flags):
            key = table.c.id if table is ledger_asofs else table.c.asof_id
            rows = [dict(r._mapping) for r in conn.execute(sa.select(table).where(key == asof_id))]
            for r in rows:
                for k in [k for k in r if k in ("id", "asof_id") or k.endswith("_at")]:
                    del r[k]
                if isinstance(r.get("detail"), dict):
                    r["detail"] = {k: v for k, v in r["detail"].items() if k != "refresh"}  # its timings
            out[table.name] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return json.dumps(out)


def _next_day_refresh(*, edit_during_pull: bool = False) -> tuple[str, str]:
    """Refresh the demo the day after AS_OF with its models valued while the refresh pulls (two
    workers, as the command line does for a large portfolio), then value it again in one process
    afterwards; the ledger rows each wrote. ``edit_during_pull``: another user doubles a cost while
    the refresh stores the first model."""
    from valuetrack import refresh as refresh_module
    from valuetrack.context import open_context
    from valuetrack.store.aggregates import AggregateStore
    from valuetrack.valuation import preparer, revalue
    from valuetrack.value.parallel import EarlyValuation

    ctx = open_context()
    as_of = dt.date.fromisoformat(AS_OF) + dt.timedelta(days=1)
    early = EarlyValuation(ctx, as_of, 0.05, preparer(ctx, 0.05), workers=2)
    real, edited = AggregateStore.save, []

    def save_and_edit(self, refresh_id, pulled):  # noqa: ANN001, ANN202
        if edit_during_pull and not edited:
            reg = ctx.registry.get("homepage-recs")
            ctx.registry.update(reg.spec.replace(monthly_cost=reg.spec.monthly_cost * 2),
                                expected_revision=reg.revision, actor=ctx.actor)
            edited.append(True)
        return real(self, refresh_id, pulled)

    AggregateStore.save = save_and_edit
    try:
        refresh_module.refresh(ctx, as_of=as_of, value=False, early=early)
    finally:
        AggregateStore.save = real
    done = revalue(ctx, as_of=as_of, reason="refresh", workers=2, early=early)
    assert done.asof_id is not None and done.attempts == 1
    during = _ledger_rows(ctx)
    revalue(ctx, as_of=as_of, reason="refresh")  # the same inputs, valued after the refresh
    return during, _ledger_rows(ctx)


def test_models_valued_while_the_refresh_pulls_write_the_record_valued_after_it(
        valued: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's refresh starts each model's valuation in a worker as soon as the model's
    aggregates are stored (value/parallel.EarlyValuation, D57): the ledger gets the very rows a
    valuation after the refresh writes, and the workers valued every model."""
    from valuetrack.value import parallel

    valued_again = []
    real = parallel.value_models
    monkeypatch.setattr(parallel, "value_models", lambda *a, **k: valued_again.append(1) or real(*a, **k))
    during, after = _next_day_refresh()
    assert valued_again == []  # nothing was valued a second time during the refresh
    assert during == after
    assert '"state": "error"' not in during.split('"ledger_monthly"')[0]  # every model valued, none failed


def test_the_refresh_s_warehouse_work_runs_in_its_own_process_and_stores_this_as_of_s_counts(
        valued: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's refresh pulls, stores and counts the units the models share in a forked
    process (D69), never in the process that values: the counts it stores are this as-of's, the
    same as counting again after the refresh."""
    from valuetrack import refresh as refresh_module
    from valuetrack import refresh_pull
    from valuetrack.context import open_context
    from valuetrack.value.overlap import Pattern

    here, calls = os.getpid(), []  # what ran in this process (a child's appends stay in the child)
    real_count, real_pull = refresh_module._count_overlaps, refresh_pull.pull_models
    monkeypatch.setattr(refresh_module, "_count_overlaps",
                        lambda *a: (os.getpid() == here and calls.append("count")) or real_count(*a))
    monkeypatch.setattr(refresh_pull, "pull_models",
                        lambda *a, **k: (os.getpid() == here and calls.append("pull")) or real_pull(*a, **k))
    _next_day_refresh()
    assert calls == []
    ctx = open_context()
    as_of = dt.date.fromisoformat(AS_OF) + dt.timedelta(days=1)
    stored = [Pattern.from_dict(p) for p in ctx.overlaps.patterns()]
    specs = [r.spec for r in ctx.registry.list(status="active")]
    # counted again over the whole history (no stored counts to advance): the same patterns and
    # the same counts kept for the next refresh as the refresh's, advanced from the day before's (D64)
    pairs, counted_as_of, patterns, kept = real_count(ctx, specs, {}, ctx.settings.secrets(), as_of, None)
    assert stored and stored == list(patterns) and counted_as_of == as_of
    assert kept and {c.key: (c.settled, dict(c.counts)) for c in kept} == ctx.overlaps.settled_counts()
    assert {(o.model_a, o.model_b, o.shared_units) for o in pairs} == {
        (o["model_a"], o["model_b"], o["shared_units"]) for o in ctx.overlaps.read()}


def test_an_edit_while_the_refresh_pulls_is_in_the_valuation_it_ends_with(
        valued: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cost edited by someone else while the refresh stores the models changes the valuation's
    inputs: what the workers valued meanwhile is dropped and the models are valued again, with the
    new cost (the rows a valuation after the refresh and the edit writes)."""
    from valuetrack import ledger
    from valuetrack.context import open_context
    from valuetrack.value import parallel

    valued_again = []
    real = parallel.value_models
    monkeypatch.setattr(parallel, "value_models", lambda *a, **k: valued_again.append(1) or real(*a, **k))
    during, after = _next_day_refresh(edit_during_pull=True)
    assert valued_again == [1]  # the early valuations were dropped: valued again, once
    assert during == after
    ctx = open_context()
    edited = next(m for m in ledger.portfolio(ctx).models if m.model == "homepage-recs")
    assert edited.registry_revision == ctx.registry.get("homepage-recs").revision  # the edit is in it


def test_a_warehouse_process_that_dies_leaves_the_rest_of_the_refresh_to_the_command(
        valued: Path, cli, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The command line's refresh pulls in a forked process (D69). If that process dies (killed, out
    of memory) after storing some models, the command pulls the others and counts the overlaps
    itself: every model is refreshed, the ledger holds what a valuation after the refresh writes,
    and the stored overlap counts are this as-of's."""
    from valuetrack import refresh as refresh_module
    from valuetrack.context import open_context
    from valuetrack.store.aggregates import AggregateStore
    from valuetrack.valuation import revalue
    from valuetrack.value import parallel
    from valuetrack.value.overlap import Pattern

    here, real_save, saved_there = os.getpid(), AggregateStore.save, []

    def save(self, refresh_id, pulled):  # noqa: ANN001, ANN202
        if os.getpid() != here:
            saved_there.append(refresh_id)
            if len(saved_there) == 3:
                os._exit(9)  # the warehouse process dies while storing its third model
        return real_save(self, refresh_id, pulled)

    monkeypatch.setattr(parallel, "workers_for", lambda n, cpus=None: 2)
    as_of = dt.date.fromisoformat(AS_OF) + dt.timedelta(days=1)
    refresh = ("refresh", "--as-of", as_of.isoformat(), "--json")
    database, kept = open_context().engine.url.database, valued / "before.db"
    with contextlib.closing(sqlite3.connect(database)) as src, contextlib.closing(sqlite3.connect(kept)) as dst:
        src.backup(dst)
    undisturbed = (cli(*refresh, schema="refresh").json["refreshed"], cli("value", "--json", schema="value").out)
    with contextlib.closing(sqlite3.connect(kept)) as src, contextlib.closing(sqlite3.connect(database)) as dst:
        src.backup(dst)  # the database as it was before that refresh

    monkeypatch.setattr(AggregateStore, "save", save)
    result = cli(*refresh, schema="refresh")
    ctx = open_context()
    active = ctx.registry.list(status="active")
    assert len(saved_there) == 0 and "ended before its work was done" in caplog.text  # (it died in the child)
    assert result.code == 0 and len(result.json["refreshed"]) == len(active) > 3

    def pulled(refreshed: list[dict]) -> list[tuple]:
        return [(r["model"], r["status"], r["since_day"], r["rows"]) for r in refreshed]

    assert pulled(result.json["refreshed"]) == pulled(undisturbed[0])
    assert cli("value", "--json", schema="value").out == undisturbed[1]
    during = _ledger_rows(ctx)
    revalue(ctx, as_of=as_of, reason="refresh")
    assert during == _ledger_rows(ctx)
    _, _, patterns, _ = refresh_module._count_overlaps(ctx, [r.spec for r in active], {}, ctx.settings.secrets(),
                                                       as_of, None)
    assert patterns and [Pattern.from_dict(p) for p in ctx.overlaps.patterns()] == list(patterns)


@pytest.mark.parametrize("only, broken", [((), False), (("--model", "homepage-recs"), False), ((), True)],
                         ids=["all", "one-model", "a-pull-fails"])
def test_the_command_line_refresh_values_the_models_while_it_pulls(valued: Path, cli, only: tuple[str, ...],
                                                                    broken: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`valuetrack refresh` on a portfolio large enough for worker processes (here: made to look
    so) values the models during the refresh, and writes what a valuation afterwards writes; with
    ``--model``, the models it does not pull are valued by the same workers; a model whose pull
    fails is valued on its last stored aggregates, shown as stale."""
    from valuetrack import refresh_pull
    from valuetrack.errors import WarehouseError

    if broken:
        real_pull = refresh_pull.pull_model

        def pull(spec, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if spec.name == "homepage-recs":
                raise WarehouseError("the warehouse is down")
            return real_pull(spec, *args, **kwargs)

        monkeypatch.setattr(refresh_pull, "pull_model", pull)
    from valuetrack.context import open_context
    from valuetrack.valuation import revalue
    from valuetrack.value import parallel

    valued_again = []
    real = parallel.value_models
    monkeypatch.setattr(parallel, "workers_for", lambda n, cpus=None: 2)
    monkeypatch.setattr(parallel, "value_models", lambda *a, **k: valued_again.append(1) or real(*a, **k))
    as_of = dt.date.fromisoformat(AS_OF) + dt.timedelta(days=1)
    result = cli("refresh", "--as-of", as_of.isoformat(), *only, "--json", schema="refresh")
    assert len(result.json["refreshed"]) == (1 if only else len(open_context().registry.list(status="active")))
    assert result.code == (1 if broken else 0) and result.json["valuation"]["attempts"] == 1
    assert valued_again == []  # valued by the refresh's own workers, not forked again afterwards
    ctx = open_context()
    during = _ledger_rows(ctx)
    revalue(ctx, as_of=as_of, reason="refresh")
    assert during == _ledger_rows(ctx)
    if broken:  # shown as stale, and its flags stay as the last look left them: not tested again, not cleared
        import sqlalchemy as sa

        from valuetrack import ledger
        from valuetrack.store.schema import ledger_flags

        stale = next(m for m in ledger.portfolio(ctx).models if m.model == "homepage-recs")
        assert stale.state == "error" and "the warehouse is down" in stale.error
        with ctx.engine.connect() as conn:
            looks = conn.execute(sa.select(ledger_flags.c.as_of, ledger_flags.c.status, ledger_flags.c.raised_on)
                                 .where(ledger_flags.c.model_name == "homepage-recs")
                                 .order_by(ledger_flags.c.asof_id)).all()
        assert looks and {status for _, status, _ in looks} == {"raised"}
        assert looks[-1].as_of == as_of and looks[-1].raised_on == looks[0].raised_on < as_of


def test_a_valuation_that_fails_to_write_leaves_no_process_running(valued: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A command-line valuation simulates its value at risk in a forked process while it writes the
    record; when the write fails, the error reaches the caller and that process has ended (the
    command line ends without tearing the interpreter down, so nothing else would end it)."""
    import multiprocessing

    from valuetrack.context import open_context
    from valuetrack.store.ledger import LedgerStore
    from valuetrack.valuation import revalue

    def disk_full(self, record):  # noqa: ANN001, ANN202
        raise OSError("disk full")

    monkeypatch.setattr(LedgerStore, "write", disk_full)
    with pytest.raises(OSError, match="disk full"):
        revalue(open_context(), as_of=dt.date.fromisoformat(AS_OF), workers=2)
    assert multiprocessing.active_children() == []


def test_the_next_day_advances_the_stored_overlap_counts_and_a_full_refresh_counts_them_again(
        valued: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """D64: the refresh after a refresh counts each KPI group's overlaps only over the units served
    since the stored counts' settled day, and stores the same patterns as counting over the whole
    history, which ``refresh --full`` does."""
    from valuetrack import queries
    from valuetrack.context import open_context

    ctx = open_context()
    stored = ctx.overlaps.settled_counts()
    assert stored  # the demo has KPI groups; the first refresh kept their counts
    since = []
    real = queries.membership_query
    monkeypatch.setattr(queries, "membership_query", lambda *a, **k: since.append(k.get("since")) or real(*a, **k))
    next_day = (dt.date.fromisoformat(AS_OF) + dt.timedelta(days=1)).isoformat()
    assert cli("refresh", "--as-of", next_day).code == 0
    assert sorted(since) == sorted(day for day, _ in stored.values())  # one advancing query per group
    advanced, kept = ctx.overlaps.patterns(), ctx.overlaps.settled_counts()
    assert {day for day, _ in kept.values()} == {max(since) + dt.timedelta(days=1)}  # a day on
    since.clear()
    assert cli("refresh", "--as-of", next_day, "--full").code == 0
    assert since and set(since) == {None}
    assert ctx.overlaps.patterns() == advanced and ctx.overlaps.settled_counts() == kept
