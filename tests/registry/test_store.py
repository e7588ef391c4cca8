"""The registry store: revisions, conflicts, audit log, all-or-nothing apply, access."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import VALID_MANIFEST
from valuetrack.access import Actor
from valuetrack.errors import AlreadyExists, Conflict, NotFound, PermissionDenied
from valuetrack.registry.manifest import ManifestEntry, parse_manifest
from valuetrack.registry.store import RegistryStore
from valuetrack.store.db import open_engine
from valuetrack.store.schema import audit_log, models

ANA = Actor("ana@example.com")
BEN = Actor("ben@example.com")
VIEWER = Actor("vic@example.com", role="viewer")


@pytest.fixture
def store(tmp_path) -> RegistryStore:
    return RegistryStore(open_engine(f"sqlite:///{tmp_path / 'app.db'}"))


def _entries():
    return parse_manifest(VALID_MANIFEST)


def _snapshot(store: RegistryStore) -> tuple:
    with store.engine.connect() as conn:
        return (conn.execute(select(models).order_by(models.c.name)).all(),
                conn.execute(select(audit_log).order_by(audit_log.c.id)).all())


def test_apply_creates_then_is_idempotent(store: RegistryStore) -> None:
    plan = store.apply(_entries(), ANA)
    assert [(c.name, c.action, c.to_revision) for c in plan] == [
        ("churn-save-offers", "create", 1), ("dynamic-pricing", "create", 1)]
    again = store.apply(_entries(), BEN)
    assert {c.action for c in again} == {"unchanged"}
    assert all(m.revision == 1 for m in store.list())


def test_update_bumps_revision_and_audits_the_diff(store: RegistryStore) -> None:
    store.apply(_entries(), ANA)
    spec = store.get("churn-save-offers").spec
    changed = store.update(spec.replace(monthly_cost=5000.0), expected_revision=1, actor=BEN)
    assert changed.revision == 2 and changed.updated_by == BEN.name
    entry = store.audit("churn-save-offers")[0]
    assert (entry.actor, entry.action, entry.from_revision, entry.to_revision) == (BEN.name, "update", 1, 2)
    assert entry.changes == {"monthly_cost": [4000.0, 5000.0]}


def test_two_edits_from_the_same_revision_second_is_a_conflict(store: RegistryStore) -> None:
    store.apply(_entries(), ANA)
    base = store.get("churn-save-offers")
    store.update(base.spec.replace(monthly_cost=4100.0), expected_revision=base.revision, actor=ANA)
    with pytest.raises(Conflict, match="changed since revision 1"):
        store.update(base.spec.replace(owner="someone@example.com"), expected_revision=base.revision, actor=BEN)
    current = store.get("churn-save-offers")
    assert current.revision == 2 and current.spec.monthly_cost == 4100.0 and current.spec.owner == base.spec.owner


def test_manifest_with_stale_revision_is_refused_and_nothing_is_written(store: RegistryStore) -> None:
    store.apply(_entries(), ANA)
    churn = store.get("churn-save-offers")
    store.update(churn.spec.replace(team="growth"), expected_revision=1, actor=BEN)
    before = _snapshot(store)
    pricing = store.get("dynamic-pricing")
    stale = [ManifestEntry(pricing.spec.replace(monthly_cost=1.0), 1), ManifestEntry(churn.spec.replace(monthly_cost=1.0), 1)]
    with pytest.raises(Conflict, match="exported at revision 1 but the registry is at revision 2"):
        store.apply(stale, ANA)
    assert _snapshot(store) == before  # the first entry's update was rolled back too


def test_dry_run_writes_nothing(store: RegistryStore) -> None:
    plan = store.apply(_entries(), ANA, dry_run=True)
    assert {c.action for c in plan} == {"create"}
    assert store.list() == [] and store.audit() == []


def test_models_absent_from_manifest_are_left_alone(store: RegistryStore) -> None:
    store.apply(_entries(), ANA)
    only_pricing = [e for e in _entries() if e.spec.name == "dynamic-pricing"]
    store.apply([ManifestEntry(only_pricing[0].spec.replace(team="revenue"))], ANA)
    assert {m.name for m in store.list()} == {"churn-save-offers", "dynamic-pricing"}


def test_create_existing_and_get_missing(store: RegistryStore) -> None:
    spec = _entries()[0].spec
    store.create(spec, ANA)
    with pytest.raises(AlreadyExists):
        store.create(spec, ANA)
    with pytest.raises(NotFound, match="no model named 'nope'"):
        store.get("nope")


def test_retire_keeps_history(store: RegistryStore) -> None:
    store.apply(_entries(), ANA)
    retired = store.retire("dynamic-pricing", BEN)
    assert retired.spec.status == "retired" and retired.revision == 2
    assert store.audit("dynamic-pricing")[0].action == "retire"
    assert [m.name for m in store.list(status="active")] == ["churn-save-offers"]


def test_every_change_is_in_the_audit_log(store: RegistryStore) -> None:
    store.apply(_entries(), ANA)
    spec = store.get("churn-save-offers").spec
    store.update(spec.replace(monthly_cost=1.0), expected_revision=1, actor=BEN)
    store.retire("churn-save-offers", ANA)
    with store.engine.connect() as conn:
        revisions = conn.execute(select(func.sum(models.c.revision))).scalar()
        audited = conn.execute(select(func.count()).select_from(audit_log)).scalar()
    assert audited == revisions == 4  # 2 creates + 1 update + 1 retire
    actions = [(a.model_name, a.action, a.actor) for a in reversed(store.audit())]
    assert actions == [("churn-save-offers", "create", ANA.name), ("dynamic-pricing", "create", ANA.name),
                       ("churn-save-offers", "update", BEN.name), ("churn-save-offers", "retire", ANA.name)]


def test_viewer_cannot_change_anything(store: RegistryStore) -> None:
    store.apply(_entries(), ANA)
    before = _snapshot(store)
    spec = store.get("churn-save-offers").spec
    for call in (lambda: store.apply(_entries(), VIEWER), lambda: store.create(spec.replace(name="new-one"), VIEWER),
                 lambda: store.update(spec.replace(team="x"), expected_revision=1, actor=VIEWER),
                 lambda: store.retire("churn-save-offers", VIEWER)):
        with pytest.raises(PermissionDenied, match="viewer"):
            call()
    assert _snapshot(store) == before
    assert store.apply(_entries(), VIEWER, dry_run=True)  # a viewer may preview
