"""Connector-layer actions (valuetrack/connectors/actions.py): the register form's preview reads
a shared table for the model's own rows only, and a connection test never raises."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from valuetrack.connectors.actions import check_connection, preview_mapping
from valuetrack.context import open_context


def _shared_warehouse(path: Path) -> None:
    import duckdb

    rows = pd.DataFrame({
        "customer_id": range(8), "model_id": ["recs"] * 3 + ["churn"] * 5,
        "arm": ["model", "holdout", "model", "treated", "control", "treated", "control", "treated"],
        "scored_at": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03", "2025-02-01", "2025-02-02",
                                     "2025-02-03", "2025-02-04", "2025-02-05"]),
    })
    con = duckdb.connect(str(path))
    con.register("r", rows)
    con.execute("CREATE TABLE exposures AS SELECT * FROM r")
    con.close()


def _mapping(model_value: str) -> dict:
    return {"name": "recs-v2", "connection": "demo", "attribution": {"exposures": {
        "table": "exposures", "unit": "customer_id", "timestamp": "scored_at", "arm": "arm", "model": "model_id",
        "model_value": model_value, "treatment": "model", "control": "holdout"}}}


def test_preview_shows_only_the_models_rows_of_a_shared_table(workspace: Path) -> None:
    _shared_warehouse(workspace / "sample_data" / "demo.duckdb")
    settings = open_context().settings
    item, = preview_mapping(settings, _mapping("recs"))
    assert item["error"] is None and set(item["rows"]["model_id"]) == {"recs"} and len(item["rows"]) == 3
    assert sorted(item["arms"]) == ["holdout", "model"] and not item["warnings"]  # not churn's arms
    assert [pd.Timestamp(d).date().isoformat() for d in item["date_range"]] == ["2025-01-01", "2025-01-03"]

    other, = preview_mapping(settings, _mapping("nobody"))
    assert len(other["rows"]) == 0 and "no rows where model_id = 'nobody'" in " ".join(other["warnings"])


def test_check_connection_reports_instead_of_raising(workspace: Path) -> None:
    settings = open_context().settings
    assert check_connection(settings, "demo")["ok"] is True
    missing = check_connection(settings, "nope")
    assert missing["ok"] is False and "nope" in missing["message"]
