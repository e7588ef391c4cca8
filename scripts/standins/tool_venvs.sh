#!/usr/bin/env bash
# Side virtualenvs for tools whose pins clash with ours, used by tests (docs/testing-standins.md):
#
#   .venvs/mlflow     the MLflow tracking server (SQLite backend) the registry-import tests start
#   .venvs/dagster    parse-checks docs/recipes/dagster_valuetrack.py
#   .venvs/airflow    parse-checks docs/recipes/airflow_valuetrack.py
#
# Idempotent and cached: each venv carries a stamp of its pins and is rebuilt only when they
# change; a second run returns in about a second. Downloads only from PyPI.
# Environment: TOOL_PYTHON (default python3.12, else python3) builds the venvs; ONLY=mlflow (etc.)
# builds one of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '[tool-venvs] %s\n' "$*"; }
die() { printf '[tool-venvs] ERROR: %s\n' "$*" >&2; exit 1; }

PY=${TOOL_PYTHON:-}
if [ -z "$PY" ]; then
    for c in python3.12 python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import venv' >/dev/null 2>&1; then PY=$c; break; fi
    done
fi
[ -n "$PY" ] || die "no python3 with venv found: set TOOL_PYTHON=/path/to/python3"

# name | pins (space-separated) | import check
TOOLS=(
    "mlflow|mlflow==3.17.2|import mlflow.server"
    "dagster|dagster==1.13.28|import dagster"
    "airflow|apache-airflow==3.3.2|import airflow"
)

for entry in "${TOOLS[@]}"; do
    IFS='|' read -r name pins check <<<"$entry"
    [ -z "${ONLY:-}" ] || [ "$ONLY" = "$name" ] || continue
    venv=.venvs/$name
    stamp=$venv/.valuetrack-tool
    want=$(printf '%s' "$pins" | sha256sum | cut -c1-16)
    if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "$venv up to date"
        continue
    fi
    say "creating $venv ($pins) with $PY"
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q $pins 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    "$venv/bin/python" -c "$check" || die "$venv: '$check' failed after install"
    echo "$want" > "$stamp"
done
say "ready"
