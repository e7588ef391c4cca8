"""Airflow: refresh valuetrack every morning, then fail the run when a model is flagged.

Copy to your DAGs folder and set VALUETRACK_HOME (the folder holding valuetrack.toml and .venv)
as an Airflow Variable or environment variable. Exit codes (docs/scheduling.md): refresh exits 1
when a model failed or another refresh held the lock past --lock-timeout; `flags --fail-on-flags`
exits 3 when any model is flagged. Any non-zero exit fails the task.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

HOME = os.environ.get("VALUETRACK_HOME", "/srv/valuetrack")

with DAG(
    dag_id="valuetrack_refresh",
    schedule="15 6 * * *",
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["valuetrack"],
) as dag:
    refresh = BashOperator(
        task_id="refresh",
        bash_command=".venv/bin/valuetrack refresh --lock --lock-timeout 900",
        cwd=HOME,
        retries=1,
        retry_delay=dt.timedelta(minutes=10),
    )
    flags = BashOperator(
        task_id="flags",
        bash_command=".venv/bin/valuetrack flags --fail-on-flags",
        cwd=HOME,
    )
    refresh >> flags
