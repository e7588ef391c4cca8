"""valuetrack.formatting: the rules a reader relies on (cents for small amounts, compact only on
request, one precision per column, p-values floored at 1e-4, no raw Python values)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from valuetrack import formatting as f


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(f.LOCALE_ENV, raising=False)


@pytest.mark.parametrize("value, text", [
    (0.5, "$0.50"),              # a cost of 0.5 per 1,000 predictions is not "$0"
    (171.214, "$171.21"),
    (999.994, "$999.99"),
    (393621.0, "$393,621"),      # large: whole units, no ".00"
    (-1234.5, "-$1,235"),     # half away from zero, as people round
    (-0.001, "$0.00"),           # never "-$0.00"
    (None, "—"), (math.nan, "—"), (math.inf, "—"),
])
def test_money_cents_only_when_small(value, text) -> None:
    assert f.money(value, "USD") == text


def test_money_forced_precision_and_sign() -> None:
    assert f.money(393621.456, "USD", cents=True) == "$393,621.46"
    assert f.money(12.4, "USD", cents=False) == "$12"
    assert f.money(250.0, "USD", signed=True) == "+$250.00"
    assert f.money(-250.0, "USD", signed=True) == "-$250.00"


def test_money_follows_the_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f.LOCALE_ENV, "de_DE")
    assert f.money(1234567.0, "EUR") == "1.234.567\xa0€"
    assert f.money(0.5, "EUR") == "0,50\xa0€"
    monkeypatch.setenv(f.LOCALE_ENV, "xx_NOPE")  # an unknown locale falls back, never raises
    assert f.money(1234.0, "USD") == "$1,234"


def test_a_column_has_one_precision() -> None:
    big = f.money_column([393621.0, 12.5, None], "USD")
    assert big == ["$393,621", "$13", "—"]
    small = f.money_column([0.5, 120.0], "USD")
    assert small == ["$0.50", "$120.00"]
    decimals = {len(s.split(".")[1]) if "." in s else 0 for s in f.money_column([5.0, 50.5, 505.25], "USD")}
    assert decimals == {2}


def test_compact_only_when_asked() -> None:
    assert f.money_compact(171210.0, "USD") == "$171.2K"
    assert f.money_compact(-76543.2, "USD") == "-$76.5K"
    assert f.money_compact(2_500_000.0, "USD") == "$2.5M"
    assert f.money_compact(12.5, "USD") == "$12.50"
    assert "K" not in f.money(171210.0, "USD") and "M" not in f.money(2_500_000.0, "USD")


def test_interval_shares_one_precision() -> None:
    assert f.interval([-2400.0, 8200.4], "USD") == "-$2,400 to $8,200"
    assert f.interval([0.5, 12.0], "USD") == "$0.50 to $12.00"
    assert f.interval([-120.0, 5400.0], "USD") == "-$120 to $5,400"
    assert f.interval([-922.31, 4000.0], "USD", compact=True) == "-$922 to $4K"  # no cents beside a compact end
    assert f.interval([-92.31, 400.0], "USD", compact=True) == "-$92.31 to $400.00"
    # a narrow interval the compact form cannot tell apart is given whole ('$3.9M to $3.9M' says nothing)
    assert f.interval([3_877_120.0, 3_915_480.0], "USD", compact=True) == "$3,877,120 to $3,915,480"
    assert f.interval(None, "USD") == "no interval yet"
    assert f.interval([1.0, None], "USD") == "no interval yet"


@pytest.mark.parametrize("value, digits, text", [
    (2.771, 0, "277%"), (4.8354, 0, "484%"), (-0.604, 0, "-60%"),
    (2.771, 1, "277.1%"), (4.8354, 1, "483.5%"), (-0.604, 1, "-60.4%"),
    (0.05, 0, "5%"), (None, 0, "—"),
])
def test_percentages_at_the_callers_precision(value, digits, text) -> None:
    assert f.pct(value, digits) == text


def test_p_values() -> None:
    assert f.p_value(1e-300) == "< 0.0001"
    assert f.p_value(0.0) == "< 0.0001"
    assert f.p_value(0.00009999) == "< 0.0001"
    assert f.p_value(0.0001) == "0.0001"
    assert f.p_value(0.0421) == "0.042"
    assert f.p_value(0.5) == "0.5"
    assert f.p_value(None) == "—"
    assert "e" not in f.p_value(3e-7).lower()


@pytest.mark.parametrize("value, text", [
    (None, "—"), (False, "no"), (True, "yes"), (math.nan, "—"),
    (102, "102"), (12345, "12,345"), (0.013712, "0.0137"), (np.float64(0.5), "0.500"),
    ({"holdout_days": 102, "mape": 0.013712}, "holdout days 102, MAPE 0.0137"),
    ([1, 2], "1, 2"), ("text", "text"),
])
def test_plain_never_shows_a_raw_python_value(value, text) -> None:
    out = f.plain(value)
    assert out == text
    for raw in ("None", "True", "False", "nan", "{", "}"):
        assert raw not in out


def test_number() -> None:
    assert f.number(12345.6) == "12,346"
    assert f.number(0.25, 2) == "0.25"
    assert f.number(None) == "—"
    assert f.number(-500.0, None) == "-500" and f.number(1.5, None) == "1.5"
