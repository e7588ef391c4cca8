"""One registry of attribution methods: every place that lists methods reads it (a test fails on
drift), and a new method takes one module: a throw-away method defined in this file is accepted by
the manifest, offered by the form and valued end to end by refresh and value."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.pages.conftest import _no_legacy_pages_mode, app, assert_clean  # noqa: F401 (autouse fixture)
from valuetrack.attribution import methods
from valuetrack.attribution.methods import Effect, Method
from valuetrack.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2026, 3, 1)
LAUNCH = AS_OF - dt.timedelta(days=40)
EFFECT = 6.0


def _choices(*path: str) -> list[str]:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[name]
    return list(next(a for a in parser._actions if a.dest == "method").choices)


def test_every_listing_reads_the_registry() -> None:
    names = list(methods.names())
    assert names == ["ab", "structural", "its", "did", "synthetic_control", "auto"]
    # the JSON schema file lists the built-ins; validation uses the live registry
    common = json.loads((ROOT / "valuetrack" / "schemas" / "_common.json").read_text())
    assert common["$defs"]["method"]["enum"] == names
    # the docs table (docs/user-guide.md, "Attribution methods")
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    table = guide.split("### Attribution methods", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", table, re.M)
    assert [(r[0], r[1].strip()) for r in rows] == [(m.name, m.label) for m in methods.all_methods()]
    # the CLI's `attribute` subcommands offer the methods that read their data shape
    assert _choices("attribute", "ts") == [m.name for m in methods.all_methods() if m.sections == ("series",)]
    assert _choices("attribute", "did") == [m.name for m in methods.all_methods() if m.sections == ("panel",)] + ["synth"]
    # the manifest reference documents every method name
    assert all(f"'{n}'" in guide.split("| `attribution.method` |", 1)[1].split("\n", 1)[0] for n in names)
    # no module keeps its own list (or label table) of method names; the statistics modules name the
    # fits they implement themselves
    listing = re.compile(r"""["'](?:ab|structural|its|did|synthetic_control)["']\s*[,:][^\n]{0,60}?"""
                         r"""["'](?:structural|its|did|synthetic_control|auto)["']""")
    own = {"valuetrack/attribution/timeseries.py", "valuetrack/attribution/ts_frame.py", "valuetrack/attribution/choose.py"}
    offenders = [str(p.relative_to(ROOT)) for p in [*ROOT.joinpath("valuetrack").rglob("*.py"), *ROOT.joinpath("pages").glob("*.py")]
                 if listing.search(p.read_text()) and str(p.relative_to(ROOT)) not in own]
    assert offenders == []


def test_unknown_method_is_refused_with_the_known_ones() -> None:
    from valuetrack.errors import ValidationError
    from valuetrack.registry.spec import ModelSpec

    with pytest.raises(ValidationError) as err:
        ModelSpec.from_dict({"name": "m-1", "display_name": "M", "owner": "o", "team": "t",
                             "kpi": {"name": "k", "unit": "USD", "value_per_unit": 1.0},
                             "attribution": {"method": "magic"}})
    assert "'magic' is not one of ab, structural, its, did, synthetic_control, auto" in err.value.message


# ------------------------------------------------------------------------------------------------
# a throw-away method: the post-launch mean minus the pre-launch mean of the series, day by day


class _Gap:
    def __init__(self, dates: pd.DatetimeIndex, gaps: np.ndarray, sd: float) -> None:
        self.dates, self.gaps, self.sd = dates, gaps, sd

    def gap_between(self, start: Any, end: Any) -> tuple[float, float, tuple[float, float]]:
        sel = np.asarray((self.dates >= pd.Timestamp(start)) & (self.dates <= pd.Timestamp(end)))
        est, se = float(self.gaps[sel].sum()), self.sd * float(np.sqrt(sel.sum()))
        return est, se, (est - 1.96 * se, est + 1.96 * se)

    def to_frame(self) -> pd.DataFrame:
        cum = np.cumsum(self.gaps)
        return pd.DataFrame({"date": self.dates, "actual": self.gaps, "counterfactual": 0.0, "lower": -self.sd,
                             "upper": self.sd, "effect": self.gaps, "effect_lower": self.gaps - self.sd,
                             "effect_upper": self.gaps + self.sd, "cum_effect": cum, "cum_lower": cum, "cum_upper": cum})


class MeanShift(Method):
    name = "mean_shift"
    label = "Mean shift (test)"
    sections = ("series",)
    needs_interventions = True
    description = "post-launch days against the pre-launch mean"

    def estimate(self, spec: Any, data: Any, as_of: dt.date, *, alpha: float = 0.05) -> Effect:
        s = data.series.sort_values("day")
        pre = s[s["day"] < spec.interventions[0].start]["value"].to_numpy(float)
        post = s[s["day"] >= spec.interventions[0].start]
        gaps = post["value"].to_numpy(float) - pre.mean()
        gap = _Gap(pd.DatetimeIndex(pd.to_datetime(post["day"])), gaps, float(pre.std(ddof=1)))
        return Effect(self.name, float(gaps.mean()), None, None, None, None, True, None, None, gap,
                      {"pre_mean": float(pre.mean())})


MANIFEST = f"""
[[models]]
name = "mean-shift-model"
display_name = "Mean shift model"
owner = "o@example.com"
team = "t"
connection = "demo"
monthly_cost = 100.0

[[models.interventions]]
start = {LAUNCH.isoformat()}

[models.kpi]
name = "orders"
unit = "count"
value_per_unit = 2.0

[models.attribution]
method = "mean_shift"

[models.attribution.series]
table = "daily"
date = "day"
value = "orders"
"""


@pytest.fixture
def mean_shift() -> Any:
    methods.register(MeanShift())
    yield
    methods.unregister("mean_shift")


def test_a_method_from_one_module_is_valued_end_to_end(workspace: Path, cli: Any, mean_shift: Any) -> None:
    import duckdb

    rng = np.random.default_rng(4)
    days = pd.date_range(AS_OF - dt.timedelta(days=120), AS_OF - dt.timedelta(days=1), freq="D")
    orders = 100 + rng.normal(0, 2, len(days)) + EFFECT * (days >= pd.Timestamp(LAUNCH))
    con = duckdb.connect(str(workspace / "sample_data" / "demo.duckdb"))
    con.register("f", pd.DataFrame({"day": days.date, "orders": orders}))
    con.execute("CREATE TABLE daily AS SELECT * FROM f")
    con.close()
    (workspace / "m.toml").write_text(MANIFEST)

    assert cli("models", "register", "--file", "m.toml").code == 0  # the manifest accepts it
    assert cli("refresh", "--as-of", str(AS_OF)).code == 0
    doc = cli("value", "--as-of", str(AS_OF), "--json", schema="value").json
    m = doc["models"][0]
    assert (m["method"], m["state"]) == ("mean_shift", "ok")
    post_days = (AS_OF - LAUNCH).days
    truth = EFFECT * post_days * 2.0 - m["cost"]
    assert m["ci_net"][0] <= truth <= m["ci_net"][1] and abs(m["net"] - truth) < 0.25 * EFFECT * post_days * 2.0


def test_the_form_offers_a_registered_method(workspace: Path, mean_shift: Any) -> None:
    at = app("pages/register.py").run()
    assert_clean(at)
    box = at.selectbox(key="f:attribution.method")
    assert "mean_shift" in box.options or "Mean shift (test)" in box.options
    box.set_value("mean_shift").run()
    assert_clean(at)
    assert at.text_input(key="f:attribution.series.table") is not None  # its sections are shown


def test_the_demo_panel_example_is_valued_by_did(demo_builder: Any, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worked example of docs/user-guide.md: dynamic pricing as a panel model (did), valued, and
    refused trust by its own parallel-trends check."""
    as_of = "2026-06-15"
    root = demo_builder(0.1, as_of)
    monkeypatch.chdir(root)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    assert cli("models", "register", "--file", "sample_data/demo_panel_example.toml").code == 0
    assert cli("refresh", "--model", "dynamic-pricing-panel", "--as-of", as_of).code == 0
    doc = cli("value", "--as-of", as_of, "--json", schema="value").json
    rows = {m["model"]: m for m in doc["models"]}
    panel, ts = rows["dynamic-pricing-panel"], rows["dynamic-pricing"]
    assert (panel["method"], panel["state"]) == ("did", "ok") and panel["ci_net"] is not None
    # the demo's regions grow by the same share a year from different levels, so their trends differ in
    # orders per day: DiD in levels checks parallel trends, finds them broken, and says so (the
    # structural model of the same launch is the one to read); the flags say it too
    assert panel["trusted"] is False and "parallel trends is doubtful" in panel["reason"]
    assert ts["trusted"] is True
    flags = cli("flags", "--as-of", as_of, "--json", schema="flags").json["flags"]
    assert [f["type"] for f in flags if f["model"] == "dynamic-pricing-panel"] == ["untrustworthy"]
    monkeypatch.setenv("VALUETRACK_AS_OF", as_of)  # the model page draws the panel's daily gap
    at = app("pages/model.py", model="dynamic-pricing-panel").run()
    assert_clean(at)
    assert any("Dynamic pricing (region A, panel)" in t.value for t in at.title)
