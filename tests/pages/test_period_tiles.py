"""Tiles follow the period filter (docs/decisions.md D43): for a month, the tiles show the ledger's
stored totals of that month (as `value --month` prints them); for a range of whole months, the sums
of the stored months (net, gross, cost), with no interval; the table follows too."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pages.conftest import AS_OF, app, assert_clean, portfolio_table, run_cli
from valuetrack import schemas
from valuetrack.formatting import interval, money, money_column, money_compact
from valuetrack.ui.views import RANGE


def _month(month: str) -> dict:
    code, out = run_cli("value", "--month", month, "--as-of", AS_OF, "--json")
    assert code in (0, 3), out
    return json.loads(out)


def _tiles(at) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    return {m.label: (m.value, m.proto.help) for m in at.metric}


def _captions(at) -> str:  # noqa: ANN001
    """Every caption's text, tags removed (a tile's caption carries its exact figure in HTML)."""
    import html
    import re

    sources = [c.value for c in at.caption] + [el.proto.body for el in at.get("html")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", s)) for s in sources)


def _exact(at, key: str) -> float:  # noqa: ANN001
    """The full-precision figure a tile carries in its caption's title (data-testid tile-KEY)."""
    import html
    import re

    sources = [c.value for c in at.caption] + [el.proto.body for el in at.get("html")]
    body = next(s for s in sources if f"data-testid='tile-{key}'" in s)
    return float(html.unescape(re.search(r"title='[^']*: ([^']+)'", body).group(1)))


def test_tiles_follow_a_month_and_a_range_of_months(in_demo: Path) -> None:
    at = app().run()
    assert_clean(at)
    to_date = _tiles(at)
    assert "Net value to date" in to_date

    april = _month("2026-04")
    t, cur = april["totals"], april["currency"]
    at.selectbox(key="period").set_value("2026-04").run()
    assert_clean(at)
    tiles = _tiles(at)
    assert "Net value to date" not in tiles
    value, help_ = tiles["Net value, April 2026"]
    assert value == money_compact(t["net"], cur) and help_.startswith(money(t["net"], cur))
    assert tiles["Gross value, April 2026"][0] == money_compact(t["gross"], cur)
    captions = _captions(at)
    assert _exact(at, "period-net") == t["net"] and _exact(at, "period-gross") == t["gross"]  # the stored floats
    assert f"95% interval {interval(t['ci_net'], cur, compact=True)}" in captions
    assert f"cost {money_compact(t['cost'], cur)}" in captions
    table = portfolio_table(at)
    nets = dict(zip([m["model"] for m in april["models"]], money_column([m["net"] for m in april["models"]], cur)))
    assert {k: row["Net value (USD)"] for k, row in table.items()} == nets

    # March to May: the sums of the three stored months, to the cent, and no interval
    months = [_month(m) for m in ("2026-03", "2026-04", "2026-05")]
    net = sum(m["totals"]["net"] for m in months)
    gross = sum(m["totals"]["gross"] for m in months)
    at.selectbox(key="period").set_value(RANGE).run()
    at.selectbox(key="period_from").set_value("2026-03").run()
    at.selectbox(key="period_to").set_value("2026-05").run()
    assert_clean(at)
    tiles = _tiles(at)
    value, help_ = tiles["Net value, March – May 2026"]
    assert value == money_compact(net, cur) and help_.startswith(money(net, cur))
    assert tiles["Gross value, March – May 2026"][0] == money_compact(gross, cur)
    assert "the sum of 3 months" in _captions(at)
    assert abs(_exact(at, "period-net") - net) < 1e-6
    # the table: each model's net over the range is the sum of its stored months
    per_model: dict[str, float | None] = {}
    for m in months:
        for row in m["models"]:
            if row["net"] is not None:
                per_model[row["model"]] = (per_model.get(row["model"]) or 0.0) + row["net"]
    names = list(per_model)
    want = dict(zip(names, money_column([per_model[n] for n in names], cur)))
    table = portfolio_table(at)
    assert {k: table[k]["Net value (USD)"] for k in names} == want
    # `value --months` sums the same stored months: the page's figures, exactly
    code, out = run_cli("value", "--months", "2026-03..2026-05", "--as-of", AS_OF, "--json")
    assert code in (0, 3), out
    cli_range = json.loads(out)
    schemas.validate("value", cli_range)
    assert cli_range["period"] == "2026-03..2026-05" and cli_range["totals"]["net"] == _exact(at, "period-net")
    assert cli_range["totals"]["ci_net"] is None  # a range has no interval, there as here
    cli_nets = {m["model"]: m["net"] for m in cli_range["models"]}
    assert dict(zip(names, money_column([cli_nets[n] for n in names], cur))) == want
    code, out = run_cli("value", "--months", "2026-03..2026-05", "--as-of", AS_OF)
    assert code in (0, 3) and "Value 2026-03..2026-05 (2026-03-01 to 2026-05-31)" in out and "interval" not in out
    # the ends in either order give the same range
    at.selectbox(key="period_from").set_value("2026-05").run()
    at.selectbox(key="period_to").set_value("2026-03").run()
    assert _tiles(at)["Net value, March – May 2026"][0] == money_compact(net, cur)


def test_a_range_reads_the_sums_of_the_stored_months(in_demo: Path) -> None:
    """valuetrack.ledger.portfolio_range: every figure that adds up across months is the sum of the
    stored months (to the cent); what does not (intervals, P(net > 0)) is absent, never guessed."""
    import math

    import pytest

    from valuetrack import ledger
    from valuetrack.context import open_context
    from valuetrack.errors import ValidationError

    ctx = open_context()
    as_of = __import__("datetime").date.fromisoformat(AS_OF)
    months = [ledger.portfolio(ctx, as_of=as_of, month=m) for m in ("2026-02", "2026-03", "2026-04")]
    rng = ledger.portfolio_range(ctx, "2026-02", "2026-04", as_of=as_of)
    assert rng.period == "2026-02..2026-04" and rng.period_start == months[0].period_start
    assert rng.period_end == months[-1].period_end
    for key in ledger.RANGE_ADDITIVE:
        if key in months[0].totals:
            assert math.isclose(rng.totals[key], sum(m.totals[key] for m in months), abs_tol=0.005), key
    assert rng.totals["ci_net"] is None and rng.totals["prob_positive"] is None and rng.totals["months"] == 3
    by = {m.model: [next(v for v in p.models if v.model == m.model) for p in months] for m in rng.models}
    for m in rng.models:
        parts = by[m.model]
        for key in ("cost", "cost_fully_loaded", "treated_units", "predictions", "amortisation"):
            assert math.isclose(getattr(m, key), sum(getattr(v, key) for v in parts), abs_tol=0.005), (m.model, key)
        if any(v.gross is not None for v in parts):
            gross = sum(v.gross for v in parts if v.gross is not None)
            assert math.isclose(m.net, gross - m.cost, abs_tol=0.005)
            assert math.isclose(m.net_fully_loaded, gross - m.cost_fully_loaded, abs_tol=0.005)
        assert m.ci_net is None and m.prob_positive is None and m.ci_net_fully_loaded is None
    # one month is the stored month itself; ends reversed or malformed are refused with the fix
    assert ledger.portfolio_range(ctx, "2026-03", "2026-03", as_of=as_of).totals == months[1].totals
    with pytest.raises(ValidationError, match="earlier month first"):
        ledger.portfolio_range(ctx, "2026-04", "2026-02", as_of=as_of)
    with pytest.raises(ValidationError, match="YYYY-MM"):
        ledger.portfolio_range(ctx, "2026-4", "2026-05", as_of=as_of)


def test_value_months_refuses_a_reversed_or_malformed_range(in_demo: Path, capsys) -> None:  # noqa: ANN001
    for bad in (["--months", "2026-05..2026-03"], ["--months", "2026-03"], ["--months", "2026-3..2026-05"], ["--month", "2026-03", "--months", "2026-03..2026-04"]):
        try:
            code, _ = run_cli("value", *bad, "--as-of", AS_OF)
        except SystemExit as exc:  # argparse refuses it before the command runs
            code = exc.code
        assert code == 2, bad
    err = capsys.readouterr().err
    assert "is not a range of months YYYY-MM..YYYY-MM" in err and "not allowed with argument" in err
    assert "ends before it starts: give the earlier month first" in err and "(two digits for the month, e.g. 2026-04)" in err
