"""Plotly figure builders for the pages: pure functions (frames in, figures out), no Streamlit. The
model page's Value section is drawn as SVG instead (valuetrack/svgcharts.py, D51).

Colour carries meaning and is used sparingly: green = confidently positive, red = confidently
negative, grey = not yet conclusive; blue for neutral series, amber for provisional periods.
"""

from __future__ import annotations

import textwrap
from typing import Any, Iterable, Mapping

import pandas as pd
import plotly.graph_objects as go

from valuetrack import svgcharts
from valuetrack.ui.safe import one_line

GREEN, RED, GREY, BLUE, AMBER = "#1a7f37", "#cf222e", "#8c959f", "#0969da", "#bf8700"
BAND = "rgba(9,105,218,0.15)"
FONT = dict(family="Inter, -apple-system, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def _layout(fig: go.Figure, *, height: int = 320, yaxis_title: str | None = None) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), font=FONT, plot_bgcolor="white",
                      paper_bgcolor="white", hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    fig.update_xaxes(showgrid=False, linecolor="#d0d7de")
    fig.update_yaxes(gridcolor="#eaeef2", zerolinecolor="#57606a", zerolinewidth=1, title=yaxis_title)
    return fig


def _money_axis(update: Any, values: Iterable[Any], currency: str) -> None:
    """A money axis covering ``values`` (and 0) with round ticks labelled as every other money axis
    and tile is ("-$40K", "$1.2M": valuetrack.svgcharts.money_ticks), not plotly's own "$−40k".
    ``update``: the figure's ``update_xaxes`` or ``update_yaxes``."""
    lo, hi, ticks = svgcharts.axis([float(v) for v in values if v is not None and pd.notna(v)], zero=True)
    label, pad = svgcharts.money_ticks(currency), 0.02 * (hi - lo)
    update(tickvals=ticks, ticktext=[label(t) for t in ticks], range=[lo - pad, hi + pad])


def sign_colour(lo: float | None, hi: float | None) -> str:
    """Green when the interval is above zero, red when below, grey otherwise."""
    if lo is not None and lo > 0:
        return GREEN
    if hi is not None and hi < 0:
        return RED
    return GREY


LABEL_MAX = 40
"""Characters of a model's name on a chart's axis (the whole name is on hover)."""


def value_by_model(frame: pd.DataFrame, currency: str, *, label: str = "Net value") -> go.Figure:
    """Horizontal bars of net value per model with 95 % interval whiskers, best at the top. A flagged
    model's bar is grey, faded and hatched whatever its sign, its flags and their reasons on hover (D42)."""
    f = frame.dropna(subset=["net"]).sort_values("net")
    reasons = f["flag_reason"].fillna("") if "flag_reason" in f.columns else pd.Series([""] * len(f), index=f.index)
    flagged = [bool(r) for r in reasons]
    colours = [GREY if fl else sign_colour(lo, hi) for fl, lo, hi in zip(flagged, f["net_lo"], f["net_hi"])]
    hover = ["" if not r else "<br>Flagged, do not rely on this figure:<br>" + "<br>".join(
        line for reason in one_line(r).split(" ¶ ") for line in textwrap.wrap(reason, 90)) for r in
        (x.replace("\n", " ¶ ") for x in reasons)]
    names = [one_line(n) for n in f["name"]]
    # a long name is cut on the axis (it would squeeze the bars to nothing), whole on hover; the cut
    # names stay distinct (a bar per model): a repeated one gets its rank
    shown, seen = [], set()
    for n in names:
        cut = n if len(n) <= LABEL_MAX else n[:LABEL_MAX - 1] + "…"
        while cut in seen:
            cut += " "
        seen.add(cut)
        shown.append(cut)
    fig = go.Figure(go.Bar(
        x=f["net"], y=shown, orientation="h", marker_color=colours,
        marker_opacity=[0.45 if fl else 1.0 for fl in flagged],
        marker_pattern_shape=["/" if fl else "" for fl in flagged],
        error_x=dict(type="data", symmetric=False, array=(f["net_hi"] - f["net"]).fillna(0),
                     arrayminus=(f["net"] - f["net_lo"]).fillna(0), color="#57606a", thickness=1),
        customdata=[[lo, hi, h, n] for lo, hi, h, n in zip(f["net_lo"], f["net_hi"], hover, names)],
        hovertemplate="%{customdata[3]}<br>" + label + " %{x:,.0f}<br>95% interval %{customdata[0]:,.0f} to "
                      "%{customdata[1]:,.0f}%{customdata[2]}<extra></extra>",
    ))
    fig = _layout(fig, height=max(260, 28 * len(f) + 60))
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(title=f"{label} ({currency}), 95% interval",
                     zeroline=True, zerolinecolor="#57606a", showgrid=True, gridcolor="#eaeef2")
    _money_axis(fig.update_xaxes, [*f["net"], *f["net_lo"], *f["net_hi"]], currency)
    fig.update_yaxes(title=None, gridcolor="rgba(0,0,0,0)")
    return fig


def _markers(fig: go.Figure, items: Iterable[Any], default_label: str) -> None:
    """A dotted vertical line with its label per intervention (``start``) or annotation (``date``)."""
    for item in items:
        day = pd.Timestamp(getattr(item, "start", None) or getattr(item, "date", item))
        fig.add_vline(x=day, line_color=AMBER, line_dash="dot")
        fig.add_annotation(x=day, y=1, yref="paper", text=one_line(getattr(item, "label", "") or default_label),
                           showarrow=False, xanchor="left", font=dict(color=AMBER, size=11))


def _excluded(fig: go.Figure, windows: Iterable[Any]) -> None:
    """Excluded windows (first day, last day, label) shaded grey: days left out of attribution."""
    for start, end, label in windows:
        fig.add_vrect(x0=pd.Timestamp(start), x1=pd.Timestamp(end) + pd.Timedelta(hours=23), fillcolor=GREY,
                      opacity=0.25, line_width=0, annotation_text=one_line(label), annotation_position="bottom left",
                      annotation_font=dict(color="#57606a", size=10))


def cost_history(months: list[Mapping[str, Any]], steps: Mapping[str, Any], currency: str, *,
                 annotations: Iterable[Any] = (), windows: Iterable[Any] = ()) -> go.Figure:
    """Costs over time: each month's running costs and amortised one-off costs (bars), the monthly
    cost in effect as steps (a dated change shows where it happened), one-off costs as dated markers."""
    f = pd.DataFrame(months)
    fig = go.Figure()
    if f.empty:
        return _layout(fig)
    mid = pd.to_datetime(f["start"]) + (pd.to_datetime(f["end"]) - pd.to_datetime(f["start"])) / 2
    fig.add_trace(go.Bar(x=mid, y=f["cost"], name="running costs", marker_color=BLUE, opacity=0.55,
                         hovertemplate="%{x|%b %Y}<br>running costs %{y:,.2f}<extra></extra>"))
    if "amortisation" in f and f["amortisation"].fillna(0).gt(0).any():
        fig.add_trace(go.Bar(x=mid, y=f["amortisation"], name="one-off costs amortised", marker_color=GREY, opacity=0.55,
                             hovertemplate="%{x|%b %Y}<br>amortised %{y:,.2f}<extra></extra>"))
    if steps.get("days"):
        fig.add_trace(go.Scatter(x=pd.to_datetime(steps["days"]), y=steps["monthly_cost"], mode="lines+markers",
                                 line_shape="hv", line=dict(color=RED, width=2), name="monthly cost in effect",
                                 hovertemplate="from %{x|%d %b %Y}<br>%{y:,.2f} a month<extra></extra>"))
    for event in steps.get("one_off") or []:
        fig.add_trace(go.Scatter(x=[pd.Timestamp(event["on"])], y=[event["amount"]], mode="markers",
                                 marker=dict(symbol="diamond", size=10, color=GREEN),
                                 name=f"one-off cost{': ' + one_line(event['label']) if event.get('label') else ''}",
                                 hovertemplate="%{x|%d %b %Y}<br>%{y:,.2f}<extra></extra>"))
    fig.update_layout(barmode="stack")
    _markers(fig, annotations, "")
    _excluded(fig, windows)
    fig = _layout(fig, yaxis_title=f"cost ({currency})")
    stacked = f["cost"].fillna(0) + (f["amortisation"].fillna(0) if "amortisation" in f else 0)
    _money_axis(fig.update_yaxes, [*stacked, *(steps.get("monthly_cost") or []),
                                   *(e["amount"] for e in steps.get("one_off") or [])], currency)
    return fig


def volume(daily: pd.DataFrame, *, annotations: Iterable[Any] = (), windows: Iterable[Any] = ()) -> go.Figure:
    """Daily exposures by arm (the health panel's volume chart)."""
    fig = go.Figure()
    if len(daily):
        for arm, g in daily.groupby("arm"):
            fig.add_trace(go.Scatter(x=pd.to_datetime(g["day"]), y=g["n_exposures"], name=str(arm) or "all",
                                     mode="lines", line=dict(width=1.2)))
        _markers(fig, annotations, "")
        _excluded(fig, windows)
    return _layout(fig, height=220, yaxis_title="exposures per day")




def threshold_curve(curve: list[Mapping[str, Any]], currency: str, *, current: float | None = None,
                    best: float | None = None) -> go.Figure:
    """What the decisions would have been worth at each score threshold, with a ±2 se band (the
    estimated part only) and the thresholds in use and worth most marked."""
    f = pd.DataFrame(curve)
    fig = go.Figure()
    if f.empty:
        return _layout(fig)
    fig.add_trace(go.Scatter(x=pd.concat([f["threshold"], f["threshold"][::-1]]),
                             y=pd.concat([f["value"] + 2 * f["se"], (f["value"] - 2 * f["se"])[::-1]]),
                             fill="toself", fillcolor=BAND, line=dict(width=0), hoverinfo="skip", name="±2 se"))
    fig.add_trace(go.Scatter(x=f["threshold"], y=f["value"], mode="lines", line=dict(color=BLUE, width=2),
                             name="value of the decisions",
                             hovertemplate="threshold %{x:.2f}<br>%{y:,.0f}<extra></extra>"))
    if current is not None and best is not None and abs(current - best) < 0.005:  # one line, one label
        fig.add_vline(x=current, line_color=GREEN, line_dash="dash", annotation_text="in use, worth most")
    else:  # each label on the outer side of its line, so that two close lines' labels do not overlap
        lines = [(x, text, colour, dash) for x, text, colour, dash in
                 ((current, "in use", GREY, "dash"), (best, "worth most", GREEN, "dot")) if x is not None]
        for x, text, colour, dash in lines:
            left = len(lines) == 2 and x < max(other for other, *_ in lines)
            fig.add_vline(x=x, line_color=colour, line_dash=dash, annotation_text=text,
                          annotation_position="top left" if left else "top right")
    fig = _layout(fig, yaxis_title=f"value ({currency})")
    _money_axis(fig.update_yaxes, [*(f["value"] + 2 * f["se"]), *(f["value"] - 2 * f["se"])], currency)
    fig.update_xaxes(title="decide 1 when score ≥ threshold", range=[0, 1])
    return fig


def reconciliation(steps: list[Mapping[str, Any]], currency: str) -> go.Figure:
    """The portfolio's reconciliation as a waterfall: the sum of the rows, the overlap deduction,
    the cost of the models without an estimate, and the total they make (steps from
    :func:`valuetrack.ui.views.reconciliation`; hover shows each amount to the cent)."""
    fig = go.Figure(go.Waterfall(
        x=[s["label"] for s in steps], y=[s["amount"] for s in steps],
        measure=[s["measure"] for s in steps], text=[s["text"] for s in steps], textposition="outside",
        customdata=[s["exact_text"] for s in steps], hovertemplate="%{x}: %{customdata}<extra></extra>",
        connector=dict(line=dict(color="#8c959f", width=1)),
        increasing=dict(marker=dict(color=GREEN)), decreasing=dict(marker=dict(color=RED)),
        totals=dict(marker=dict(color=BLUE)),
    ))
    fig = _layout(fig, height=300)
    levels, level = [], 0.0  # the waterfall's running levels: where each bar starts and ends
    for step in steps:
        level = step["amount"] if step["measure"] in ("absolute", "total") else level + step["amount"]
        levels.append(level)
    _money_axis(fig.update_yaxes, levels, currency)
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_yaxes(title=f"{currency}")
    return fig
