"""The report's charts are SVG written by hand (D46): registry text in them is escaped, bars stand
where their figures say, and the same snapshot draws the same bytes."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

from valuetrack import svgcharts as charts

SVG = "{http://www.w3.org/2000/svg}"


def _svg(uri: str) -> ET.Element:
    head, data = uri.split(",", 1)
    assert head == "data:image/svg+xml;base64"
    return ET.fromstring(base64.b64decode(data))


def _rects(root: ET.Element, fill: str) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of every rectangle drawn in ``fill`` (rectangles of one fill share a path)."""
    out = []
    for path in root.iter(f"{SVG}path"):
        if path.get("fill") == fill:
            out += [tuple(map(float, m)) for m in re.findall(r"M([-\d.]+),([-\d.]+)h([-\d.]+)v([-\d.]+)h", path.get("d"))]
    return out


def _model(name: str, display: str, net: float, ci: list[float], flags: list | None = None) -> dict:
    return {"model": name, "display_name": display, "active_in_month": True, "net": net, "ci_net": ci,
            "flags": flags or []}


def test_registry_text_is_escaped_and_each_model_has_its_label() -> None:
    hostile = '<script>x</script> & "offers"'  # at most 32 characters: shown whole
    long = "Search suggestions (ramped rollout), EU and UK"  # cut, as on the portfolio page (not the model's id)
    rows = [_model("a", hostile, 120.0, [50.0, 190.0]), _model("b", "Search ranking", -40.0, [-90.0, 10.0]),
            _model("search-suggest", long, 10.0, [5.0, 15.0])]
    root = _svg(charts.portfolio_chart(rows, "USD"))  # parses: well-formed XML
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert hostile in labels and "Search ranking" in labels
    assert long[:31] + "…" in labels and "search-suggest" not in labels
    assert not list(root.iter(f"{SVG}script"))


def test_monthly_bars_are_proportional_to_the_net_values_and_the_report_month_stands_out() -> None:
    months = [{"month": f"2026-0{i}", "start": f"2026-0{i}-01", "net": net, "ci_net": [net - 100, net + 100],
               "provisional": i == 4} for i, net in zip(range(1, 5), (1000.0, 3000.0, -500.0, 2000.0))]
    root = _svg(charts.monthly_chart({"months": months}, "2026-04", "USD"))
    past, current = _rects(root, "#9fb3c8"), _rects(root, charts.ACCENT)
    assert len(past) == 3 and len(current) == 1
    heights = [h for _x, _y, _w, h in past + current]
    # bars grow from zero: the height of each is proportional to its net value (up or down)
    scale = heights[0] / 1000.0
    for h, net in zip(heights, (1000.0, 3000.0, -500.0, 2000.0)):
        assert abs(h - abs(net) * scale) < 0.05
    zero = [y + h for _x, y, _w, h in past[:2]] + [past[2][1]]  # the bottom of positive bars, the top of a negative one
    assert max(zero) - min(zero) < 0.05
    assert _rects(root, "url(#hatchffffff)")  # the provisional month is hatched


def test_the_same_figures_draw_the_same_bytes() -> None:
    tl = {"kind": "ab", "day": [f"2026-03-{d:02d}" for d in range(1, 29)], "effect": [0.1 * d for d in range(28)],
          "ci_lo": [None] + [0.1 * d - 1 for d in range(1, 28)], "ci_hi": [None] + [0.1 * d + 1 for d in range(1, 28)],
          "provisional": [d > 24 for d in range(28)]}
    model = {"timeline": tl, "kpi": "orders", "kpi_unit": "USD",
             "model_notes": [{"kind": "annotation", "id": 3, "start": "2026-03-10"},
                             {"kind": "exclusion", "id": 4, "start": "2026-03-15", "end": "2026-03-17"}]}
    first = charts.uplift_chart(model, "USD")
    assert first == charts.uplift_chart(model, "USD")
    texts = [t.text for t in _svg(first).iter(f"{SVG}text")]
    assert "3" in texts and "excluded" in texts and "not yet mature" in texts  # the note's number, the legend
