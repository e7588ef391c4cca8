#!/usr/bin/env bash
# Install the local warehouse stand-ins used by tests/connectors (see docs/testing-standins.md).
# Idempotent: a second run checks and returns in a few seconds. Downloads only from PyPI.
#
#   .venvs/bigquery   Python 3.13 venv with the local-bigquery emulator + offline DuckDB extensions
#   .venvs/mlflow, .venvs/dagster, .venvs/airflow   (tool_venvs.sh: see that script)
#   .venv             (the project venv) must hold the client libraries ('.[test]'); fakesnow and
#                     moto are installed here too if the test extra does not bring them yet
#
# Environment: VENV (default .venv), PYTHON313 (a python3.13 to build the emulator venv with).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
HERE=scripts/standins
VENV=${VENV:-.venv}
BQ_VENV=.venvs/bigquery
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '[standins] %s\n' "$*"; }
die() { printf '[standins] ERROR: %s\n' "$*" >&2; exit 1; }

# -- the project venv: client libraries + fakesnow + moto ---------------------------------------
[ -x "$VENV/bin/python" ] || die "$VENV/bin/python not found: run 'make setup' (pip install -e '.[test]') first"
# fakesnow pins duckdb~=2.0.0 and sqlglot~=30.22.0; connector<5 / snowflake-sqlalchemy<2 come from '.[snowflake]'
MAIN_PINS=("fakesnow[server]==0.12.1" "moto[server]==5.2.5")
if ! "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m
assert m.version("fakesnow") == "0.12.1"
import moto.server, fakesnow, uvicorn, starlette  # noqa: F401  (server extras present)
import pyathena.sqlalchemy, sqlalchemy_bigquery, snowflake.sqlalchemy, google.cloud.bigquery  # noqa: F401
PY
then
    say "installing ${MAIN_PINS[*]} into $VENV"
    "$VENV/bin/python" -m pip install -q "${MAIN_PINS[@]}"
    "$VENV/bin/python" -c "import pyathena.sqlalchemy, sqlalchemy_bigquery, snowflake.sqlalchemy, google.cloud.bigquery" \
        || die "client libraries missing in $VENV: run pip install -e '.[test]'"
fi

# -- the BigQuery emulator venv (Python 3.13) ---------------------------------------------------
find_py313() {
    local c
    for c in "${PYTHON313:-}" python3.13 /usr/bin/python3.13 /usr/local/bin/python3.13 \
             "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do
        [ -n "$c" ] || continue
        if "$c" -c 'import sys, venv; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; then
            command -v "$c" 2>/dev/null || echo "$c"
            return 0
        fi
    done
    return 1
}

STAMP="$BQ_VENV/.valuetrack-standin"
WANT=$(cat "$HERE/bigquery-requirements.txt" "$HERE/bigquery-constraints.txt" | sha256sum | cut -c1-16)
if [ -x "$BQ_VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    say "$BQ_VENV up to date"
else
    PY313=$(find_py313) || die "python3.13 not found (local-bigquery needs Python 3.13): install it (README.md says how on Debian/Ubuntu), or set PYTHON313=/path/to/python3.13"
    say "creating $BQ_VENV with $PY313"
    rm -rf "$BQ_VENV"
    "$PY313" -m venv "$BQ_VENV"
    # (grep: this machine's pip config names local index folders that may not exist)
    "$BQ_VENV/bin/python" -m pip install -q -r "$HERE/bigquery-requirements.txt" -c "$HERE/bigquery-constraints.txt" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    echo "$WANT" > "$STAMP"
fi
# links the extension wheels' files into an extension directory and loads them with auto-install
# off: proves the emulator's DuckDB needs no download
"$BQ_VENV/bin/python" "$HERE/bigquery_server.py" --check | sed 's/^/[standins] /'
# -- side venvs for tools whose pins clash with ours: MLflow server, Dagster, Airflow ---------------
bash "$HERE/tool_venvs.sh"
say "ready ($ROOT)"
