"""`refresh --lock` on a PostgreSQL app database: a session advisory lock that a second run waits
for and gives up on, and that the server releases when the holding process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from valuetrack.runlock import RunLocked, refresh_lock
from tests.reliability.conftest import ROOT


def test_advisory_lock_waits_gives_up_and_dies_with_its_holder(pg_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        import sqlalchemy as sa
        from valuetrack.runlock import refresh_lock
        engine = sa.create_engine({pg_url!r})
        with refresh_lock(engine, {pg_url!r}, 0):
            print("held", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        engine = sa.create_engine(pg_url)
        started = time.monotonic()
        with pytest.raises(RunLocked, match="another refresh is running"):
            with refresh_lock(engine, pg_url, 1.0):
                pass
        assert 0.9 <= time.monotonic() - started < 30  # it waited for the timeout, then gave up
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with refresh_lock(engine, pg_url, 30.0):  # the server released the dead session's lock
            with engine.connect() as c:
                held = c.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar()
            assert held == 1
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar() == 0
        engine.dispose()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
