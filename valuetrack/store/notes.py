"""Notes on a model in the app database: annotations, excluded windows and overrides.

* an **annotation** is a dated note (a release, an incident, a campaign) drawn on every chart of the
  model and listed in its report;
* an **excluded window** is a range of days left out of attribution (an outage, a tracking bug):
  the estimator never sees them and no value is claimed for them (docs/decisions.md D36);
* an **override** is a value adjustment agreed with finance: a fixed amount on a day, or a share of
  the estimated gross value counted over a range of days. It changes only the adjusted figures;
  statistics and flags use the unadjusted ones (D37).

Every row records who wrote it, when and why; a note is never deleted, only withdrawn (who, when,
why). Each change is written with its audit-log entry in one transaction, after the access check
(docs/architecture.md, "Access"). Callers use :mod:`valuetrack.actions`, which values again after
each change.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from valuetrack.access import Access, Actor
from valuetrack.errors import NotFound, ValidationError, ValuetrackError
from valuetrack.store.db import write_failure
from valuetrack.store.schema import audit_log, model_notes, models

KINDS = ("annotation", "exclusion", "override")
ANNOTATION_CATEGORIES = ("release", "incident", "campaign", "other")
OVERRIDE_CATEGORIES = ("amount", "share")
MAX_TEXT = 1000
"""Longest note or reason, in characters."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_EXCLUDED_DAYS = 366
"""Longest excluded window: a longer one is a different model period, not an outage."""


@dataclass(frozen=True)
class Note:
    """One note as stored.

    Attributes:
        id: its number (``valuetrack notes withdraw ID``).
        model: the model it is about.
        kind: "annotation", "exclusion" or "override".
        category: an annotation's kind (release, incident, campaign, other); an override's form
            ("amount" or "share"); None for an exclusion.
        start, end: an annotation's day (start); an exclusion's first and last day; an amount
            override's day (start); a share override's first and last day (None: open).
        amount: an override's amount (money, reporting currency; negative takes value away) or the
            share of the gross value counted (0 to 1); None otherwise.
        text: the note, or why (required).
        created_at, created_by: when and by whom (the name the store's access check returned).
        withdrawn_at, withdrawn_by, withdrawn_reason: set once withdrawn.
    """

    id: int
    model: str
    kind: str
    category: str | None
    start: dt.date | None
    end: dt.date | None
    amount: float | None
    text: str
    created_at: dt.datetime
    created_by: str
    withdrawn_at: dt.datetime | None = None
    withdrawn_by: str | None = None
    withdrawn_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    def to_dict(self) -> dict[str, Any]:
        def iso(v: Any) -> Any:
            if isinstance(v, dt.datetime):
                return (v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).isoformat(timespec="seconds")
            return v.isoformat() if isinstance(v, dt.date) else v

        return {"id": self.id, "model": self.model, "kind": self.kind, "category": self.category,
                "start": iso(self.start), "end": iso(self.end), "amount": self.amount, "text": self.text,
                "created_at": iso(self.created_at), "created_by": self.created_by, "active": self.active,
                "withdrawn_at": iso(self.withdrawn_at), "withdrawn_by": self.withdrawn_by,
                "withdrawn_reason": self.withdrawn_reason}


def check_note(kind: str, *, text: str, category: str | None = None, start: dt.date | None = None,
               end: dt.date | None = None, amount: float | None = None) -> dict[str, Any]:
    """The columns of a new note, or ValidationError listing every problem with its field."""
    problems: list[str] = []
    text = _text(text, "text" if kind == "annotation" else "reason", problems)
    row: dict[str, Any] = {"kind": kind, "text": text, "category": None, "start_day": start, "end_day": end,
                           "amount": None}
    if kind == "annotation":
        category = category or "other"
        if category not in ANNOTATION_CATEGORIES:
            problems.append(f"annotation.category: {category!r} is not one of {', '.join(ANNOTATION_CATEGORIES)}")
        if start is None:
            problems.append("annotation.on: give the day it happened (YYYY-MM-DD)")
        row.update(category=category, end_day=None)
    elif kind == "exclusion":
        if start is None or end is None:
            problems.append("exclusion.from / exclusion.to: give the first and the last day left out (YYYY-MM-DD)")
        elif end < start:
            problems.append(f"exclusion.to: {end} is before exclusion.from {start}; give the last day left out")
        elif (end - start).days + 1 > MAX_EXCLUDED_DAYS:
            problems.append(f"exclusion.to: the window is {(end - start).days + 1} days long; at most "
                            f"{MAX_EXCLUDED_DAYS} days can be excluded at once (a longer change is a new model period)")
    elif kind == "override":
        if category not in OVERRIDE_CATEGORIES:
            problems.append("override: give either an amount (--amount, with the day it counts on) or a share "
                            "counted (--share, between 0 and 1)")
        elif amount is None or not isinstance(amount, (int, float)) or not math.isfinite(float(amount)):
            problems.append(f"override.{category}: give a finite number")
        elif category == "share" and not 0.0 <= float(amount) <= 1.0:
            problems.append(f"override.share: {amount} is not between 0 and 1 (0.6 counts 60 % of the gross value)")
        elif category == "amount" and start is None:
            problems.append("override.on: give the day the amount counts on (YYYY-MM-DD); it falls in that day's month")
        if category == "amount":
            end = None
        if start is not None and end is not None and end < start:
            problems.append(f"override.to: {end} is before override.from {start}")
        row.update(category=category, amount=None if amount is None else float(amount), end_day=end)
    else:
        problems.append(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if problems:
        raise ValidationError(problems)
    return row


def _text(value: Any, field: str, problems: list[str]) -> str:
    text = str(value or "").strip()
    if not text:
        problems.append(f"{field}: required; say what happened or why (it is shown with the note)")
    elif len(text) > MAX_TEXT:
        problems.append(f"{field}: {len(text)} characters; at most {MAX_TEXT}")
    elif _CONTROL.search(text):
        problems.append(f"{field}: contains control characters (e.g. a terminal escape); remove them "
                        "(line breaks and tabs are fine)")
    return text


class NotesStore:
    """Notes on models, their withdrawal and their audit entries."""

    def __init__(self, engine: Engine, access: Access) -> None:
        self.engine = engine
        self.access = access

    # -- reading ------------------------------------------------------------------------------

    def list(self, model: str | None = None, *, include_withdrawn: bool = False) -> list[Note]:
        """Notes of one model (or every model), oldest first; withdrawn ones only when asked."""
        query = sa.select(model_notes).order_by(model_notes.c.id)
        if model is not None:
            query = query.where(model_notes.c.model_name == model)
        if not include_withdrawn:
            query = query.where(model_notes.c.withdrawn_at.is_(None))
        with self.engine.connect() as conn:
            return [_note(r) for r in conn.execute(query).mappings()]

    def by_model(self) -> dict[str, list[Note]]:
        """Every model's active notes (one query: the valuation reads them all)."""
        out: dict[str, list[Note]] = {}
        for note in self.list():
            out.setdefault(note.model, []).append(note)
        return out

    def get(self, note_id: int) -> Note:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(model_notes).where(model_notes.c.id == note_id)).mappings().first()
        if row is None:
            raise NotFound(f"no note number {note_id}; `valuetrack notes list MODEL` shows them")
        return _note(row)

    # -- writing ------------------------------------------------------------------------------

    def add(self, actor: Actor, model: str, kind: str, *, text: str, category: str | None = None,
            start: dt.date | None = None, end: dt.date | None = None, amount: float | None = None) -> Note:
        """Store a new note (checked first, every problem named) with its audit entry."""
        actor = self.access.require_edit(actor, {"annotation": "annotate models", "exclusion": "exclude days of models",
                                                 "override": "override model values"}.get(kind, "add notes"))
        row = check_note(kind, text=text, category=category, start=start, end=end, amount=amount)
        now = _now()
        with _begin(self.engine) as conn:
            if conn.execute(sa.select(models.c.name).where(models.c.name == model)).first() is None:
                raise NotFound(f"no model named {model!r} is registered; `valuetrack models list` shows them")
            note_id = conn.execute(model_notes.insert().values(model_name=model, created_at=now, created_by=actor.name,
                                                               **row)).inserted_primary_key[0]
            note = _note(conn.execute(sa.select(model_notes).where(model_notes.c.id == note_id)).mappings().one())
            summary = {k: v for k, v in note.to_dict().items()
                       if k in ("kind", "category", "start", "end", "amount", "text")}
            _audit(conn, actor, {"annotation": "annotate", "exclusion": "exclude", "override": "override"}[kind],
                   model, {f"notes.{note_id}": [None, summary]}, note.text, now)
        return note

    def withdraw(self, actor: Actor, note_id: int, *, reason: str) -> Note:
        """Withdraw a note (kept, marked withdrawn with who, when and why) with its audit entry."""
        actor = self.access.require_edit(actor, "withdraw notes")
        problems: list[str] = []
        reason = _text(reason, "reason", problems)
        if problems:
            raise ValidationError(problems)
        now = _now()
        with _begin(self.engine) as conn:
            row = conn.execute(sa.select(model_notes).where(model_notes.c.id == note_id)).mappings().first()
            if row is None:
                raise NotFound(f"no note number {note_id}; `valuetrack notes list MODEL` shows them")
            if row["withdrawn_at"] is not None:
                raise ValidationError(f"note {note_id}: already withdrawn on {row['withdrawn_at']:%Y-%m-%d} by "
                                      f"{row['withdrawn_by']}")
            done = conn.execute(model_notes.update().where(sa.and_(model_notes.c.id == note_id,
                                                                   model_notes.c.withdrawn_at.is_(None)))
                                .values(withdrawn_at=now, withdrawn_by=actor.name, withdrawn_reason=reason))
            if done.rowcount != 1:
                raise ValidationError(f"note {note_id}: withdrawn meanwhile by another user; reload")
            _audit(conn, actor, "withdraw", row["model_name"],
                   {f"notes.{note_id}.withdrawn": [None, {"kind": row["kind"], "reason": reason}]}, reason, now)
            note = _note(conn.execute(sa.select(model_notes).where(model_notes.c.id == note_id)).mappings().one())
        return note


class _begin:
    """engine.begin() that turns a locked or read-only app database into a clear error."""

    def __init__(self, engine: Engine) -> None:
        self._cm = engine.begin()

    def __enter__(self) -> Connection:
        try:
            return self._cm.__enter__()
        except OperationalError as exc:
            raise ValuetrackError(write_failure(exc.orig, done="nothing was written")) from None

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._cm.__exit__(*exc)
        except OperationalError as err:
            raise ValuetrackError(write_failure(err.orig, done="nothing was written")) from None


def _audit(conn: Connection, actor: Actor, action: str, model: str, changes: dict[str, Any], note: str,
           at: dt.datetime) -> None:
    conn.execute(audit_log.insert().values(at=at, actor=actor.name, action=action, model_name=model,
                                           from_revision=None, to_revision=None, changes=changes, note=note))


def _note(row: Mapping[str, Any]) -> Note:
    return Note(int(row["id"]), row["model_name"], row["kind"], row["category"], row["start_day"], row["end_day"],
                row["amount"], row["text"], _aware(row["created_at"]), row["created_by"], _aware(row["withdrawn_at"]),
                row["withdrawn_by"], row["withdrawn_reason"])


def _aware(v: dt.datetime | None) -> dt.datetime | None:
    if v is None or v.tzinfo is not None:
        return v
    return v.replace(tzinfo=dt.timezone.utc)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
