"""Stored report snapshots (table ``report_snapshots``): insert and read, never update.

A snapshot's content is checked against its stored content hash on every read, so a row edited
behind valuetrack's back is refused rather than exported as if it were the issued report.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from valuetrack.errors import NotFound, ValuetrackError
from valuetrack.reports.snapshot import Snapshot, sha256_json
from valuetrack.store.schema import audit_log, ledger_finals
from valuetrack.store.schema import report_snapshots as t


class SnapshotIntegrityError(ValuetrackError):
    """A stored snapshot's content no longer matches the hash recorded when it was issued."""

    code = "snapshot_integrity"


class FinalTaken(ValuetrackError):
    """Another process recorded this version of the month first (nothing of this one was stored)."""

    code = "conflict"


class SnapshotStore:
    """Issued monthly reports in the app database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, snapshot: Snapshot, *, final: dict[str, Any] | None = None) -> Snapshot:
        """Store ``snapshot`` (one new row) and return it with its id.

        ``final`` makes it a version of a final month in the same transaction: a row of
        ``ledger_finals`` (version, the ledger valuation it pins, who, when; for a restatement also
        why, by how much and the per-model differences) and, for a restatement, an audit-log entry.
        FinalTaken when that version of the month exists already (nothing is stored)."""
        if snapshot.id is not None:
            raise ValuetrackError(f"snapshot {snapshot.id} is already stored; snapshots are immutable")
        created = snapshot.created_at or dt.datetime.now(dt.timezone.utc)
        try:
            with self.engine.begin() as c:
                new_id = int(c.execute(t.insert().values(
                    month=snapshot.month, status=snapshot.status, as_of=snapshot.as_of, created_at=created,
                    created_by=snapshot.created_by or "", version=snapshot.version, inputs_hash=snapshot.inputs_hash,
                    content_hash=sha256_json(snapshot.content), supersedes=snapshot.supersedes,
                    content=snapshot.content)).inserted_primary_key[0])
                if final is not None:
                    self._record_final(c, snapshot, new_id, created, final)
        except sa.exc.IntegrityError as exc:
            if final is None:
                raise
            raise FinalTaken(f"version {final['version']} of {snapshot.month} was recorded by someone else meanwhile; "
                             "nothing was stored: look at the month again") from exc
        return self.get(new_id)

    @staticmethod
    def _record_final_row(engine: Engine, snapshot: Snapshot, snapshot_id: int) -> None:
        """Version 1 for a final snapshot already stored (issued before months had versions)."""
        created = snapshot.created_at or dt.datetime.now(dt.timezone.utc)
        try:
            with engine.begin() as c:
                SnapshotStore._record_final(c, snapshot, snapshot_id, created, {"version": 1})
        except sa.exc.IntegrityError as exc:
            raise FinalTaken(f"version 1 of {snapshot.month} exists already") from exc

    @staticmethod
    def _record_final(c: Any, snapshot: Snapshot, snapshot_id: int, created: dt.datetime, final: dict[str, Any]) -> None:
        by = snapshot.created_by or ""
        c.execute(ledger_finals.insert().values(
            month=snapshot.month, version=final["version"], asof_id=snapshot.content["asof_id"], as_of=snapshot.as_of,
            alpha=snapshot.content["alpha"], snapshot_id=snapshot_id, created_at=created, created_by=by,
            reason=final.get("reason"), net_before=final.get("net_before"), net_after=snapshot.totals.get("net"),
            delta=final.get("delta"), differences=final.get("differences")))
        if final["version"] > 1:  # a restatement: the audit log says who changed a closed month, when and why
            changes = {"month": snapshot.month, "version": [final["version"] - 1, final["version"]],
                       "snapshot": [snapshot.supersedes, snapshot_id],
                       "net": [final.get("net_before"), snapshot.totals.get("net")],
                       **{f"models.{d['model']}.net": [d["net_before"], d["net_after"]]
                          for d in final.get("differences") or []}}
            c.execute(audit_log.insert().values(at=created, actor=by, action="restate", model_name=None,
                                                from_revision=None, to_revision=None, changes=changes,
                                                note=final.get("reason")))

    def get(self, snapshot_id: int) -> Snapshot:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t).where(t.c.id == snapshot_id)).mappings().first()
        if row is None:
            raise NotFound(f"report snapshot {snapshot_id} does not exist")
        return _snapshot(row)

    def latest(self, month: str, *, status: str | None = None) -> Snapshot | None:
        """The most recent snapshot of ``month`` (optionally only "final" or "provisional")."""
        stmt = sa.select(t).where(t.c.month == month)
        if status:
            stmt = stmt.where(t.c.status == status)
        with self.engine.connect() as c:
            row = c.execute(stmt.order_by(t.c.id.desc()).limit(1)).mappings().first()
        return _snapshot(row) if row else None

    def list(self, month: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Issued snapshots, newest first, without their content (for the Reports page)."""
        cols = [t.c.id, t.c.month, t.c.status, t.c.as_of, t.c.created_at, t.c.created_by, t.c.version,
                t.c.inputs_hash, t.c.supersedes]
        stmt = sa.select(*cols)
        if month:
            stmt = stmt.where(t.c.month == month)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(stmt.order_by(t.c.id.desc()).limit(limit)).mappings()]


def _snapshot(row: Any) -> Snapshot:
    content = row["content"]
    if sha256_json(content) != row["content_hash"]:
        raise SnapshotIntegrityError(f"report snapshot {row['id']} ({row['month']}) was modified after it was "
                                     "issued: its content no longer matches its hash; build a new one")
    created = row["created_at"]
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)
    return Snapshot(month=row["month"], status=row["status"], as_of=row["as_of"], inputs_hash=row["inputs_hash"],
                    content=content, id=row["id"], created_at=created, created_by=row["created_by"],
                    version=row["version"], supersedes=row["supersedes"])
