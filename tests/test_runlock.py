"""``refresh --lock``: overlapping scheduled runs never refresh at once, a killed run's lock does not
block the next, and a run that waits too long exits 1 with a message (docs/scheduling.md)."""

from __future__ import annotations

import datetime as dt
import re
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from valuetrack.runlock import lock_path

AS_OF = "2026-06-30"
ROOT = Path(__file__).resolve().parent.parent


def _start(folder: Path, user: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "VALUETRACK_USER": user, "PYTHONPATH": str(ROOT)}
    env.pop("VALUETRACK_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "valuetrack", "refresh", "--as-of", AS_OF, "--full", *extra],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _runs(folder: Path) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """Per user (one per process): first start and last finish of its refresh rows."""
    with sqlite3.connect(folder / "valuetrack.db") as db:
        rows = db.execute("SELECT started_by, MIN(started_at), MAX(finished_at), COUNT(*) FROM refreshes "
                          "WHERE started_by LIKE 'run-%' GROUP BY started_by").fetchall()
    return {user: (dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for user, a, b, n in rows}


def test_two_overlapping_locked_runs_never_refresh_at_once(demo_builder) -> None:
    folder = demo_builder(0.1, AS_OF)
    first = _start(folder, "run-a", "--lock", "--lock-timeout", "120")
    time.sleep(0.5)
    second = _start(folder, "run-b", "--lock", "--lock-timeout", "120")
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    runs = _runs(folder)
    assert set(runs) == {"run-a", "run-b"}
    (a0, a1), (b0, b1) = sorted(runs.values())
    assert a1 <= b0, f"the runs overlapped: {runs}"


def test_waiting_past_the_timeout_exits_1_and_a_killed_runs_lock_does_not_block(demo_builder) -> None:
    folder = demo_builder(0.1, AS_OF)
    holder = _start(folder, "run-killed", "--lock")
    lock = lock_path(f"sqlite:///{folder / 'valuetrack.db'}")
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip() == str(holder.pid)):
        assert time.monotonic() < deadline and holder.poll() is None, "the first refresh never took the lock"
        time.sleep(0.05)

    waiting = _start(folder, "run-waiting", "--lock", "--lock-timeout", "0.5")
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 1
    assert "another refresh is running" in err and "--lock-timeout" in err and "Traceback" not in err

    holder.send_signal(signal.SIGKILL)  # killed mid-run: no chance to clean anything up
    holder.communicate(timeout=30)
    assert lock.exists()  # the file stays; the lock on it died with the process
    started = time.monotonic()
    after = _start(folder, "run-after", "--lock", "--lock-timeout", "5")
    out, err = after.communicate(timeout=300)
    assert after.returncode == 0, err
    assert re.search(r"Refreshed (\d+) of \1 models", out), out
    assert time.monotonic() - started < 120


def test_lock_timeout_without_lock_is_a_usage_error(workspace: Path, cli) -> None:
    result = cli("refresh", "--lock-timeout", "5")
    assert result.code == 2 and "--lock-timeout needs --lock" in result.err


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_bad_lock_timeout_is_refused(workspace: Path, cli, value: str) -> None:
    result = cli("refresh", "--lock", "--lock-timeout", value)
    assert result.code == 2 and "--lock-timeout" in result.err
