"""Library calls the pages make on a user's request (no Streamlit here): preview a mapping in the
warehouse and check connections (connector-layer actions: valuetrack/connectors/actions.py),
summarise refreshes. Each returns plain data and never raises for a warehouse that is down: the
error is part of the result, secrets already removed."""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import pandas as pd

from valuetrack.errors import ValuetrackError

from valuetrack.connectors.actions import PREVIEW_ROWS


def preview_mapping(ctx: Any, data: Mapping[str, Any], *, limit: int = PREVIEW_ROWS) -> list[dict[str, Any]]:
    """What the form's mapping finds in the warehouse (valuetrack.connectors.actions.preview_mapping)."""
    from valuetrack.connectors.actions import preview_mapping as preview

    return preview(ctx.settings, data, limit=limit)


def import_mlflow(ctx: Any, tracking_uri: str, filter_string: str | None = None) -> dict[str, Any]:
    """The MLflow import's proposal (docs/mlflow.md) for the register page: per-model summary rows,
    the manifest text to download, warnings, or the error (secrets removed)."""
    from valuetrack.registry.mlflow_import import import_mlflow as propose

    if not tracking_uri.strip():
        return {"error": "enter the MLflow tracking URI, e.g. http://mlflow.internal:5000"}
    try:
        result = propose(ctx, tracking_uri.strip(), filter_string=(filter_string or "").strip() or None)
    except ValuetrackError as exc:
        return {"error": exc.message}
    rows = pd.DataFrame([{"model": m.name, "in MLflow": m.mlflow_name, "action": m.action,
                          "from MLflow": ", ".join(m.changes), "to fill": ", ".join(m.to_fill)} for m in result.models])
    return {"rows": rows, "text": result.text, "warnings": result.warnings}


def check_connection(ctx: Any, name: str) -> dict[str, Any]:
    """Test one configured connection (valuetrack.connectors.actions.check_connection); never raises."""
    from valuetrack.connectors.actions import check_connection as check

    return check(ctx.settings, name)


def connections_frame(ctx: Any) -> pd.DataFrame:
    """The configured connections (URLs as safe to show) with the models using each and their
    last successful refresh."""
    store = ctx.aggregates
    models = ctx.registry.list()
    rows = []
    for name, conn in ctx.settings.connections.items():
        using = [m for m in models if m.spec.connection == name]
        last = None
        for m in using:
            ok = store.status(m.name).last_ok
            if ok and ok.get("finished_at") and (last is None or ok["finished_at"] > last):
                last = ok["finished_at"]
        rows.append({"connection": name, "warehouse": conn.dialect, "url": conn.display_url(),
                     "models": len(using), "last_refresh": last})
    return pd.DataFrame(rows, columns=["connection", "warehouse", "url", "models", "last_refresh"])


def refresh_history(ctx: Any, *, limit_per_model: int = 20) -> pd.DataFrame:
    """Recent refreshes of every model: when, status, rows, what the warehouse reported it cost."""
    store = ctx.aggregates
    frames = []
    for m in ctx.registry.list():
        f = store.refreshes(m.name, limit=limit_per_model)
        if len(f):
            f = f.assign(model=m.name, connection=m.spec.connection)
            frames.append(f)
    if not frames:
        return pd.DataFrame(columns=["model", "connection", "started_at", "finished_at", "status", "rows", "queries",
                                     "seconds", "bytes_scanned", "error"])
    f = pd.concat(frames, ignore_index=True)
    costs = f["cost"].apply(lambda c: ((c or {}).get("total") or {}) if isinstance(c, Mapping) else {})
    f["seconds"] = [_num(c, "elapsed_s") for c in costs]
    f["bytes_scanned"] = [_num(c, "bytes_billed", "data_scanned_bytes", "bytes_processed") for c in costs]
    f["queries"] = [_num(c, "queries") for c in costs]
    f = f.sort_values("started_at", ascending=False)
    return f[["model", "connection", "started_at", "finished_at", "status", "rows", "queries", "seconds",
              "bytes_scanned", "error"]].reset_index(drop=True)


def _num(d: Mapping[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def fmt_when(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "never"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)
