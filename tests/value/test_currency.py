"""A model in EUR reported in USD: each day at its own rate, weekends carried forward, a gap of more
than 4 days an error naming the currency and the day (docs/methods-value.md, Currencies).

The hand computation (2026-03-05 Thursday to 2026-03-10 Tuesday; no rate published on Saturday 7
and Sunday 8, so Friday's 1.10 serves them):

    day        Thu 5   Fri 6   Sat 7   Sun 8   Mon 9   Tue 10
    rate       1.08    1.10   (1.10)  (1.10)   1.12    1.09      USD per 1 EUR
    treated     100     200      50      50     100     100      units
    gross EUR   200     400     100     100     200     200      effect 4 KPI units × 0.50 EUR per unit
    gross USD 216.00  440.00  110.00  110.00  224.00  218.00     = 1,318.00 USD
    cost EUR    110     110     110     110     110     110      3,100 EUR / 31 days + 1,000 predictions × 10 EUR / 1k
    cost USD  118.80  121.00  121.00  121.00  123.20  119.90     = 724.90 USD

Net 593.10 USD (540 EUR). The one-off cost of 1,000 EUR converts at the launch day's rate (Thursday
1.08): 1,080.00 USD.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from valuetrack.attribution.methods import Effect
from valuetrack.errors import ValidationError
from valuetrack.registry.spec import ModelSpec
from valuetrack.registry.store import RegisteredModel
from valuetrack.value.fx import FxError, FxRates, check_rates
from valuetrack.value.portfolio import ModelValuation, _ModelData

D = dt.date
DAYS = [D(2026, 3, 5) + dt.timedelta(days=i) for i in range(6)]
UNITS = [100, 200, 50, 50, 100, 100]
RATES = {D(2026, 3, 5): 1.08, D(2026, 3, 6): 1.10, D(2026, 3, 9): 1.12, D(2026, 3, 10): 1.09}


def _spec(currency: str | None = "EUR") -> ModelSpec:
    entry = {
        "name": "eur-model", "display_name": "EUR model", "owner": "a@example.com", "team": "t",
        "monthly_cost": 3100.0, "cost_per_1k_predictions": 10.0, "one_off_costs": 1000.0,
        "interventions": [{"start": DAYS[0], "label": "launch"}],
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 0.5},
        "attribution": {"method": "ab", "window_days": 1, "outcome_lag_days": 0, "covariate_days": 0,
                        "treatment_share": 0.5,
                        "exposures": {"table": "e", "unit": "u", "timestamp": "t", "arm": "arm"},
                        "outcomes": {"table": "o", "unit": "u", "timestamp": "t", "value": "v"}}}
    if currency:
        entry["currency"] = currency
    return ModelSpec.from_dict(entry)


def _valuation(rates: dict[dt.date, float], currency: str | None = "EUR", last: dt.date = DAYS[-1]) -> ModelValuation:
    ab = pd.DataFrame([{"day": d, "arm": arm, "n": n if arm == "model" else n, "sum_y": 0.0, "sum_y2": 0.0,
                        "sum_x": np.nan, "sum_x2": np.nan, "sum_xy": np.nan}
                       for d, n in zip(DAYS, UNITS) for arm in ("model", "holdout")])
    daily = pd.DataFrame({"day": DAYS, "arm": "model", "n_exposures": 1000, "n_units": 1000})
    parts = {f.name: pd.DataFrame() for f in dataclasses.fields(_ModelData)}
    parts.update(ab=ab, series=pd.DataFrame(columns=["day", "value"]), daily=daily, last_ok=None, treatment="model")
    data = _ModelData(**parts)
    effect = Effect("ab", 4.0, 1.0, 0.1, 0.01, None, True, None, DAYS[-1])
    stamp = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    reg = RegisteredModel(_spec(currency), 1, stamp, "a", stamp, "a")
    frame = pd.DataFrame({"date": [str(d) for d in rates], "currency": "EUR", "rate": [str(r) for r in rates.values()]})
    fx = FxRates.from_frame(check_rates(frame, "USD", "rates.csv"), "USD", "rates.csv")
    return ModelValuation(reg, data, effect, last + dt.timedelta(days=1), "USD", 0.05, fx)


def test_a_eur_model_in_usd_each_day_at_its_rate_the_weekend_carried_forward() -> None:
    val = _valuation(RATES)
    v = val.period(DAYS[0], DAYS[-1])
    assert v.currency == "USD" and v.treated_units == 600
    assert round(v.gross, 2) == 1318.00
    assert round(v.cost, 2) == 724.90
    assert round(v.net, 2) == 593.10
    # the interval: se 1.0 per unit → 1,318 / 4 = 329.50 USD of gross value per unit of effect
    assert round(v.gross_se, 2) == 329.50
    assert v.native == {"currency": "EUR", "gross": pytest.approx(1200.0), "cost": pytest.approx(660.0),
                        "net": pytest.approx(540.0), "rate_first": 1.08, "rate_last": 1.09,
                        "rate_mean": pytest.approx(6.59 / 6)}
    # the weekend: Saturday alone is Friday's rate, not a silent 1.0
    sat = val.period(D(2026, 3, 7), D(2026, 3, 7))
    assert round(sat.gross, 2) == 110.00 and round(sat.cost, 2) == 121.00
    assert round(val.one_off_to(DAYS[-1]), 2) == 1080.00
    # days add up to the period, to the cent
    assert round(sum(val.period(d, d).net for d in DAYS), 2) == 593.10


def test_a_model_in_the_reporting_currency_needs_no_rates() -> None:
    v = _valuation({}, currency=None).period(DAYS[0], DAYS[-1])
    assert round(v.gross, 2) == 1200.00 and round(v.cost, 2) == 660.00 and v.native is None


def test_more_than_four_days_without_a_rate_names_the_currency_and_the_day() -> None:
    # Thursday's rate, then nothing until the next Wednesday: Fri..Mon are carried (1 to 4 days),
    # Tuesday 10 would be 5 days old
    gap = {D(2026, 3, 5): 1.08, D(2026, 3, 11): 1.10}
    to_monday = _valuation(gap, last=D(2026, 3, 9))
    assert round(to_monday.period(DAYS[0], D(2026, 3, 9)).gross, 2) == round(2 * 1.08 * sum(UNITS[:5]), 2)
    with pytest.raises(FxError) as err:
        _valuation(gap).period(DAYS[0], DAYS[-1])
    assert str(err.value) == ("no EUR rate for 2026-03-10: the last EUR rate before it is of 2026-03-05, 5 days "
                              "earlier, and a rate is carried forward for at most 4 days; add the EUR rate of "
                              "2026-03-10 (USD per 1 EUR) to rates.csv")
    with pytest.raises(FxError, match=r"no EUR rate for 2026-03-05: the first EUR rate in rates.csv is of 2026-03-06"):
        _valuation({D(2026, 3, 6): 1.10}).to_date()


@pytest.mark.parametrize(("rows", "message"), [
    ([("2026-03-05", "EUR", "-1.08")], r"row 1: rate '-1.08' must be a positive number \(USD per 1 unit"),
    ([("2026-03-05", "EUR", "abc")], r"row 1: rate 'abc' must be a positive number"),
    ([("05/03/2026", "EUR", "1.08")], r"row 1: date '05/03/2026' is not a date"),
    ([("2026-03-05", "eur", "1.08")], r"row 1: currency 'eur' is not a 3-letter code"),
    ([("2026-03-05", "USD", "0.92")], r"row 1: the rate of USD itself is 0.92, not 1: rates must be USD per 1 unit"),
    ([("2026-03-05", "EUR", "1.08"), ("2026-03-05", "EUR", "1.09")], r"EUR has different rates on 2026-03-05"),
])
def test_rates_that_would_not_mean_what_they_say_are_refused(rows: list[tuple[str, str, str]], message: str) -> None:
    frame = pd.DataFrame(rows, columns=["date", "currency", "rate"])
    with pytest.raises(ValidationError, match=message):
        check_rates(frame, "USD", "rates.csv")


def test_an_unknown_currency_code_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match=r"model 'eur-model'.currency: 'EUX' is not an ISO 4217 currency code"):
        _spec("EUX")
    assert _spec("JPY").currency == "JPY"
    assert "currency" not in _spec(None).to_dict()  # omitted: the reporting currency, manifests unchanged


def test_the_form_carries_the_currency_and_leaves_a_blank_one_out() -> None:
    from valuetrack.ui import views

    spec = _spec("EUR")
    data, problems = views.form_to_data(views.spec_to_form(spec))
    assert not problems and ModelSpec.from_dict(data) == spec and data["currency"] == "EUR"
    data, _ = views.form_to_data({**views.spec_to_form(_spec(None)), "currency": "  "})
    assert "currency" not in data and ModelSpec.from_dict(data).currency is None


@pytest.mark.parametrize(("fx", "message"), [
    ('csv = "r.csv"', r"\[fx\].quote is missing: state the currency the rates are in, quote = \"USD\""),
    ('quote = "EUR"\ncsv = "r.csv"', r"\[fx\].quote is 'EUR' but the reporting currency \(\[store\].currency\) is 'USD'.*1 / rate"),
    ('quote = "USD"', r"give either csv = .* or connection and table"),
    ('quote = "USD"\ncsv = "r.csv"\ntable = "fx"\nconnection = "demo"', r"not both"),
    ('quote = "USD"\ntable = "fx"\nconnection = "nowhere"', r"\[fx\].connection: unknown connection 'nowhere'"),
    ('quote = "USD"\ntable = "fx; drop table x"\nconnection = "demo"', r"\[fx\].table:"),
    ('quote = "USD"\ncsv = "r.csv"\nrates = "x"', r"\[fx\]: unknown key 'rates'"),
])
def test_an_fx_section_that_could_be_read_the_wrong_way_is_refused(tmp_path, fx: str, message: str) -> None:
    from valuetrack.config import load_settings
    from valuetrack.errors import ConfigError

    path = tmp_path / "valuetrack.toml"
    path.write_text(f'[store]\ncurrency = "USD"\n[connections.demo]\nurl = "duckdb:///d.duckdb"\n[fx]\n{fx}\n')
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_a_csv_with_a_missing_column_or_no_file_says_which(tmp_path) -> None:
    from valuetrack.config import load_settings
    from valuetrack.errors import ConfigError
    from valuetrack.fx import load_rates

    path = tmp_path / "valuetrack.toml"
    path.write_text('[store]\ncurrency = "USD"\n[fx]\nquote = "USD"\ncsv = "rates.csv"\nrate = "usd_per_unit"\n')
    settings = load_settings(path)
    with pytest.raises(ConfigError, match=r"\[fx\].csv: '.*rates.csv' does not exist"):
        load_rates(settings)
    (tmp_path / "rates.csv").write_text("date,currency,rate\n2026-03-05,EUR,1.08\n")
    with pytest.raises(ConfigError, match=r"rates.csv has no column 'usd_per_unit' \(columns: date, currency, rate\)"):
        load_rates(settings)
    (tmp_path / "rates.csv").write_text("date,currency,usd_per_unit\n2026-03-05,EUR,1.08\n")
    assert load_rates(settings).daily("EUR", D(2026, 3, 5), D(2026, 3, 9)).tolist() == [1.08] * 5


def test_the_cumulative_chart_ends_at_the_period_figure_in_the_reporting_currency() -> None:
    frame = _valuation(RATES).timeline()
    # cohort by cohort: 216.00, 656.00, 766.00, 876.00, 1,100.00, 1,318.00 USD
    assert [round(x, 2) for x in frame["cum_gross"]] == [216.00, 656.00, 766.00, 876.00, 1100.00, 1318.00]
