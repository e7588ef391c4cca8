"""valuetrack/ui/views.py and charts.py are plain functions: tested without Streamlit."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go

from valuetrack.registry.spec import ModelSpec
from valuetrack.ui import charts, views
from tests.conftest import VALID_MANIFEST

import tomllib

FIELDS = ["name", "display_name", "kpi.value_per_unit", "attribution.window_days", "attribution.exposures.table",
          "attribution", "attribution.exposures", "interventions", "connection"]


def test_problems_map_to_their_fields() -> None:
    problems = [
        "model 'x'.kpi.value_per_unit: must be >= 0 (got -1.0); use higher_is_better = false",
        "model 'Bad Name!'.name: 'Bad Name!' must be 3-64 characters",
        "model.display_name: must not be empty",
        "model 'x'.attribution.exposures.table: 'a b' is not a valid identifier",
        "model 'x'.attribution.exposures.segment: bad",
        "model 'x'.attribution: method 'ab' needs [model 'x'.attribution.exposures]",
        "model 'x'.interventions[0].end: 2025-01-01 is before start 2025-02-01",
        "something without a field",
    ]
    got = views.problems_by_field(problems, FIELDS)
    assert got["kpi.value_per_unit"] == ["must be >= 0 (got -1.0); use higher_is_better = false"]
    assert got["name"] == ["'Bad Name!' must be 3-64 characters"]
    assert got["display_name"] == ["must not be empty"]
    assert got["attribution.exposures.table"] == ["'a b' is not a valid identifier"]
    assert got["attribution.exposures"] == ["bad"]                    # nearest enclosing section
    assert got["attribution"][0].startswith("method 'ab' needs")
    assert got["interventions"] == ["2025-01-01 is before start 2025-02-01"]
    assert got[""] == ["something without a field"]


def test_form_round_trips_a_spec() -> None:
    for raw in tomllib.loads(VALID_MANIFEST)["models"]:
        spec = ModelSpec.from_dict(raw)
        data, problems = views.form_to_data(views.spec_to_form(spec))
        assert not problems
        assert ModelSpec.from_dict(data) == spec


def test_form_reports_a_bad_relaunch_line() -> None:
    data, problems = views.form_to_data({"name": "m-1", "launch": dt.date(2025, 1, 1), "relaunches": "June 1 v2"})
    assert problems and problems[0].startswith("model.interventions: line 1")
    assert data["interventions"] == [{"start": dt.date(2025, 1, 1), "label": ""}]


def test_months_and_labels() -> None:
    as_of = dt.date(2026, 6, 1)
    assert views.current_month(as_of) == "2026-05"
    assert views.month_label("2026-05") == "May 2026"
    assert views.cents(1234.5678) == 1234.57 and views.cents(float("nan")) is None


def test_evidence_line_formats_money_and_p() -> None:
    line = views.evidence_line({"gross": 1200.0, "cost": 4000.0, "net_ci": [-9000.0, -1000.0], "srm_p_value": None},
                               0.003, "USD")
    assert line == "gross $1,200 · cost $4,000 · net 95% interval -$9,000 to -$1,000 · one-sided p = 0.003"


def test_evidence_line_shows_each_guardrail_and_a_p_floor() -> None:
    """A guardrail breach's guardrails show their own numbers (they read 'guardrails no interval yet'),
    and a p-value below the floor reads 'p < 0.0001', not 'p = < 0.0001'."""
    rows = [{"name": "refunds", "unit": "rate", "harm_per_unit": 0.0075, "interval": [0.00586, 0.00916],
             "tolerance": 0.005, "log_e_value": 48.7, "breached": True}]
    line = views.evidence_line({"log_e_value": 48.7, "guardrails": rows}, 1e-9, "USD")
    assert "no interval" not in line and "refunds harm" in line and "tolerance" in line
    assert "0.586 points to 0.916 points" in line
    assert line.endswith("one-sided p < 0.0001")
    assert views.evidence_line({"srm_p_value": 1e-12}, None, "USD") == "SRM p < 0.0001"


def test_sign_colours_mean_confidently_positive_negative_or_not() -> None:
    assert charts.sign_colour(1.0, 5.0) == charts.GREEN
    assert charts.sign_colour(-5.0, -1.0) == charts.RED
    assert charts.sign_colour(-1.0, 5.0) == charts.GREY


def test_value_by_model_sorts_and_colours_by_sign() -> None:
    frame = pd.DataFrame({"name": ["a", "b"], "net": [10.0, -5.0], "net_lo": [2.0, -9.0], "net_hi": [20.0, -1.0]})
    bars = charts.value_by_model(frame, "USD")
    assert isinstance(bars, go.Figure)
    assert list(bars.data[0].marker.color) == [charts.RED, charts.GREEN]   # sorted ascending: b then a


def test_a_long_name_is_cut_on_the_axis_and_whole_on_hover() -> None:
    """One 300-character display name must not squeeze every bar to nothing: the axis shows at most
    LABEL_MAX characters (two names alike there stay two bars), the hover the whole name."""
    long = "Churn " + "x" * 300
    frame = pd.DataFrame({"name": [long, long + "y", "b"], "net": [10.0, 12.0, -5.0], "net_lo": [2.0, 3.0, -9.0],
                          "net_hi": [20.0, 21.0, -1.0]})
    bar = charts.value_by_model(frame, "USD").data[0]
    assert max(len(y) for y in bar.y) <= charts.LABEL_MAX + 1 and len(set(bar.y)) == 3
    assert {c[3] for c in bar.customdata} == {long, long + "y", "b"} and "customdata[3]" in bar.hovertemplate


def test_form_messages_in_plain_words() -> None:
    p = views.plain_problem
    assert p("model.monthly_cost: must be >= 0 (got -500.0)") == "Must be 0 or more (you entered -500)."
    assert (p("model.attribution: method 'ab' needs [model.attribution.exposures] and [model.attribution.outcomes]")
            == "The method “A/B holdout” needs the Exposures fields and the Outcomes fields.")
    assert p("model.kpi.name: must not be empty") == "Required."
    assert p("model 'x'.attribution.treatment_share: must be < 1 (got 1.5)") == "Must be less than 1 (you entered 1.5)."
    assert p("model.attribution.window_days: must be between 1 and 730 (got 0)") == "Must be between 1 and 730 (you entered 0)."


def test_tables_show_no_raw_python_values() -> None:
    html = views.table_html(["a", "b", "c", "d"], [[None, False, {"holdout_days": 102, "mape": 0.0137}, "<b>x</b>"]])
    for raw in (">None<", ">False<", "{", "<b>"):
        assert raw not in html
    assert "holdout days 102, MAPE 0.0137" in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_diagnostics_panel_shows_the_placebo_calibration() -> None:
    widened = {"method": "structural", "diagnostics": {"placebo": {
        "status": "widened", "factor": 1.37, "widened_by": 1.37, "windows": 5, "window_days": 56}}}
    rows = dict(views.diagnostics_rows(widened))
    assert rows["Placebo calibration"] == "factor 1.37 over 5 windows of 56 days (interval widened ×1.37)"
    unchecked = {"diagnostics": {"placebo": {"status": "unchecked", "factor": None, "widened_by": 1.0,
                                             "note": "the post-period (90 days) is longer than the pre-period (60)"}}}
    assert dict(views.diagnostics_rows(unchecked))["Placebo calibration"].startswith("unchecked: the post-period")
    assert "Placebo calibration" not in dict(views.diagnostics_rows({"method": "ab", "diagnostics": {}}))


def test_sparkline_bars_share_one_scale() -> None:
    html = views.sparkline_html([100.0, -50.0, None], -50.0, 100.0, width=30, height=30)
    assert html.count("background:#0969da") == 2 and html.count("background:#cf222e") == 1  # None → a zero bar
    assert "top:0.0px;height:20.0px" in html       # 100 of a 150 range: two thirds of 30 px, from the top
    assert "top:20.0px;height:10.0px" in html      # -50 below the axis at 20 px
    assert "<svg" not in html                      # st.html's sanitiser drops inline SVG
    assert views.sparkline_html([], 0.0, 1.0) == "—"


def test_the_reconciliation_steps_carry_full_precision() -> None:
    from valuetrack.ui import charts, views

    totals = {"reconciliation": {"rows": 271110.5374, "overlap": -195108.123, "no_estimate_cost": -1234.5,
                                 "total": 74767.9144, "models_without_estimate": ["new"]}}
    steps = views.reconciliation(totals, "USD")
    assert [s["amount"] for s in steps] == [271110.5374, -195108.123, -1234.5, 74767.9144]
    assert steps[2]["label"] == "Cost of 1 model without an estimate"
    html = views.reconciliation_html(steps, "USD")
    assert "title='271110.5374 USD'" in html and "title='-195108.123 USD'" in html
    assert views.money(-195108.123, "USD", cents=True) in html and "$271,110.54" in html  # to the cent
    fig = charts.reconciliation(steps, "USD")
    assert list(fig.data[0].y) == [s["amount"] for s in steps] and list(fig.data[0].measure) == [
        "absolute", "relative", "relative", "total"]
    assert views.reconciliation({"reconciliation": None}, "USD") is None  # a valuation stored before it existed


def test_the_threshold_labels_never_face_each_other() -> None:
    """The Decisions chart's "in use" and "worth most" labels: each on the outer side of its line
    (two close thresholds' labels once overlapped), one label when the two read alike."""
    curve = [{"threshold": t / 10, "value": 10.0 * t, "se": 1.0} for t in range(11)]

    def labels(current: float | None, best: float | None) -> list[tuple]:
        fig = charts.threshold_curve(curve, "USD", current=current, best=best)
        return sorted((a.text, a.x, a.xanchor) for a in fig.layout.annotations)

    # the left line's text ends at it (anchored on its right), the right line's starts at it
    assert labels(0.6, 0.55) == [("in use", 0.6, "left"), ("worth most", 0.55, "right")]
    assert labels(0.55, 0.6) == [("in use", 0.55, "right"), ("worth most", 0.6, "left")]
    assert labels(0.5, 0.502) == [("in use, worth most", 0.5, "left")]
    assert labels(0.5, None) == [("in use", 0.5, "left")]
    assert labels(None, 0.3) == [("worth most", 0.3, "left")]


def test_money_axes_read_as_the_tiles_and_the_reports_do() -> None:
    """Plotly's own money ticks read "$−400k" and "$2G" where the tiles, the model page's SVG and
    the PDF read "-$400K" and "$2B": every money axis is labelled by svgcharts.money_ticks, on
    round ticks that cover every bar, whisker and band."""
    from valuetrack import svgcharts

    f = pd.DataFrame({"name": ["a", "b", "c"], "net": [-400_000.0, 1.2e9, 3_000.0],
                      "net_lo": [-900_000.0, 2e8, -100.0], "net_hi": [100_000.0, 2.2e9, 6_000.0]})
    x = charts.value_by_model(f, "USD").layout.xaxis
    label = svgcharts.money_ticks("USD")
    assert list(x.ticktext) == [label(t) for t in x.tickvals]
    assert x.ticktext[0].startswith("-$") and "$2B" in x.ticktext and "$0" in x.ticktext
    assert x.range[0] <= -900_000 and x.range[1] >= 2.2e9

    steps = [{"label": s, "amount": a, "measure": m, "text": "", "exact_text": ""} for s, a, m in
             (("rows", 5_000.0, "absolute"), ("overlap", -7_200.0, "relative"), ("total", -2_200.0, "total"))]
    y = charts.reconciliation(steps, "EUR").layout.yaxis
    assert list(y.ticktext) == [svgcharts.money_ticks("EUR")(t) for t in y.tickvals]
    assert y.range[0] <= -2_200 and y.range[1] >= 5_000 and "-€2K" in y.ticktext

    curve = [{"threshold": t / 10, "value": 100.0 * t - 300, "se": 20.0} for t in range(11)]
    y = charts.threshold_curve(curve, "USD").layout.yaxis
    assert y.range[0] <= -340 and y.range[1] >= 740
    assert "-$250" in y.ticktext and "$0" in y.ticktext  # whole amounts without cents, as the PDF's axes
