"""Connector-layer actions a person asks for from the app or a script: preview what a model's
mapping finds in its warehouse, and test a connection. Plain data in (settings, the form's
manifest data), plain data out; never raises for a warehouse that is down: the error is part of
the result, secrets already removed. valuetrack/ui/actions.py calls these."""

from __future__ import annotations

from typing import Any, Mapping

from valuetrack.errors import ValuetrackError

PREVIEW_ROWS = 5


def _sources(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What to read for each section of the mapping: title, table, columns, date and arm columns,
    and the rows to keep (a shared exposures table: this model's rows only)."""
    att = data.get("attribution") or {}
    ex, out, series, panel = att.get("exposures"), att.get("outcomes"), att.get("series"), att.get("panel")
    sources = []
    if ex:
        where = {ex["model"]: ex.get("model_value") or data.get("name") or ""} if ex.get("model") else {}
        sources.append({"title": "Exposures", "table": ex.get("table"), "section": ex, "where": where,
                        "columns": [ex.get(k) for k in ("unit", "timestamp", "arm", "model", "score", "segment")],
                        "timestamp": ex.get("timestamp"), "arm": ex.get("arm")})
    if out:
        sources.append({"title": "Outcomes", "table": out.get("table"), "section": out, "where": {},
                        "columns": [out.get(k) for k in ("unit", "timestamp", "value")], "timestamp": out.get("timestamp")})
    if series:
        sources.append({"title": "Daily series", "table": series.get("table"), "section": series, "where": {},
                        "columns": [series.get("date"), series.get("value"), *(series.get("controls") or [])],
                        "timestamp": series.get("date")})
    if panel:
        sources.append({"title": "Panel", "table": panel.get("table"), "section": panel, "where": {},
                        "columns": [panel.get(k) for k in ("unit", "date", "value")], "timestamp": panel.get("date")})
    for s in sources:
        s["columns"] = [c for c in s["columns"] if c]
    return sources


def preview_mapping(settings: Any, data: Mapping[str, Any], *, limit: int = PREVIEW_ROWS) -> list[dict[str, Any]]:
    """What a model's mapping (the manifest entry as data) finds in its warehouse, per source table:
    a few rows, the date range and (exposures) the arm values, with warnings when the configured arms
    are missing. A table shared by several models is read for this model's rows only.

    Returns:
        One dict per source: ``title``, ``table``, ``rows`` (DataFrame), ``date_range``, ``arms``,
        ``warnings`` (list), ``error`` (None, or why it could not be read, without secrets).
    """
    from valuetrack.config import redact
    from valuetrack.connectors import get_connector

    sources = _sources(data)
    if not sources:
        return [{"title": "Mapping", "error": "fill in the exposures and outcomes tables (A/B), the daily series "
                                              "or the panel first"}]
    try:
        connector = get_connector(settings.connection(data.get("connection") or "demo"), settings.secrets())
    except ValuetrackError as exc:
        return [{"title": "Connection", "error": exc.message}]
    hidden = settings.secret_values()
    results = []
    try:
        for src in sources:
            item: dict[str, Any] = {"title": src["title"], "table": src["table"], "error": None, "warnings": []}
            try:
                got = connector.preview(src["table"] or "", src["columns"], limit, timestamp=src.get("timestamp"),
                                        arm=src.get("arm"), where=src["where"])
                item.update(rows=got["rows"], date_range=got.get("date_range"), arms=got.get("arms"))
                _warn(item, src, got)
            except ValuetrackError as exc:
                item["error"] = redact(exc.message, hidden)
            except Exception as exc:  # a driver error: show it without secrets
                item["error"] = redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", hidden)
            results.append(item)
    finally:
        connector.dispose()
    return results


def _warn(item: dict[str, Any], src: Mapping[str, Any], got: Mapping[str, Any]) -> None:
    arm, section = src.get("arm"), src["section"]
    if arm and got.get("arms") is not None:
        found = {str(a) for a in got["arms"]}
        for key in ("treatment", "control"):
            want = section.get(key) or ("model" if key == "treatment" else "holdout")
            if want not in found:
                item["warnings"].append(f"the {key} arm {want!r} does not occur in column {arm!r} "
                                        f"(found: {', '.join(sorted(found)[:10]) or 'nothing'})")
    if not len(item["rows"]):
        where = " and ".join(f"{k} = {v!r}" for k, v in src["where"].items())
        item["warnings"].append(f"no rows where {where}: check the model column and value" if where
                                else "the table is empty")


def check_connection(settings: Any, name: str) -> dict[str, Any]:
    """Test one configured connection (``SELECT 1``): ok, message, latency_s, server_version; never raises."""
    from valuetrack.connectors import test_connection

    try:
        return test_connection(settings.connection(name), settings.secrets()).to_dict()
    except ValuetrackError as exc:
        return {"ok": False, "message": exc.message, "latency_s": None, "server_version": None}
