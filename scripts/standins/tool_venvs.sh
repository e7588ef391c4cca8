#!/usr/bin/env bash
# Side virtualenvs for tools whose pins clash with ours, used by tests (docs/testing-standins.md):
#
#   .venvs/mlflow     the MLflow tracking server (SQLite backend) the registry-import tests start
#   .venvs/dagster    parse-checks docs/recipes/dagster_valuetrack.py
#   .venvs/airflow    parse-checks docs/recipes/airflow_valuetrack.py
#
# Idempotent and cached: each venv is built once per machine under $VALUETRACK_TOOL_CACHE (default
# ~/.cache/valuetrack/tool-venvs), named by a hash of its pins and Python version, and linked into
# .venvs/; a fresh clone links in a second. Downloads only from PyPI.
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

# Built once per machine in a cache outside the checkout (CI clones afresh each run) and linked
# into .venvs/; a venv only works at the path it was built at, so the cache path holds the pins' hash.
CACHE=${VALUETRACK_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/valuetrack/tool-venvs}
mkdir -p .venvs "$CACHE"

for entry in "${TOOLS[@]}"; do
    IFS='|' read -r name pins check <<<"$entry"
    [ -z "${ONLY:-}" ] || [ "$ONLY" = "$name" ] || continue
    want=$(printf '%s %s' "$pins" "$("$PY" -c 'import sys; print(sys.version_info[:2])')" | sha256sum | cut -c1-16)
    link=.venvs/$name
    if [ -x "$link/bin/python" ] && [ "$(cat "$link/.valuetrack-tool" 2>/dev/null)" = "$want" ]; then
        say "$link up to date"
        continue
    fi
    venv=$CACHE/$name-$want
    if ! { [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.valuetrack-tool" 2>/dev/null)" = "$want" ]; }; then
        say "creating $venv ($pins) with $PY"
        rm -rf "$venv"
        "$PY" -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install -q $pins 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
        "$venv/bin/python" -c "$check" || die "$venv: '$check' failed after install"
        echo "$want" > "$venv/.valuetrack-tool"
    fi
    rm -rf "$link"
    ln -s "$venv" "$link"
    say "$link -> $venv"
done
say "ready"
