"""Notes on SQLite and PostgreSQL (valuetrack/store/notes.py): stored with who, when and why, audited
in the same transaction, every bad field named with nothing written, withdrawn but never deleted."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.reliability.cases import VALID_MANIFEST
from valuetrack.access import Access, Actor
from valuetrack.errors import NotFound, ValidationError
from valuetrack.registry.manifest import parse_manifest
from valuetrack.registry.store import RegistryStore
from valuetrack.store.db import open_engine
from valuetrack.store.notes import NotesStore

ANA = Actor("ana@example.com")
D = dt.date


def test_notes_are_stored_audited_and_withdrawn(store_url: str) -> None:
    engine = open_engine(store_url)
    registry = RegistryStore(engine)
    registry.apply(parse_manifest(VALID_MANIFEST), ANA)
    notes = NotesStore(engine, Access(engine, None))
    a = notes.add(ANA, "churn-save-offers", "annotation", text="v3 launch <b>", category="release", start=D(2026, 3, 1))
    x = notes.add(ANA, "churn-save-offers", "exclusion", text="outage", start=D(2026, 3, 12), end=D(2026, 3, 14))
    o = notes.add(ANA, "churn-save-offers", "override", text="finance: 60 %", category="share", amount=0.6,
                  start=D(2026, 3, 1))
    p = notes.add(ANA, "churn-save-offers", "override", text="agreed bonus", category="amount", amount=-250.5,
                  start=D(2026, 4, 2))
    assert [n.id for n in notes.list("churn-save-offers")] == [a.id, x.id, o.id, p.id]
    assert (x.start, x.end, o.amount, o.end, p.amount) == (D(2026, 3, 12), D(2026, 3, 14), 0.6, None, -250.5)
    assert a.created_by == ANA.name and a.created_at.tzinfo is not None and a.text == "v3 launch <b>"
    assert notes.by_model() == {"churn-save-offers": [a, x, o, p]}

    done = notes.withdraw(ANA, o.id, reason="superseded")
    assert not done.active and done.withdrawn_by == ANA.name and done.withdrawn_reason == "superseded"
    assert [n.id for n in notes.list("churn-save-offers")] == [a.id, x.id, p.id]
    assert [n.id for n in notes.list("churn-save-offers", include_withdrawn=True)] == [a.id, x.id, o.id, p.id]
    with pytest.raises(ValidationError, match="already withdrawn"):
        notes.withdraw(ANA, o.id, reason="again")
    with pytest.raises(NotFound):
        notes.withdraw(ANA, 9999, reason="x")

    audit = registry.audit("churn-save-offers", limit=5)
    assert [e.action for e in audit] == ["withdraw", "override", "override", "exclude", "annotate"]
    assert audit[0].changes == {f"notes.{o.id}.withdrawn": [None, {"kind": "override", "reason": "superseded"}]}
    assert audit[3].changes[f"notes.{x.id}"][1]["start"] == "2026-03-12" and audit[3].note == "outage"
    assert all(e.actor == ANA.name and e.from_revision is None for e in audit)


@pytest.mark.parametrize("kind, fields, wanted", [
    ("exclusion", {"text": "", "start": D(2026, 3, 5), "end": D(2026, 3, 1)}, ["reason: required", "exclusion.to: 2026-03-01 is before"]),
    ("exclusion", {"text": "x", "start": D(2025, 1, 1), "end": D(2026, 3, 1)}, ["at most 366 days"]),
    ("override", {"text": "x", "category": "share", "amount": 1.4}, ["override.share: 1.4 is not between 0 and 1"]),
    ("override", {"text": "x", "category": "amount", "amount": 10.0}, ["override.on: give the day"]),
    ("override", {"text": "x", "category": "amount", "amount": float("nan"), "start": D(2026, 1, 1)}, ["finite number"]),
    ("override", {"text": "x"}, ["give either an amount"]),
    ("annotation", {"text": "x" * 1001, "start": D(2026, 1, 1)}, ["text: 1001 characters"]),
    ("annotation", {"text": "bell\x07", "start": D(2026, 1, 1)}, ["control characters"]),
    ("annotation", {"text": "x", "category": "party", "start": D(2026, 1, 1)}, ["annotation.category: 'party'"]),
    ("guess", {"text": "x"}, ["kind: 'guess'"]),
])
def test_bad_notes_name_the_field_and_write_nothing(tmp_path, kind: str, fields: dict, wanted: list[str]) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'app.db'}")
    RegistryStore(engine).apply(parse_manifest(VALID_MANIFEST), ANA)
    notes = NotesStore(engine, Access(engine, None))
    with engine.connect() as c:
        before = c.execute(sa.text("SELECT count(*) FROM audit_log")).scalar()
    with pytest.raises(ValidationError) as err:
        notes.add(ANA, "churn-save-offers", kind, **fields)
    for w in wanted:
        assert w in err.value.message, err.value.message
    assert len(err.value.problems) == len(wanted)
    assert notes.list(include_withdrawn=True) == []
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == before


def test_a_note_on_an_unknown_model_is_refused(tmp_path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'app.db'}")
    notes = NotesStore(engine, Access(engine, None))
    with pytest.raises(NotFound, match="no model named 'nope'"):
        notes.add(ANA, "nope", "annotation", text="x", start=D(2026, 1, 1))
