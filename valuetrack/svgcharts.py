"""Charts written as SVG: the report's (from a snapshot's stored series) and the model page's Value
section (from the ledger-read view the page shows; D51). One toolkit for both.

Each chart is a small SVG written here directly (bars, error bars, bands, lines, axes with round
ticks). The report embeds it as a ``data:`` URI, so the HTML is self-contained and the PDF needs no
fetching; WeasyPrint draws it as vectors. The model page puts it inline (:meth:`_Canvas.inline`:
scales to its column, values on hover through ``<title>``), so the browser draws it without
loading plotly's 4.7 MB bundle (issue 13). We first used plotly + kaleido 1.x (a headless chromium: about a
second per image, a browser wherever cron runs), then matplotlib (Agg, ≈ 0.05 s per PNG, over
40 % of the 50-model PDF's time); writing the SVG takes about a millisecond per chart (D46).
The output depends only on the snapshot: the same snapshot gives the same bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from typing import Any, Iterable, Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

GOOD, BAD, NEUTRAL, ACCENT, BAND = "#1b7f4b", "#b3261e", "#8a8f98", "#1f4e79", "#c9d6e8"
BAND_WIDE = "#e6edf6"  # the always-valid band, under the interval's
NOTE = "#9a6700"
AXIS, TEXT, GRID = "#555555", "#333333", "#e5e5e5"
FONT = "DejaVu Sans"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
CHAR_W = 0.58  # DejaVu Sans: mean advance of a character, in ems (to lay out legends)


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw * (1 - 1e-9):
            return m * mag
    return 10 * mag


def axis(values: Iterable[float], *, zero: bool = False, target: int = 5,
          limits: tuple[float, float] | None = None) -> tuple[float, float, list[float]]:
    """Round limits and ticks covering ``values`` (and 0 when ``zero``), or within fixed ``limits``."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if limits is not None:
        lo, hi = limits
    else:
        lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
        if zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1.0):
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, target)
    if limits is None:
        lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    first = math.ceil(lo / step - 1e-9)
    ticks = [k * step for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]
    return lo, hi, [0.0 if abs(t) < step * 1e-9 else t for t in ticks]


def _n(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


class _Canvas:
    """An SVG of ``width`` × ``height`` points with one plot area (margins in points). ``font``: the
    size of tick labels (titles one point larger, legends three quarters); ``uid`` prefixes the ids
    of clip paths and patterns, which must be unique in a page showing several charts inline."""

    def __init__(self, width: float, height: float, *, left: float, right: float, top: float, bottom: float,
                 font: float = 8, uid: str = "", fit: bool = False) -> None:
        self.w, self.h, self.font, self.uid, self.fit = width, height, font, uid, fit
        self.x0, self.x1, self.y0, self.y1 = left, width - right, height - bottom, top  # y0: the bottom
        self.parts: list[Any] = []  # SVG text, or [style, path data, ...] merged into one <path>
        self.defs: list[str] = []
        self.xlim = (0.0, 1.0)
        self.ylim = (0.0, 1.0)

    # scales
    def X(self, v: float) -> float:
        a, b = self.xlim
        return self.x0 + (v - a) / (b - a) * (self.x1 - self.x0)

    def Y(self, v: float) -> float:
        a, b = self.ylim
        return self.y0 - (v - a) / (b - a) * (self.y0 - self.y1)

    # primitives (coordinates in points)
    def add(self, s: str) -> None:
        self.parts.append(s)

    def _path(self, style: str, d: str) -> None:
        """One <path> for consecutive shapes of one style: WeasyPrint draws an SVG node by node, so
        fewer nodes draw faster."""
        last = self.parts[-1] if self.parts else None
        if isinstance(last, list) and last[0] == style:
            last.append(d)
        else:
            self.parts.append([style, d])

    def rect(self, x: float, y: float, w: float, h: float, fill: str, **attrs: Any) -> None:
        x, w = (x + w, -w) if w < 0 else (x, w)
        y, h = (y + h, -h) if h < 0 else (y, h)
        self._path(f'fill="{fill}"{_attrs(attrs)}', f"M{_n(x)},{_n(y)}h{_n(w)}v{_n(h)}h{_n(-w)}z")

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float, **attrs: Any) -> None:
        self._path(f'fill="none" stroke="{stroke}" stroke-width="{_n(width)}"{_attrs(attrs)}',
                   f"M{_n(x1)},{_n(y1)}L{_n(x2)},{_n(y2)}")

    def text(self, x: float, y: float, s: str, *, size: float | None = None, anchor: str = "start", fill: str = TEXT,
             bold: bool = False, tip: str | None = None) -> None:
        weight = ' font-weight="bold"' if bold else ""
        title = f"<title>{escape(tip)}</title>" if tip else ""
        self.add(f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size or self.font)}" text-anchor="{anchor}" fill="{fill}"'
                 f'{weight}>{title}{escape(s)}</text>')

    def tip(self, x: float, y: float, w: float, h: float, s: str) -> None:
        """An invisible rectangle showing ``s`` on hover (the browser's tooltip for ``<title>``)."""
        self.add(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 1))}" height="{_n(max(h, 1))}" fill="#ffffff" '
                 f'fill-opacity="0" pointer-events="all"><title>{escape(s)}</title></rect>')

    def hatch(self, color: str) -> str:
        """A diagonal hatch to lay over a bar (pattern id)."""
        pid = self.uid + "hatch" + color.strip("#")
        if not any(f'id="{pid}"' in d for d in self.defs):
            self.defs.append(f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="4" height="4">'
                             f'<path d="M-1,1 l2,-2 M0,4 l4,-4 M3,5 l2,-2" stroke="{color}" stroke-width="0.7"/></pattern>')
        return f"url(#{pid})"

    def clip(self) -> str:
        """Clip to the plot area (for series that leave the axis limits)."""
        if not any(f'id="{self.uid}area"' in d for d in self.defs):
            self.defs.append(f'<clipPath id="{self.uid}area"><rect x="{_n(self.x0)}" y="{_n(self.y1)}" '
                             f'width="{_n(self.x1 - self.x0)}" height="{_n(self.y0 - self.y1)}"/></clipPath>')
        return f"url(#{self.uid}area)"

    # plot furniture
    def title(self, s: str) -> None:
        self.text(self.x0, self.y1 - 6, s, size=self.font + 1, bold=True, fill="#000000")

    def yaxis(self, ticks: Sequence[float], label: Any, *, grid: bool = True) -> None:
        """The y axis; with ``fit``, the left margin widens to its longest label (call before drawing)."""
        if self.fit and ticks:
            self.x0 = max(self.x0, max(len(label(t)) for t in ticks) * self.font * CHAR_W + 9)
        for t in ticks if grid else ():
            self.line(self.x0, self.Y(t), self.x1, self.Y(t), GRID, 0.6)
        for t in ticks:
            self.line(self.x0 - 3, self.Y(t), self.x0, self.Y(t), AXIS, 0.8)
        for t in ticks:
            self.text(self.x0 - 5, self.Y(t) + 2.8, label(t), anchor="end")

    def xaxis(self, ticks: Sequence[tuple[float, str]], *, grid: bool = False, size: float | None = None) -> None:
        size = size or self.font
        for v, _s in ticks if grid else ():
            self.line(self.X(v), self.y0, self.X(v), self.y1, GRID, 0.6)
        for v, _s in ticks:
            self.line(self.X(v), self.y0, self.X(v), self.y0 + 3, AXIS, 0.8)
        for v, s in ticks:
            self.text(self.X(v), self.y0 + 4 + size, s, size=size, anchor="middle")

    def spines(self) -> None:
        self.line(self.x0, self.y0, self.x1, self.y0, AXIS, 0.8)
        self.line(self.x0, self.y0, self.x0, self.y1, AXIS, 0.8)

    def _body(self) -> str:
        defs = f"<defs>{''.join(self.defs)}</defs>" if self.defs else ""
        return defs + "".join(p if isinstance(p, str) else f'<path {p[0]} d="{"".join(p[1:])}"/>' for p in self.parts)

    def data_uri(self) -> str:
        """For the report: a fixed size in points, its own font, embedded as a ``data:`` URI."""
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(self.w)}pt" height="{_n(self.h)}pt" '
               f'viewBox="0 0 {_n(self.w)} {_n(self.h)}" font-family="{FONT}">{self._body()}</svg>')
        return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")

    def inline(self, label: str) -> str:
        """For a page: one line of SVG markup, as wide as its column (the height follows), in the
        page's font, on white in light and dark themes alike (as the plotly charts were). One line
        because the page passes it through Markdown, where a blank line would end the HTML block;
        registry text in it is escaped, and its control characters (line breaks) become spaces."""
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(self.w)} {_n(self.h)}" width="100%" '
               f'role="img" aria-label={quoteattr(_CONTROL.sub(" ", label))} data-testid="svg-chart" '
               f'style="display:block;height:auto;max-width:{_n(self.w * 1.4)}px;background:#ffffff;border-radius:4px">'
               f'{self._body()}</svg>')
        return _CONTROL.sub(" ", svg)


def _attrs(attrs: dict[str, Any]) -> str:
    return "".join(f" {k.replace('_', '-')}={quoteattr(str(v))}" for k, v in attrs.items() if v is not None)


def _plain(step: float) -> Any:
    digits = 0
    while digits < 8 and abs(step * 10 ** digits - round(step * 10 ** digits)) > 1e-6:
        digits += 1
    return lambda v: f"{v:,.{digits}f}".replace("-", "−")


def _color(net: float | None, lo: float | None, hi: float | None) -> str:
    if net is None:
        return NEUTRAL
    if lo is not None and lo > 0:
        return GOOD
    if hi is not None and hi < 0:
        return BAD
    return NEUTRAL


def _errorbar(c: _Canvas, a: tuple[float, float], b: tuple[float, float], cap: float, *, color: str,
              width: float) -> None:
    """An error bar from point a to point b (points), with caps of half-length ``cap``."""
    c.line(*a, *b, color, width)
    vertical = abs(a[0] - b[0]) < 1e-9
    for x, y in (a, b):
        if vertical:
            c.line(x - cap, y, x + cap, y, color, width)
        else:
            c.line(x, y - cap, x, y + cap, color, width)


def portfolio_chart(models: list[dict[str, Any]], currency: str) -> str | None:
    """Net value of the month per model, with its interval (green: above zero; red: below; grey: unclear;
    grey and hatched: flagged, whatever its sign)."""
    rows = [m for m in models if m.get("active_in_month") and m.get("net") is not None]
    if not rows:
        return None
    rows = list(reversed(rows))  # largest at the top
    height = min(0.2 * len(rows) + 0.9, 9.0) * 72
    c = _Canvas(504, height, left=0.3 * 504, right=0.03 * 504, top=21.6, bottom=36)
    nets = [m["net"] for m in rows]
    lo = [m["ci_net"][0] if m["ci_net"] else m["net"] for m in rows]
    hi = [m["ci_net"][1] if m["ci_net"] else m["net"] for m in rows]
    a, b, ticks = axis(lo + hi + nets, zero=True, target=6)
    c.xlim, c.ylim = (a, b), (-0.6, len(rows) - 0.4)
    c.xaxis([(t, money_ticks(currency)(t)) for t in ticks], grid=True)
    size = 7 if len(rows) > 20 else 8
    band = (c.Y(0) - c.Y(1)) * 0.6
    flagged = [bool(m.get("flags")) for m in rows]  # a flagged model's bar carries the flag: grey, faded, hatched (D42)
    bars = [(c.Y(i) - band / 2, c.X(0), c.X(n)) for i, n in enumerate(nets)]
    for (y, x0, x1), n, l, h, fl in sorted(zip(bars, nets, lo, hi, flagged), key=lambda r: (r[4], _color(*r[1:4]))):
        if not fl:  # grouped by colour: one path per colour
            c.rect(x0, y, x1 - x0, band, _color(n, l, h), opacity="0.85")
    for (y, x0, x1), fl in zip(bars, flagged):
        if fl:
            c.rect(x0, y, x1 - x0, band, NEUTRAL, opacity="0.4", stroke=AXIS, stroke_width="0.5")
    for (y, x0, x1), fl in zip(bars, flagged):
        if fl:
            c.rect(x0, y, x1 - x0, band, c.hatch(AXIS))
    for i, (l, h) in enumerate(zip(lo, hi)):
        _errorbar(c, (c.X(l), c.Y(i)), (c.X(h), c.Y(i)), 2, color="#222222", width=0.8)
    for i in range(len(rows)):
        c.line(c.x0 - 3, c.Y(i), c.x0, c.Y(i), AXIS, 0.8)
    for i, m in enumerate(rows):  # a long name is cut, as on the portfolio page's chart (32 characters fit here)
        label = m["display_name"] if len(m["display_name"]) <= 32 else m["display_name"][:31] + "…"
        c.text(c.x0 - 5, c.Y(i) + size * 0.35, label, size=size, anchor="end")
    c.line(c.X(0), c.y0, c.X(0), c.y1, "#222222", 0.8)
    c.spines()
    c.title("Net value this month, with 95% interval")
    return c.data_uri()


def monthly_chart(model: dict[str, Any], month: str, currency: str) -> str | None:
    """Net value per month (up to the report month) with intervals; the report month in colour;
    provisional months hatched; annotations numbered above their month, excluded months shaded."""
    months = model.get("months") or []
    if not months:
        return None
    c = _Canvas(252, 158.4, left=50, right=7.5, top=20.6, bottom=22.2)
    nets = [r["net"] or 0.0 for r in months]
    lo = [r["ci_net"][0] if r["ci_net"] else n for r, n in zip(months, nets)]
    hi = [r["ci_net"][1] if r["ci_net"] else n for r, n in zip(months, nets)]
    a, b, ticks = axis(lo + hi + nets, zero=True)
    c.xlim, c.ylim = (-0.6, len(months) - 0.4), (a, b)
    c.yaxis(ticks, money_ticks(currency))
    _month_marks(c, [r["month"] for r in months], note_marks(model.get("model_notes") or []))
    half = (c.X(1) - c.X(0)) * 0.35
    for current in (False, True):
        for i, (r, n) in enumerate(zip(months, nets)):
            if (r["month"] == month) == current:
                c.rect(c.X(i) - half, c.Y(n), 2 * half, c.Y(0) - c.Y(n), ACCENT if current else "#9fb3c8")
    for i, (r, n) in enumerate(zip(months, nets)):
        if r["provisional"]:
            c.rect(c.X(i) - half, c.Y(n), 2 * half, c.Y(0) - c.Y(n), c.hatch("#ffffff"))
    for i, (l, h) in enumerate(zip(lo, hi)):
        _errorbar(c, (c.X(i), c.Y(l)), (c.X(i), c.Y(h)), 1.5, color=TEXT, width=0.7)
    c.line(c.x0, c.Y(0), c.x1, c.Y(0), "#222222", 0.7)
    step = max(1, -(-len(months) // 4))
    labels = [dt.date.fromisoformat(r["start"]).strftime("%b %Y") for r in months]
    c.xaxis([(i, labels[i]) for i in range(0, len(months), step)])
    c.spines()
    c.title("Net value by month")
    return c.data_uri()


def _segments(xs: Sequence[float], *series: Sequence[float | None]) -> list[list[tuple[float, ...]]]:
    """Runs of consecutive points where every series has a value (a gap breaks a line or a band)."""
    runs: list[list[tuple[float, ...]]] = [[]]
    for i, x in enumerate(xs):
        vals = [s[i] if i < len(s) else None for s in series]
        if any(v is None or not math.isfinite(v) for v in vals):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((x, *vals))
    return [r for r in runs if r]


def _polyline(c: _Canvas, xs: Sequence[float], ys: Sequence[float | None], color: str, width: float,
              dash: str | None = None) -> None:
    for run in _segments(xs, ys):
        pts = " ".join(f"{_n(c.X(x))},{_n(c.Y(y))}" for x, y in run)
        c.add(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{_n(width)}" '
              f'stroke-linejoin="round"{_attrs({"stroke_dasharray": dash})} clip-path="{c.clip()}"/>')


def _band(c: _Canvas, xs: Sequence[float], lo: Sequence[float | None], hi: Sequence[float | None], color: str) -> None:
    for run in _segments(xs, lo, hi):
        pts = [f"{_n(c.X(x))},{_n(c.Y(h))}" for x, _l, h in run]
        pts += [f"{_n(c.X(x))},{_n(c.Y(l))}" for x, l, _h in reversed(run)]
        c.add(f'<polygon points="{" ".join(pts)}" fill="{color}" stroke="none" clip-path="{c.clip()}"/>')


def uplift_chart(model: dict[str, Any], currency: str) -> str | None:
    """A/B: cumulative per-unit effect by cohort day with its 95% interval (immature cohorts shaded).
    Time series: the KPI against its counterfactual, with the band."""
    tl = model.get("timeline")
    if not tl or tl.get("kind") not in ("ab", "ts") or not tl.get("day") or (tl["kind"] == "ab" and not tl.get("effect")):
        return None
    c = _Canvas(252, 158.4, left=40.3, right=17.6, top=20.6, bottom=41.2)
    title = (f"Uplift per unit ({model.get('kpi_unit') or model.get('kpi')}), cumulative" if tl["kind"] == "ab"
             else f"{model.get('kpi')}: actual vs counterfactual")
    _timeline(c, tl["kind"], [dt.date.fromisoformat(d) for d in tl["day"]], tl, note_marks(model.get("model_notes") or []),
              title=title)
    return c.data_uri()


def _timeline(c: _Canvas, kind: str, days: list[dt.date], tl: Mapping[str, Sequence[Any]], marks: list[Mark], *,
              title: str | None, always_valid: bool = False, hover: bool = False) -> None:
    """The report's uplift chart and the model page's first chart (``always_valid``: the wider
    always-valid band under the interval, as the page explains it; ``hover``: each day's figures
    on hover). ``tl``: the ledger's timeline columns (``day`` aside), lists aligned with ``days``."""
    xs = [float(d.toordinal()) for d in days]
    first, last = xs[0], xs[-1]
    pad = max((last - first) * 0.02, 0.5)
    c.xlim = (first - pad, last + pad)
    legend: list[tuple[str, str, str]] = []  # (kind, colour, label)
    if kind == "ab":
        eff, lo, hi = tl.get("effect"), tl.get("ci_lo") or [], tl.get("ci_hi") or []
        cs_lo, cs_hi = (tl.get("cs_lo") or [], tl.get("cs_hi") or []) if always_valid else ([], [])
        # the first cohorts' intervals are wide; scale the axis to the settled part of the series
        settled = slice(len(days) // 10, None)
        vals = [v for v in list(lo[settled]) + list(hi[settled]) if v is not None] + [0.0]
        a, b = min(vals), max(vals)
        span = (b - a) or 1.0
        ya, yb, ticks = axis([], limits=(a - 0.1 * span, b + 0.1 * span))
        c.ylim = (ya, yb)
        c.yaxis(ticks, _plain(ticks[1] - ticks[0] if len(ticks) > 1 else 1.0))
        _day_marks(c, days, marks, legend)
        prov = [x for x, p in zip(xs, tl.get("provisional") or []) if p]
        if prov:
            c.rect(c.X(min(prov)), c.y1, c.X(last) - c.X(min(prov)), c.y0 - c.y1, "#f2e5c6", opacity="0.6")
        if any(v is not None for v in cs_lo):
            _band(c, xs, cs_lo, cs_hi, BAND_WIDE)
        _band(c, xs, lo, hi, BAND)
        _polyline(c, xs, eff, ACCENT, 1.3 * c.font / 8)
        c.line(c.x0, c.Y(0), c.x1, c.Y(0), "#222222", 0.7)
        legend[:0] = ([("box", BAND_WIDE, "always-valid 95% band")] if any(v is not None for v in cs_lo) else []) + [
            ("box", BAND, "95% interval" if not always_valid else "fixed-horizon 95% interval"),
            ("line", ACCENT, "effect per unit")]
        if prov:
            legend.append(("box", "#f2e5c6", "not yet mature"))
        figures = [("effect per unit", eff), ("95% interval", lo, hi), ("always-valid band", cs_lo, cs_hi)]
    else:
        series = [tl.get(k) or [] for k in ("lower", "upper", "counterfactual", "actual")]
        ya, yb, ticks = axis([v for s in series for v in s if v is not None])
        c.ylim = (ya, yb)
        c.yaxis(ticks, _plain(ticks[1] - ticks[0] if len(ticks) > 1 else 1.0))
        _day_marks(c, days, marks, legend)
        if tl.get("lower") and tl.get("upper"):
            _band(c, xs, tl["lower"], tl["upper"], BAND)
            legend.insert(0, ("box", BAND, "95% band"))
        if tl.get("counterfactual"):
            _polyline(c, xs, tl["counterfactual"], NEUTRAL, 1.0 * c.font / 8, dash="3.7,1.6")
            legend.append(("dash", NEUTRAL, "without the model"))
        if tl.get("actual"):
            _polyline(c, xs, tl["actual"], ACCENT, 1.1 * c.font / 8)
            legend.append(("line", ACCENT, "actual"))
        figures = [("actual", tl.get("actual") or []), ("without the model", tl.get("counterfactual") or []),
                   ("95% band", tl.get("lower") or [], tl.get("upper") or [])]
    if title:
        c.title(title)
    c.xaxis(_month_ticks(days))
    c.spines()
    _legend(c, legend)
    if hover:
        _hover_days(c, days, xs, figures)


def _hover_days(c: _Canvas, days: list[dt.date], xs: list[float], figures: list[tuple[Any, ...]],
                most: int = 150) -> None:
    """Invisible columns over the plot, one per shown day (at most ``most``, evenly spread), each
    naming that day's figures on hover."""
    n = min(most, len(xs))
    keep = sorted({round(i * (len(xs) - 1) / max(n - 1, 1)) for i in range(n)})
    edges = [c.x0] + [(c.X(xs[a]) + c.X(xs[b])) / 2 for a, b in zip(keep, keep[1:])] + [c.x1]
    for i, left, right in zip(keep, edges, edges[1:]):
        parts = []
        for name, *cols in figures:
            vals = [col[i] if i < len(col) else None for col in cols]
            if all(_finite(v) for v in vals):
                parts.append(f"{name} {' to '.join(_figure(v) for v in vals)}")
        if parts:
            c.tip(left, c.y1, right - left, c.y0 - c.y1, f"{days[i]:%d %b %Y}: " + "; ".join(parts))


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _figure(v: float) -> str:
    """A figure on hover: four significant digits, never in scientific notation."""
    digits = max(0, 3 - math.floor(math.log10(abs(v)))) if v else 0
    return f"{v:,.{min(digits, 8)}f}".replace("-", "−")


def _month_ticks(days: list[dt.date]) -> list[tuple[float, str]]:
    """First days of months, every k-th month counted across years (k keeps about four labels)."""
    lo, hi = min(days), max(days)
    every = max(1, -(-(hi - lo).days // 120))
    out = []
    y, m = lo.year, lo.month
    while dt.date(y, m, 1) <= hi:
        d = dt.date(y, m, 1)
        if d >= lo and (12 * y + m - 1) % every == 0:
            out.append((float(d.toordinal()), d.strftime("%b %Y")))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _legend(c: _Canvas, items: list[tuple[str, str, str]], size: float | None = None) -> None:
    """One row of legend items, centred under the plot."""
    if not items:
        return
    size = size or c.font * 0.75
    widths = [14 + len(label) * size * CHAR_W + 8 for _kind, _color, label in items]
    rows: list[list[int]] = [[]]  # more rows when one is wider than the chart
    for i, w in enumerate(widths):
        if rows[-1] and sum(widths[j] for j in rows[-1]) + w > c.w - 8:
            rows.append([])
        rows[-1].append(i)
    for r, row in enumerate(rows):
        x = (c.x0 + c.x1) / 2 - sum(widths[i] for i in row) / 2
        y = c.h - 8 - (len(rows) - 1 - r) * (size + 5)
        for i in row:
            kind, color, label = items[i]
            if kind == "box":
                c.rect(x, y - 5, 10, 5, color)
            else:
                c.line(x, y - 2.5, x + 10, y - 2.5, color, 1.2, stroke_dasharray="3,1.5" if kind == "dash" else None)
            c.text(x + 13, y, label, size=size)
            x += widths[i]


Mark = tuple  # (first day, last day or None for an annotation, label or None, hover text or None)


def note_marks(notes: Iterable[Mapping[str, Any]]) -> list[Mark]:
    """The report's marks: each annotation by its number, each excluded window shaded (D36)."""
    out: list[Mark] = []
    for n in notes:
        start = dt.date.fromisoformat(n["start"]) if n.get("start") else None
        if n.get("kind") == "exclusion" and start:
            out.append((start, dt.date.fromisoformat(n["end"]), None, None))
        elif n.get("kind") == "annotation" and start:
            out.append((start, None, str(n["id"]), None))
    return out


def page_marks(annotations: Iterable[Any], windows: Iterable[tuple[dt.date, dt.date, str]], *,
               interventions: Iterable[Any] = ()) -> list[Mark]:
    """The model page's marks (from ``ui.views.chart_marks``): launches and annotations with their
    label (cut short; the whole on hover), excluded windows shaded with theirs on hover."""
    out: list[Mark] = [(iv.start, None, iv.label or "launch", iv.label or "launch") for iv in interventions]
    out += [(a.date, None, a.label if len(a.label) <= 24 else a.label[:23] + "…", a.label) for a in annotations]
    return out + [(start, end, None, label) for start, end, label in windows]


def _day_marks(c: _Canvas, days: list[dt.date], marks: list[Mark], legend: list[tuple[str, str, str]]) -> None:
    """Annotations as dotted lines with their label, excluded windows shaded (D36), on a date axis."""
    lo, hi = min(days), max(days)
    shaded = False
    size = c.font * 0.75
    for start, end, label, tip in marks:
        if end is not None:
            if end >= lo and start <= hi:
                a, b = c.X(max(start, lo).toordinal()), c.X(min(end, hi).toordinal())
                c.rect(a, c.y1, max(b - a, 0.8), c.y0 - c.y1, "#d0d0d0", opacity="0.7")
                if tip:
                    c.tip(a, c.y1, max(b - a, 0.8), c.y0 - c.y1, tip)
                if not shaded:
                    legend.append(("box", "#d0d0d0", "excluded"))
                shaded = True
        elif lo <= start <= hi:
            x = c.X(start.toordinal())
            c.line(x, c.y0, x, c.y1, NOTE, 0.9, stroke_dasharray="1,1.6")
            c.text(x + 1.5, c.y1 + size, label or "", size=size, fill=NOTE, tip=tip)


def _month_marks(c: _Canvas, months: list[str], marks: list[Mark]) -> None:
    """On bars by month ("YYYY-MM"): each annotation's label above its month, excluded months shaded grey."""
    index = {m: i for i, m in enumerate(months)}
    half = (c.X(1) - c.X(0)) * 0.45
    size = c.font * 0.75
    for start, end, label, tip in marks:
        first = start.strftime("%Y-%m")
        if end is None and first in index:
            c.text(c.X(index[first]), c.y1 + size, label or "", size=size, anchor="middle", fill=NOTE, tip=tip)
        elif end is not None:
            for month, i in index.items():
                if first <= month <= end.strftime("%Y-%m"):
                    c.rect(c.X(i) - half, c.y1, 2 * half, c.y0 - c.y1, "#d0d0d0", opacity="0.5")
                    if tip:
                        c.tip(c.X(i) - half, c.y1, 2 * half, c.y0 - c.y1, tip)


# ------------------------------------------------------------------------------------------------
# the model page's Value section (D51): inline, from the frames the page reads from the ledger

PAGE_FONT = 11  # the page's charts scale to their column: 760 units wide over the whole width, 420 over half


def _page_canvas(width: float, height: float, uid: str) -> _Canvas:
    return _Canvas(width, height, left=20, right=14, top=30, bottom=58, font=PAGE_FONT, uid=uid, fit=True)


def money_ticks(currency: str) -> Any:
    """A money axis's tick label (every chart's: reports, pages, plotly's too): compact from 1,000 up
    ("-$40K", "$1.2M", as the tiles), whole amounts below without cents ("$0", "$250"), cents only
    where a tick has them ("$2.50")."""
    from valuetrack.formatting import SMALL, money, money_compact

    def label(v: float) -> str:
        if abs(v) >= SMALL:
            return money_compact(v, currency)
        return money(v, currency, cents=not float(v).is_integer())

    return label


def _values(column: Any) -> list[float | None]:
    return [float(v) if _finite(v) else None for v in (column.tolist() if hasattr(column, "tolist") else column)]


def page_timeline(frame: Any, *, kind: str, title: str, marks: list[Mark]) -> str:
    """The Value section's first chart: for a holdout, the uplift per unit over time with the
    always-valid band and the fixed-horizon interval; for a time series, the KPI against its
    counterfactual. ``frame``: the ledger's daily timeline as the page holds it."""
    import pandas as pd

    days = list(pd.to_datetime(frame["day"]).dt.date)
    cols = {k: _values(frame[k]) for k in frame.columns if k not in ("day", "provisional")}
    if "provisional" in frame.columns:
        cols["provisional"] = [bool(v) for v in frame["provisional"].fillna(False)]
    c = _page_canvas(760, 290, "tl")
    _timeline(c, kind, days, cols, marks, title=title, always_valid=True, hover=True)
    return c.inline(title)


def page_cumulative(frame: Any, currency: str, *, payback: dt.date | None, one_off: float, marks: list[Mark]) -> str:
    """Cumulative net value since launch with its 95% interval, a point per stored period; the
    one-off costs incurred by each point (paid back when the line crosses them) and the payback
    month-end marked (the Payback tile's date, ``data-payback``)."""
    import pandas as pd

    f = frame.dropna(subset=["net"])
    days = list(pd.to_datetime(f["day"]).dt.date)
    xs = [float(d.toordinal()) for d in days]
    net, lo, hi = _values(f["net"]), _values(f["net_lo"]), _values(f["net_hi"])
    steps = _values(f["one_off"]) if "one_off" in f.columns and f["one_off"].notna().any() else None
    flat = one_off if (not steps or max(v or 0 for v in steps) <= 0) and one_off else None
    c = _page_canvas(420, 310, "cum")
    first, last = min(xs), max(xs)
    pad = max((last - first) * 0.03, 0.5)
    c.xlim = (first - pad, last + pad)
    extra = [v for v in (steps or []) if v] + ([flat] if flat else [])
    ya, yb, ticks = axis([v for v in net + lo + hi + extra if v is not None], zero=True)
    c.ylim = (ya, yb)
    c.yaxis(ticks, money_ticks(currency))
    legend: list[tuple[str, str, str]] = []
    _day_marks(c, days, marks, legend)
    if any(v is not None for v in lo):
        _band(c, xs, lo, hi, BAND)
        legend.insert(0, ("box", BAND, "95% interval"))
    c.line(c.x0, c.Y(0), c.x1, c.Y(0), "#222222", 0.8)
    if steps and max(v or 0 for v in steps) > 0:  # a step when a one-off cost is added
        (x0, y0), *pts = [(x, y) for x, y in zip(xs, steps) if y is not None]
        path = f"M{_n(c.X(x0))},{_n(c.Y(y0))}" + "".join(f"H{_n(c.X(x))}V{_n(c.Y(y))}" for x, y in pts)
        c.add(f'<path d="{path}" fill="none" stroke="{NEUTRAL}" stroke-width="1.5" stroke-dasharray="2,2"/>')
        legend.append(("dash", NEUTRAL, "one-off costs incurred (paid back when crossed)"))
    elif flat:  # a legend entry, not a label on the line (which the data would run over)
        c.line(c.X(first), c.Y(flat), c.X(last), c.Y(flat), NEUTRAL, 1.5, stroke_dasharray="2,2")
        legend.append(("dash", NEUTRAL, "one-off costs (paid back when crossed)"))
    _polyline(c, xs, net, ACCENT, 2)
    legend.append(("line", ACCENT, "cumulative net value"))
    for d, x, v, a, b in zip(days, xs, net, lo, hi):
        if v is None:
            continue
        tip = f"{d:%d %b %Y}: cumulative net value {_money_exact(v, currency)}" + (
            f" (95% interval {_money_exact(a, currency)} to {_money_exact(b, currency)})" if a is not None and b is not None else "")
        c.add(f'<circle cx="{_n(c.X(x))}" cy="{_n(c.Y(v))}" r="3" fill="{ACCENT}"><title>{escape(tip)}</title></circle>')
    if payback and first <= payback.toordinal() <= last + pad:
        x = c.X(payback.toordinal())
        c.add(f'<g data-payback="{payback.isoformat()}"><title>Paid back at the month-end of {payback:%b %Y}</title>'
              f'<path d="M{_n(x)},{_n(c.y0)}V{_n(c.y1)}" stroke="{GOOD}" stroke-width="1.5" stroke-dasharray="3,2"/></g>')
        c.text(x - 3, c.y1 + c.font, f"payback {payback:%b %Y}", size=c.font * 0.8, anchor="end", fill=GOOD)
    c.xaxis(_month_ticks(days) or [(xs[0], f"{days[0]:%b %Y}")])
    c.spines()
    _legend(c, legend, size=c.font * 0.8)
    return c.inline(f"Cumulative net value ({currency})")


def page_monthly(months: list[Mapping[str, Any]], currency: str, *, marks: list[Mark]) -> str:
    """Net value per month with 95% whiskers: green above zero, red below, grey when the interval
    spans zero; provisional months lighter. Each bar's figures on hover."""
    c = _page_canvas(420, 310, "mon")
    nets = [r["net"] if _finite(r["net"]) else None for r in months]
    lo = [r.get("net_lo") if _finite(r.get("net_lo")) else None for r in months]
    hi = [r.get("net_hi") if _finite(r.get("net_hi")) else None for r in months]
    a, b, ticks = axis([v for v in nets + lo + hi if v is not None], zero=True)
    c.xlim, c.ylim = (-0.6, len(months) - 0.4), (a, b)
    c.yaxis(ticks, money_ticks(currency))
    keys = [r["month"] for r in months]
    _month_marks(c, keys, marks)
    half = (c.X(1) - c.X(0)) * 0.35
    for faded in (False, True):
        for i, (r, n) in enumerate(zip(months, nets)):
            if n is not None and bool(r.get("provisional")) == faded:
                c.rect(c.X(i) - half, c.Y(n), 2 * half, c.Y(0) - c.Y(n), _color(n, lo[i], hi[i]),
                       opacity="0.45" if faded else "0.9")
    for i, (l, h) in enumerate(zip(lo, hi)):
        if l is not None and h is not None:
            _errorbar(c, (c.X(i), c.Y(l)), (c.X(i), c.Y(h)), min(half * 0.5, 4), color=TEXT, width=0.9)
    c.line(c.x0, c.Y(0), c.x1, c.Y(0), "#222222", 0.8)
    labels = [f"{_date(r['start']):%b %Y}" for r in months]
    for i, (r, n) in enumerate(zip(months, nets)):
        tip = (f"{labels[i]}: net value {_money_exact(n, currency)}" if n is not None else f"{labels[i]}: no estimate")
        if lo[i] is not None and hi[i] is not None:
            tip += f" (95% interval {_money_exact(lo[i], currency)} to {_money_exact(hi[i], currency)})"
        if _finite(r.get("cost")):
            tip += f"; cost {_money_exact(r['cost'], currency)}"
        if r.get("provisional"):
            tip += "; provisional (cohorts not yet mature)"
        c.tip(c.X(i) - (c.X(1) - c.X(0)) / 2, c.y1, c.X(1) - c.X(0), c.y0 - c.y1, tip)
    step = max(1, -(-len(months) // 4))
    c.xaxis([(i, labels[i]) for i in range(0, len(months), step)])
    c.spines()
    return c.inline(f"Net value by month ({currency})")


def _date(v: Any) -> dt.date:
    return dt.date.fromisoformat(v[:10]) if isinstance(v, str) else v


def _money_exact(v: float, currency: str) -> str:
    from valuetrack.formatting import money

    return money(v, currency)
