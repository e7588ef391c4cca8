"""Writer workers for the concurrency test: run in threads and in spawned processes alike."""

from __future__ import annotations

import random
import time
from typing import Any


POOL = 24  # model names writers create and edit: conc-00 .. conc-23
PRECREATED = 12


def model_name(i: int) -> str:
    return f"conc-{i:02d}"


def base_spec(name: str) -> Any:
    from valuetrack.registry.manifest import parse_manifest

    from tests.manifests import CHURN_MANIFEST

    return parse_manifest(CHURN_MANIFEST)[0].spec.replace(name=name)


def warm(_: int) -> None:
    """Import everything a writer needs (spawned processes start cold), then yield to the others."""
    import valuetrack.registry.store  # noqa: F401
    import valuetrack.store.db  # noqa: F401

    base_spec("warm-up")
    time.sleep(0.3)


def writer(url: str, worker: str, duration_s: float, seed: int) -> dict[str, Any]:
    """Register and edit models as fast as possible for ``duration_s``; report every outcome.

    Each edit reads the model (like a form being opened) and saves with the revision it read;
    every 10th edit deliberately saves against a revision it knows is stale.
    """
    from valuetrack.access import Actor
    from valuetrack.errors import AlreadyExists, Conflict, ValuetrackError
    from valuetrack.registry.store import RegistryStore
    from valuetrack.store.db import open_engine

    rng = random.Random(seed)
    store = RegistryStore(open_engine(url))
    actor = Actor(worker)
    out: dict[str, Any] = {"worker": worker, "writes": [], "creates": [], "conflicts": 0, "already_exists": 0,
                           "stale_refused": 0, "stale_accepted": 0, "errors": []}
    deadline = time.monotonic() + duration_s
    n = 0
    while time.monotonic() < deadline:
        n += 1
        name = model_name(rng.randrange(POOL))
        try:
            if rng.random() < 0.05:
                store.create(base_spec(name), actor)
                out["creates"].append(name)
                continue
            current = store.get(name)
            cost = float(f"{abs(hash(worker)) % 997}{n}")  # unique per write
            spec = current.spec.replace(monthly_cost=cost, owner=f"{worker}@example.com")
            stale = n % 10 == 0 and current.revision > 1
            expected = current.revision - 1 if stale else current.revision
            try:
                saved = store.update(spec, expected_revision=expected, actor=actor)
            except Conflict:
                out["stale_refused" if stale else "conflicts"] += 1
                continue
            if stale:
                out["stale_accepted"] += 1
            out["writes"].append((name, saved.revision, cost))
        except AlreadyExists:
            out["already_exists"] += 1
        except ValuetrackError as exc:
            if "no model named" in exc.message:
                continue  # not created yet
            out["errors"].append(exc.message)
    return out


