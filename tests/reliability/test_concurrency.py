"""16 concurrent writers (8 threads + 8 spawned processes) registering and editing models on the
same app database, on SQLite (WAL, busy timeout) and on PostgreSQL.

No lost update: every successful write is a distinct revision, revisions are contiguous per model,
an edit from a stale revision is refused as a Conflict (never last-writer-wins), the final state is
the last successful write, no duplicate model, and the audit log holds every write with its actor.

The duration per backend is $VALUETRACK_CONCURRENCY_SECONDS (default: 60 in CI, 20 elsewhere).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import types
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.reliability.workers import PRECREATED, base_spec, model_name, warm, writer
from valuetrack.access import Actor
from valuetrack.registry.store import RegistryStore
from valuetrack.store.db import dispose_all, open_engine
from valuetrack.store.schema import audit_log, models

DURATION_S = float(os.environ.get("VALUETRACK_CONCURRENCY_SECONDS") or (60 if os.environ.get("CI") else 20))
THREADS = PROCESSES = 8
RESULTS = Path(__file__).with_name("concurrency_results.json")


def _hammer(url: str) -> tuple[list[dict[str, Any]], float]:
    store = RegistryStore(open_engine(url))
    for i in range(PRECREATED):
        store.create(base_spec(model_name(i)), Actor("setup"))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool, ThreadPoolExecutor(THREADS) as threads:
        pool.map(warm, range(PROCESSES), chunksize=1)  # spawned processes import first, then all start together
        started = time.monotonic()
        procs = pool.starmap_async(writer, [(url, f"proc-{i}", DURATION_S, 100 + i) for i in range(PROCESSES)])
        futures = [threads.submit(writer, url, f"thread-{i}", DURATION_S, i) for i in range(THREADS)]
        results = [f.result() for f in futures] + procs.get(timeout=DURATION_S + 120)
    return results, time.monotonic() - started


def _verify(url: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    engine = open_engine(url)
    with engine.connect() as c:
        rows = c.execute(sa.select(models.c.name, models.c.revision, models.c.spec, models.c.updated_by)).all()
        audit = c.execute(sa.select(audit_log.c.model_name, audit_log.c.action, audit_log.c.actor,
                                    audit_log.c.from_revision, audit_log.c.to_revision)).all()
    names = [r.name for r in rows]
    assert len(names) == len(set(names)), "duplicate models"
    errors = [e for r in results for e in r["errors"]]
    assert errors == [], errors[:5]
    assert sum(r["stale_accepted"] for r in results) == 0, "an edit from a stale revision was accepted"

    writes = [(name, rev, cost, r["worker"]) for r in results for (name, rev, cost) in r["writes"]]
    creates = [(name, r["worker"]) for r in results for name in r["creates"]]
    by_model: dict[str, list[tuple]] = defaultdict(list)
    for w in writes:
        by_model[w[0]].append(w)
    # every successful write is its own revision: two writers never both "won" the same revision
    keys = [(w[0], w[1]) for w in writes]
    assert len(keys) == len(set(keys)), "two writes claimed the same revision (lost update)"
    created = defaultdict(int)
    for name, _ in creates:
        created[name] += 1
    assert all(v == 1 for v in created.values()), "a model was created twice"

    audit_by_model: dict[str, list[tuple]] = defaultdict(list)
    for a in audit:
        audit_by_model[a.model_name].append(a)
    final = {r.name: r for r in rows}
    for name, row in final.items():
        entries = sorted(audit_by_model[name], key=lambda a: a.to_revision)
        assert [a.to_revision for a in entries] == list(range(1, row.revision + 1)), f"{name}: revisions not contiguous"
        assert all(a.from_revision == a.to_revision - 1 for a in entries[1:]), name
        assert entries[0].action == "create"
        # every successful write is in the audit log, with its actor
        logged = {(a.to_revision, a.actor) for a in entries[1:]}
        assert logged == {(w[1], w[3]) for w in by_model[name]}, f"{name}: audit log differs from the writes"
        # the final state is the last successful write
        if by_model[name]:
            last = max(by_model[name], key=lambda w: w[1])
            assert last[1] == row.revision and row.spec["monthly_cost"] == last[2] and row.updated_by == last[3]
    return {"writes": len(writes), "creates": len(creates) + PRECREATED, "models": len(rows),
            "conflicts": sum(r["conflicts"] for r in results),
            "stale_refused": sum(r["stale_refused"] for r in results),
            "already_exists": sum(r["already_exists"] for r in results), "audit_entries": len(audit)}


def _record(backend: str, figures: dict[str, Any]) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[backend] = figures
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.mark.timeout(DURATION_S * 3 + 180)
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_16_concurrent_writers_lose_nothing(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # spawned children re-import the parent's __main__; after a Streamlit AppTest in the same session
    # that is app.py, which must not run in a writer: give them a bare __main__
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    url = f"sqlite:///{tmp_path / 'app.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    try:
        results, elapsed = _hammer(url)
        figures = _verify(url, results)
    finally:
        dispose_all()
    figures.update(writers=THREADS + PROCESSES, seconds=round(elapsed, 1),
                   writes_per_s=round(figures["writes"] / DURATION_S, 1), data_lost=0)
    _record(backend, figures)
    print(backend, figures)
    assert figures["writes"] > 16 and figures["stale_refused"] > 0
