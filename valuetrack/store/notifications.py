"""The notification tables: flag state per model, events (keyed by their idempotency key) and the
delivery log. ``valuetrack.notifications`` decides what happens; this class only stores it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from valuetrack.store.schema import notification_deliveries, notification_events, notification_state


@dataclass(frozen=True)
class StoredEvent:
    """One notification event.

    Attributes:
        key: idempotency key: one event per key, ever.
        kind: raised | escalated | cleared | refresh_failed | test.
        model: the model it is about (None for a test message).
        as_of: the as-of date of the run that created it.
        title: the message's title.
        body: the message's text.
    """

    key: str
    kind: str
    model: str | None
    as_of: dt.date
    title: str
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "model": self.model, "as_of": self.as_of, "title": self.title}


class NotificationStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def states(self) -> dict[str, dict[str, Any]]:
        """Per model: active, flag_types, severity, absent_runs, last_as_of."""
        t = notification_state
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t)).mappings().all()
        return {r["model_name"]: dict(r) for r in rows}

    def save(self, states: dict[str, dict[str, Any]], events: Iterable[StoredEvent]) -> list[StoredEvent]:
        """Write the new states and the events whose key is new, in one transaction; returns those events."""
        now = dt.datetime.now(dt.timezone.utc)
        t, e = notification_state, notification_events
        added = []
        with self.engine.begin() as conn:
            for model, state in states.items():
                row = {**state, "model_name": model, "updated_at": now}
                if conn.execute(sa.update(t).where(t.c.model_name == model).values(**row)).rowcount == 0:
                    conn.execute(sa.insert(t).values(**row))
            for ev in events:
                if conn.execute(sa.select(e.c.key).where(e.c.key == ev.key)).first() is None:
                    conn.execute(sa.insert(e).values(key=ev.key, kind=ev.kind, model_name=ev.model, as_of=ev.as_of,
                                                     created_at=now, title=ev.title, body=ev.body))
                    added.append(ev)
        return added

    def undelivered(self, target: str, since: dt.datetime) -> list[StoredEvent]:
        """Events created since ``since`` that ``target`` has not acknowledged, oldest first."""
        e, d = notification_events, notification_deliveries
        sent = sa.select(d.c.event_key).where(d.c.target == target, d.c.status == "sent")
        query = (sa.select(e).where(e.c.created_at >= since, e.c.kind != "test", e.c.key.not_in(sent))
                 .order_by(e.c.created_at, e.c.key))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [StoredEvent(r["key"], r["kind"], r["model_name"], r["as_of"], r["title"], r["body"]) for r in rows]

    def record_delivery(self, event_key: str, target: str, ok: bool, error: str | None) -> None:
        d = notification_deliveries
        now = dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(d).where(d.c.event_key == event_key, d.c.target == target)
                                .values(status="sent" if ok else "failed", attempts=d.c.attempts + 1,
                                        last_error=error, updated_at=now))
            if done.rowcount == 0:
                conn.execute(sa.insert(d).values(event_key=event_key, target=target, status="sent" if ok else "failed",
                                                 attempts=1, last_error=error, updated_at=now))

    def log(self, limit: int = 200) -> list[dict[str, Any]]:
        """The delivery log, newest first: event, kind, model, target, status, attempts, error."""
        e, d = notification_events, notification_deliveries
        query = (sa.select(e.c.key, e.c.kind, e.c.model_name, d.c.target, d.c.status, d.c.attempts, d.c.last_error,
                           d.c.updated_at).join(d, d.c.event_key == e.c.key)
                 .order_by(d.c.updated_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]
