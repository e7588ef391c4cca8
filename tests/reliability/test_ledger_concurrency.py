"""The ledger under load, on SQLite and PostgreSQL: a refresh writes valuations while 8 readers
read what the pages read and 4 editors change models' costs (each edit valued at once).

- Readers always see one complete as-of: every model of the record they read belongs to it, and
  its totals are the sums of those very models' figures (never a mix of two valuations).
- Every edit ends in a valuation that includes it: the newest as-of carries each model's final
  registry revision and its final cost.
- Nothing is lost: every as-of a reader saw is still in the ledger, every edit is in the audit log.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.reliability.cases import run_cli
from valuetrack.store.db import dispose_all

AS_OF = "2026-03-01"
READERS, EDITORS, EDITS = 8, 4, 2


@pytest.fixture
def company(workspace: Path, store_url: str) -> Path:
    cfg = workspace / "valuetrack.toml"
    cfg.write_text(cfg.read_text().replace('url = "sqlite:///valuetrack.db"', f'url = "{store_url}"'))
    assert run_cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    first = run_cli("refresh", "--as-of", AS_OF)
    assert first.code == 0, first.err
    dispose_all()
    return workspace


@pytest.mark.timeout(900)
def test_readers_see_whole_valuations_and_every_edit_is_valued(company: Path) -> None:
    import datetime as dt

    from valuetrack import ledger
    from valuetrack.access import Actor
    from valuetrack.actions import save
    from valuetrack.context import open_context
    from valuetrack.errors import Conflict
    from valuetrack.refresh import refresh

    as_of = dt.date.fromisoformat(AS_OF)
    base = open_context()
    names = [m.name for m in base.registry.list(status="active")][:EDITORS]
    stop = threading.Event()
    seen: set[int] = set()
    reads, problems, final_cost = [0], [], {}

    def reader() -> None:
        ctx = open_context(actor=Actor("reader"))
        while not stop.is_set():
            pv = ledger.portfolio(ctx)
            rows = ctx.ledger.models(pv.asof_id)
            if {m.model for m in pv.models} != {r["model_name"] for r in rows}:
                problems.append(f"as-of {pv.asof_id}: models of another valuation")
            if any(m.as_of != pv.as_of for m in pv.models):
                problems.append(f"as-of {pv.asof_id}: figures of another date")
            cost = sum(m.cost for m in pv.models if m.state == "ok")
            if abs(pv.totals["cost"] - cost) > 1e-6 * max(1.0, cost):
                problems.append(f"as-of {pv.asof_id}: totals {pv.totals['cost']} != sum {cost}")
            record = ledger.model(ctx, names[0])
            if record.asof["id"] < pv.asof_id:
                problems.append("a model read an older valuation than the portfolio before it")
            seen.add(pv.asof_id)
            reads[0] += 1

    def editor(name: str, i: int) -> None:
        ctx = open_context(actor=Actor(f"editor-{i}@example.com"))
        for k in range(EDITS):
            while True:
                current = ctx.registry.get(name)
                cost = 1000.0 * (i + 1) + k + 0.25
                try:
                    save(ctx, current.spec.replace(monthly_cost=cost), expected_revision=current.revision)
                    final_cost[name] = cost
                    break
                except Conflict:
                    continue

    def refresher() -> None:
        refresh(open_context(actor=Actor("scheduler")), as_of=as_of)

    threads = [threading.Thread(target=reader) for _ in range(READERS)]
    writers = [threading.Thread(target=editor, args=(n, i)) for i, n in enumerate(names)]
    writers.append(threading.Thread(target=refresher))
    started = time.perf_counter()
    for t in threads + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started

    ctx = open_context()
    assert not problems, problems[:5]
    assert reads[0] > READERS and len(seen) > 1, (reads, seen)
    newest = ledger.portfolio(ctx)
    registered = {m.name: m for m in ctx.registry.list()}
    for m in newest.models:  # the newest valuation includes every edit
        assert m.registry_revision == registered[m.model].revision, m.model
    for name, cost in final_cost.items():
        assert registered[name].spec.monthly_cost == cost
        assert ledger.model(ctx, name).value.registry_revision == registered[name].revision
    kept = {a["id"] for a in ledger.history(ctx, limit=10_000)}
    assert seen <= kept  # nothing a reader saw was lost
    edits = [a for a in ctx.registry.audit() if a.actor.startswith("editor-")]
    assert len(edits) == EDITORS * EDITS
    print(f"{reads[0]} reads of {len(seen)} valuations, {len(edits)} edits, in {elapsed:.1f}s")
    dispose_all()
