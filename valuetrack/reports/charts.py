"""Static charts for the report, drawn from a snapshot's stored series (never from live data).

matplotlib (Agg) rather than plotly + kaleido: kaleido 1.x drives a headless chromium, which costs
about a second per image even with a persistent server (≈ 2 minutes of charts for 50 models),
and needs a browser wherever cron runs. matplotlib renders in-process in ≈ 0.1 s, offline, with
Debian's DejaVu fonts, and its SVG output is byte-for-byte reproducible (fixed hash salt, no date).
Images are returned as ``data:`` URIs so the HTML is self-contained and the PDF needs no fetching.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from typing import Any

GOOD, BAD, NEUTRAL, ACCENT, BAND = "#1b7f4b", "#b3261e", "#8a8f98", "#1f4e79", "#c9d6e8"


_STYLE = {
        "font.family": "DejaVu Sans", "font.size": 8, "axes.spines.top": False, "axes.spines.right": False,
        "axes.edgecolor": "#555555", "axes.labelcolor": "#333333", "xtick.color": "#333333",
        "ytick.color": "#333333", "svg.hashsalt": "valuetrack", "svg.fonttype": "path",
        "axes.titlesize": 9, "axes.titleweight": "bold", "axes.titlelocation": "left",
}


def _figure(width: float, height: float, *, left: float = 0.17, bottom: float = 0.14, right: float = 0.97,
            top: float = 0.87) -> tuple[Any, Any]:
    """A bare Agg figure (no pyplot state, fixed margins: one draw per image, thread-safe)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width, height))
        FigureCanvasAgg(fig)
        fig.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
        ax = fig.add_subplot()
    return fig, ax


def _encode(fig: Any, fmt: str) -> str:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
            mime = "image/svg+xml"
        else:
            fig.savefig(buf, format="png", dpi=170, metadata={"Software": None})
            mime = "image/png"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _money_axis(ax: Any, currency: str, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    from valuetrack.formatting import money_compact

    fmt = FuncFormatter(lambda v, _pos: money_compact(v, currency))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _color(net: float | None, lo: float | None, hi: float | None) -> str:
    if net is None:
        return NEUTRAL
    if lo is not None and lo > 0:
        return GOOD
    if hi is not None and hi < 0:
        return BAD
    return NEUTRAL


def _with_style(fn: Any) -> Any:
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(_STYLE):
            return fn(*args, **kwargs)

    return wrapper


@_with_style
def portfolio_chart(models: list[dict[str, Any]], currency: str, *, fmt: str = "png") -> str | None:
    """Net value of the month per model, with its interval (green: above zero; red: below; grey: unclear;
    grey and hatched: flagged, whatever its sign)."""
    rows = [m for m in models if m.get("active_in_month") and m.get("net") is not None]
    if not rows:
        return None
    rows = list(reversed(rows))  # largest at the top
    height = min(0.2 * len(rows) + 0.9, 9.0)
    fig, ax = _figure(7.0, height, left=0.3, bottom=0.5 / height, top=1 - 0.3 / height)
    y = range(len(rows))
    nets = [m["net"] for m in rows]
    lo = [m["ci_net"][0] if m["ci_net"] else m["net"] for m in rows]
    hi = [m["ci_net"][1] if m["ci_net"] else m["net"] for m in rows]
    flagged = [bool(m.get("flags")) for m in rows]
    colors = [NEUTRAL if fl else _color(m["net"], a, b) for m, a, b, fl in zip(rows, lo, hi, flagged)]
    bars = ax.barh(list(y), nets, color=colors, height=0.6, alpha=0.85)
    for bar, fl in zip(bars, flagged):  # a flagged model's bar carries the flag: grey, faded, hatched (D42)
        if fl:
            bar.set_alpha(0.4)
            bar.set_hatch("////")
            bar.set_edgecolor("#555555")
    ax.errorbar(nets, list(y), xerr=[[n - a for n, a in zip(nets, lo)], [b - n for n, b in zip(nets, hi)]],
                fmt="none", ecolor="#222222", elinewidth=0.8, capsize=2)
    ax.axvline(0, color="#222222", linewidth=0.8)
    labels = [m["display_name"] if len(m["display_name"]) <= 34 else m["model"] for m in rows]
    ax.set_yticks(list(y), labels, fontsize=7 if len(rows) > 20 else 8)
    _money_axis(ax, currency, "x")
    ax.set_title("Net value this month, with 95% interval")
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    return _encode(fig, fmt)


@_with_style
def monthly_chart(model: dict[str, Any], month: str, currency: str, *, fmt: str = "png") -> str | None:
    """Net value per month (up to the report month) with intervals; the report month in colour."""
    months = model.get("months") or []
    if not months:
        return None
    fig, ax = _figure(3.5, 2.2, left=0.2)
    x = list(range(len(months)))
    nets = [r["net"] or 0.0 for r in months]
    lo = [r["ci_net"][0] if r["ci_net"] else n for r, n in zip(months, nets)]
    hi = [r["ci_net"][1] if r["ci_net"] else n for r, n in zip(months, nets)]
    colors = [ACCENT if r["month"] == month else "#9fb3c8" for r in months]
    bars = ax.bar(x, nets, color=colors, width=0.7)
    for bar, r in zip(bars, months):
        if r["provisional"]:
            bar.set_hatch("////")
            bar.set_edgecolor("white")
    ax.errorbar(x, nets, yerr=[[n - a for n, a in zip(nets, lo)], [b - n for n, b in zip(nets, hi)]],
                fmt="none", ecolor="#333333", elinewidth=0.7, capsize=1.5)
    ax.axhline(0, color="#222222", linewidth=0.7)
    _month_marks(ax, months, model.get("model_notes") or [])
    step = max(1, -(-len(months) // 4))
    labels = [dt.date.fromisoformat(r["start"]).strftime("%b %Y") for r in months]
    ax.set_xticks(x[::step], labels[::step])
    _money_axis(ax, currency)
    ax.set_title("Net value by month")
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    return _encode(fig, fmt)


@_with_style
def uplift_chart(model: dict[str, Any], currency: str, *, fmt: str = "png") -> str | None:
    """A/B: cumulative per-unit effect by cohort day with its 95% interval (immature cohorts shaded).
    Time series: the KPI against its counterfactual, with the band."""
    tl = model.get("timeline")
    if not tl or tl.get("kind") not in ("ab", "ts") or not tl.get("day"):
        return None
    days = [dt.date.fromisoformat(d) for d in tl["day"]]
    fig, ax = _figure(3.5, 2.2, left=0.16, bottom=0.26, right=0.93)
    if tl["kind"] == "ab":
        eff, lo, hi = tl.get("effect"), tl.get("ci_lo"), tl.get("ci_hi")
        if not eff:
            return None
        clean = lambda s: [float("nan") if v is None else v for v in s]  # noqa: E731
        ax.fill_between(days, clean(lo), clean(hi), color=BAND, linewidth=0, label="95% interval")
        ax.plot(days, clean(eff), color=ACCENT, linewidth=1.3, label="effect per unit")
        prov = [d for d, p in zip(days, tl.get("provisional") or []) if p]
        if prov:
            ax.axvspan(min(prov), max(days), color="#f2e5c6", alpha=0.6, linewidth=0, label="not yet mature")
        ax.axhline(0, color="#222222", linewidth=0.7)
        # the first cohorts' intervals are wide; scale the axis to the settled part of the series
        settled = slice(len(days) // 10, None)
        vals = [v for v in clean(lo)[settled] + clean(hi)[settled] if v == v] + [0.0]
        if vals:
            span = (max(vals) - min(vals)) or 1.0
            ax.set_ylim(min(vals) - 0.1 * span, max(vals) + 0.1 * span)
        ax.set_title(f"Uplift per unit ({model.get('kpi_unit') or model.get('kpi')}), cumulative")
    else:
        clean = lambda s: [float("nan") if v is None else v for v in (s or [])]  # noqa: E731
        if tl.get("lower") and tl.get("upper"):
            ax.fill_between(days, clean(tl["lower"]), clean(tl["upper"]), color=BAND, linewidth=0, label="95% band")
        if tl.get("counterfactual"):
            ax.plot(days, clean(tl["counterfactual"]), color=NEUTRAL, linewidth=1.0, linestyle="--",
                    label="without the model")
        if tl.get("actual"):
            ax.plot(days, clean(tl["actual"]), color=ACCENT, linewidth=1.1, label="actual")
        ax.set_title(f"{model.get('kpi')}: actual vs counterfactual")
    _day_marks(ax, days, model.get("model_notes") or [])
    ax.legend(fontsize=6, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    from matplotlib.dates import DateFormatter, MonthLocator

    span = (max(days) - min(days)).days
    ax.xaxis.set_major_locator(MonthLocator(interval=max(1, -(-span // 120))))
    ax.xaxis.set_major_formatter(DateFormatter("%b %Y"))
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    return _encode(fig, fmt)


NOTE = "#9a6700"


def _day_marks(ax: Any, days: list[dt.date], notes: list[dict[str, Any]]) -> None:
    """Annotations as dotted lines with their number, excluded windows shaded (D36), on a date axis."""
    if not days:
        return
    lo, hi = min(days), max(days)
    shaded = False
    for n in notes:
        start = dt.date.fromisoformat(n["start"]) if n.get("start") else None
        if n.get("kind") == "exclusion" and start:
            end = dt.date.fromisoformat(n["end"])
            if end >= lo and start <= hi:
                ax.axvspan(max(start, lo), min(end, hi), color="#d0d0d0", alpha=0.7, linewidth=0,
                           label=None if shaded else "excluded")
                shaded = True
        elif n.get("kind") == "annotation" and start and lo <= start <= hi:
            ax.axvline(start, color=NOTE, linestyle=":", linewidth=0.9)
            ax.text(start, 1.0, f" {n['id']}", transform=ax.get_xaxis_transform(), color=NOTE, fontsize=6,
                    va="top", ha="left")


def _month_marks(ax: Any, months: list[dict[str, Any]], notes: list[dict[str, Any]]) -> None:
    """On the monthly bars: each annotation's number above its month, excluded months hatched grey."""
    index = {r["month"]: i for i, r in enumerate(months)}
    for n in notes:
        if not n.get("start"):
            continue
        if n.get("kind") == "annotation" and n["start"][:7] in index:
            ax.text(index[n["start"][:7]], 1.0, str(n["id"]), transform=ax.get_xaxis_transform(), color=NOTE,
                    fontsize=6, ha="center", va="top")
        elif n.get("kind") == "exclusion":
            for month, i in index.items():
                if n["start"][:7] <= month <= n["end"][:7]:
                    ax.axvspan(i - 0.45, i + 0.45, color="#d0d0d0", alpha=0.5, linewidth=0)
