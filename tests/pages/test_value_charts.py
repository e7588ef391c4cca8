"""The model page's Value section draws SVG (valuetrack.svgcharts, D51), inline in the page: registry
text in it is escaped, it is one line (Markdown would end an HTML block at a blank line), points and
bars stand where their figures say, and each chart's ids are its own."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pandas as pd

from valuetrack import svgcharts
from valuetrack.formatting import money

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(1)> &amp; \n\n# heading'
DAYS = list(pd.date_range("2026-01-01", periods=120).date)


def _ab() -> pd.DataFrame:
    n = len(DAYS)
    return pd.DataFrame({"day": DAYS, "effect": [1.0 + i / n for i in range(n)], "ci_lo": [0.5] * n, "ci_hi": [2.5] * n,
                         "cs_lo": [0.0] * n, "cs_hi": [3.0] * n, "provisional": [i > n - 10 for i in range(n)]})


def _marks() -> list:
    notes = [SimpleNamespace(date=dt.date(2026, 2, 10), label=f"#7 {HOSTILE}"[:60])]
    return svgcharts.page_marks(notes, [(dt.date(2026, 3, 1), dt.date(2026, 3, 5), f"excluded: {HOSTILE}"[:60])])


def _parse(markup: str) -> ET.Element:
    assert "\n" not in markup and markup.startswith("<svg ")
    return ET.fromstring(markup)


def test_typed_text_stays_text_in_every_value_chart() -> None:
    """A script, an attribute break-out, an entity and line breaks in an annotation, an exclusion's
    reason and a KPI name are shown as typed (control characters as spaces) and make no element."""
    cum = pd.DataFrame({"day": DAYS[::30], "net": [1.0, 2.0, 3.0, 4.0], "net_lo": [0.0] * 4, "net_hi": [5.0] * 4})
    months = [{"month": f"2026-0{i}", "start": dt.date(2026, i, 1), "net": 100.0 * i, "net_lo": 50.0, "net_hi": 500.0,
               "cost": 10.0, "provisional": False} for i in range(1, 5)]
    charts = [svgcharts.page_timeline(_ab(), kind="ab", title=f"{HOSTILE} per unit", marks=_marks()),
              svgcharts.page_cumulative(cum, "USD", payback=None, one_off=0.0, marks=_marks()),
              svgcharts.page_monthly(months, "USD", marks=_marks())]
    typed = re.sub(r"\n+", " ", HOSTILE)
    for markup in charts:
        root = _parse(markup)
        tags = {e.tag.removeprefix(SVG) for e in root.iter()}
        assert not tags & {"script", "img", "foreignObject", "a"}, tags
        assert not [a for e in root.iter() for a in e.attrib if a.startswith("on")]
        hover = [t.text for t in root.iter(f"{SVG}title")]
        assert f"#7 {typed}"[:60] in hover and f"excluded: {typed}"[:60] in hover
    assert _parse(charts[0]).get("aria-label") == f"{typed} per unit"
    assert f"{typed} per unit" in [t.text for t in _parse(charts[0]).iter(f"{SVG}text")]


def test_the_payback_marker_stands_on_its_month_end_among_the_points() -> None:
    ends = [dt.date(2026, m + 1, 1) - dt.timedelta(days=1) for m in range(1, 7)]
    cum = pd.DataFrame({"day": ends, "net": [-300.0, -100.0, 100.0, 300.0, 500.0, 700.0],
                        "net_lo": [-500.0, -300.0, -100.0, 100.0, 300.0, 500.0],
                        "net_hi": [-100.0, 100.0, 300.0, 500.0, 700.0, 900.0], "one_off": [200.0] * 6})
    root = _parse(svgcharts.page_cumulative(cum, "USD", payback=ends[3], one_off=200.0, marks=[]))
    (marker,) = [g for g in root.iter(f"{SVG}g") if g.get("data-payback")]
    assert marker.get("data-payback") == "2026-04-30"
    assert marker.find(f"{SVG}title").text == "Paid back at the month-end of Apr 2026"
    x = float(re.match(r"M([-\d.]+),", marker.find(f"{SVG}path").get("d")).group(1))
    points = list(root.iter(f"{SVG}circle"))
    assert len(points) == 6 and abs(float(points[3].get("cx")) - x) < 0.01  # on the point of that month-end
    assert points[3].find(f"{SVG}title").text == f"30 Apr 2026: cumulative net value {money(300.0, 'USD')} " \
                                                 f"(95% interval {money(100.0, 'USD')} to {money(500.0, 'USD')})"
    heights = [float(p.get("cy")) for p in points]  # higher value, higher on the page
    assert heights == sorted(heights, reverse=True)
    legend = [t.text for t in root.iter(f"{SVG}text")]
    assert "one-off costs incurred (paid back when crossed)" in legend


def test_monthly_bars_grow_from_zero_in_proportion_and_colour_by_their_interval() -> None:
    nets, lo, hi = [1000.0, 3000.0, -500.0, 2000.0], [500.0, -100.0, -900.0, 1500.0], [1500.0, 6000.0, -100.0, 2500.0]
    months = [{"month": f"2026-0{i + 1}", "start": dt.date(2026, i + 1, 1), "net": n, "net_lo": a, "net_hi": b,
               "cost": 40.0, "provisional": i == 3} for i, (n, a, b) in enumerate(zip(nets, lo, hi))]
    root = _parse(svgcharts.page_monthly(months, "USD", marks=[]))
    bars = [(p.get("fill"), p.get("opacity"), tuple(map(float, m)))
            for p in root.iter(f"{SVG}path") if p.get("fill") in (svgcharts.GOOD, svgcharts.BAD, svgcharts.NEUTRAL)
            for m in re.findall(r"M([-\d.]+),([-\d.]+)h([-\d.]+)v([-\d.]+)h", p.get("d"))]
    assert len(bars) == 4
    by_x = sorted(bars, key=lambda b: b[2][0])
    assert [b[0] for b in by_x] == [svgcharts.GOOD, svgcharts.NEUTRAL, svgcharts.BAD, svgcharts.GOOD]
    assert [b[1] for b in by_x] == ["0.9", "0.9", "0.9", "0.45"]  # the provisional month lighter
    scale = abs(by_x[0][2][3]) / 1000.0
    for (_f, _o, (_x, _y, _w, h)), n in zip(by_x, nets):
        assert abs(abs(h) - abs(n) * scale) < 0.05
    hover = [t.text for t in root.iter(f"{SVG}title")]
    assert hover[0] == (f"Jan 2026: net value {money(1000.0, 'USD')} (95% interval {money(500.0, 'USD')} to "
                        f"{money(1500.0, 'USD')}); cost {money(40.0, 'USD')}")
    assert hover[3].endswith("; provisional (cohorts not yet mature)")


def test_the_uplift_chart_draws_both_bands_and_names_each_day_on_hover() -> None:
    root = _parse(svgcharts.page_timeline(_ab(), kind="ab", title="revenue per unit", marks=[]))
    fills = [p.get("fill") for p in root.iter(f"{SVG}polygon")]
    assert fills == [svgcharts.BAND_WIDE, svgcharts.BAND]  # the always-valid band under the interval
    hover = [t.text for t in root.iter(f"{SVG}title")]
    assert len(hover) == len(DAYS)  # 120 days: one column each (at most 150)
    assert hover[0] == ("01 Jan 2026: effect per unit 1.000; 95% interval 0.5000 to 2.500; "
                        "always-valid band 0 to 3.000")
    legend = [t.text for t in root.iter(f"{SVG}text")]
    assert {"always-valid 95% band", "fixed-horizon 95% interval", "effect per unit", "not yet mature"} <= set(legend)


def test_charts_on_one_page_do_not_share_ids() -> None:
    ts = pd.DataFrame({"day": DAYS, "actual": 10.0, "counterfactual": 9.0, "lower": 8.0, "upper": 10.5})
    cum = pd.DataFrame({"day": DAYS[::30], "net": [1.0, 2.0, 3.0, 4.0], "net_lo": [0.0] * 4, "net_hi": [5.0] * 4})
    months = [{"month": "2026-01", "start": dt.date(2026, 1, 1), "net": 1.0, "net_lo": None, "net_hi": None,
               "cost": 1.0, "provisional": True}]
    ids = [e.get("id") for markup in (svgcharts.page_timeline(ts, kind="ts", title="orders", marks=_marks()),
                                      svgcharts.page_cumulative(cum, "USD", payback=None, one_off=0.0, marks=_marks()),
                                      svgcharts.page_monthly(months, "USD", marks=_marks()))
           for e in _parse(markup).iter() if e.get("id")]
    assert ids and len(ids) == len(set(ids))
