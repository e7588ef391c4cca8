"""``valuetrack report``: pick (or issue) the month's snapshot, render it, write the file atomically.

Which snapshot is exported:

1. The month's latest snapshot is **final**: it is re-exported as issued. A closed month reads the
   same forever, even though later cohorts keep refining the per-unit effect and registry changes
   (a backdated registration, a corrected cost) value it differently: the newer figures show as a
   **pending restatement** beside the final ones, until an editor applies it
   (:func:`restate`, with a reason), which issues the month's next version.
2. Otherwise the inputs hash is computed for (month, as-of date). When it equals the latest
   snapshot's, that snapshot is re-exported (the PDF, HTML, CSV and XLSX of a run are one issue).
3. Otherwise a new snapshot is built and stored; it lists its differences from the previous one
   (e.g. provisional → final). The first final snapshot of a month is its version 1: from then on
   the pages and ``value --month`` read the month from the valuation it pins (D34).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valuetrack.context import Context, today_utc
from valuetrack.errors import ParameterError, ValidationError, ValuetrackError
from valuetrack.formatting import money
from valuetrack.outputs import OutputWriteError, check_output, write_atomic
from valuetrack.reports.render import FORMATS
from valuetrack.reports.snapshot import Snapshot, build_snapshot, check_month, inputs_hash
from valuetrack.reports.store import FinalTaken, SnapshotStore

MAX_REASON = 2000  # characters of a restatement's reason


ReportWriteError = OutputWriteError  # the report file could not be written (kept name)


@dataclass(frozen=True)
class ReportResult:
    """What ``valuetrack report`` did.

    Attributes:
        path: the file written.
        format: "pdf", "html", "csv" or "xlsx".
        month: the report month.
        status: "provisional" or "final".
        as_of: the as-of date of the snapshot's figures.
        snapshot_id: the stored snapshot exported.
        reused: True when an existing snapshot was re-exported, False when this run issued it.
        supersedes: id of the snapshot this one replaces, or None.
        models: models live in the month.
        flagged: models flagged.
        net: total net value of the month (reporting currency).
        ci_net: its interval [lo, hi], or None.
        currency: the reporting currency.
        inputs_hash: the snapshot's inputs hash.
        bytes: size of the file written.
        net_change: change of the total net value against the superseded snapshot, or None.
        final_version: the version of a final month this snapshot is (1, 2, ...), or None.
        pending_restatement: a final month that a newer valuation values differently: that
            valuation's as-of date, total net value and the difference, and how many models
            changed (not applied; the report shows it beside the final figures); else None.
    """

    path: Path
    format: str
    month: str
    status: str
    as_of: dt.date
    snapshot_id: int
    reused: bool
    supersedes: int | None
    models: int
    flagged: int
    net: float
    ci_net: tuple[float, float] | None
    currency: str
    inputs_hash: str
    bytes: int
    net_change: float | None
    final_version: int | None = None
    pending_restatement: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "month": self.month, "status": self.status,
                "as_of": self.as_of.isoformat(), "snapshot_id": self.snapshot_id, "reused": self.reused,
                "supersedes": self.supersedes, "models": self.models, "flagged": self.flagged, "net": self.net,
                "ci_net": list(self.ci_net) if self.ci_net else None, "currency": self.currency,
                "inputs_hash": self.inputs_hash, "bytes": self.bytes, "net_change": self.net_change,
                "final_version": self.final_version, "pending_restatement": self.pending_restatement}

    def describe(self) -> str:
        how = "re-exported" if self.reused else "issued"
        line = (f"Wrote {self.path} ({self.format}, {self.bytes:,} bytes): {self.month} {self.status.upper()}, "
                f"{self.models} models live, net value {money(self.net, self.currency)}")
        if self.ci_net:
            line += f" (95% interval {money(self.ci_net[0], self.currency)} to {money(self.ci_net[1], self.currency)})"
        line += f", {self.flagged} flagged; snapshot {self.snapshot_id} {how}"
        if self.supersedes is not None and not self.reused:
            line += f", replacing snapshot {self.supersedes}"
            if self.net_change is not None:
                line += f" (net value {money(self.net_change, self.currency, signed=True)})"
        line += f", as of {self.as_of}."
        if self.final_version:
            line += f" Version {self.final_version} of the final month."
        p = self.pending_restatement
        if p:
            line += (f" PENDING RESTATEMENT: the valuation as of {p['as_of']} values the month at "
                     f"{money(p['net_after'], self.currency)} ({money(p['delta'], self.currency, signed=True)}, "
                     f"{p['models']} model(s) changed); not applied: `valuetrack restate --month {self.month} "
                     "--reason TEXT` (an editor) issues the next version.")
        return line


def snapshot_for(ctx: Context, *, month: str, as_of: dt.date | None = None, alpha: float = 0.05,
                 restate: bool = False, reason: str | None = None) -> tuple[Snapshot, bool]:
    """The month's snapshot to export and whether it was reused (rules in the module docstring);
    ``restate=True`` applies the month's pending restatement first (:func:`restate`, ``reason``
    required)."""
    store = ctx.snapshots
    if restate:
        return restate_month(ctx, month=month, reason=reason, as_of=as_of, alpha=alpha).snapshot, False
    latest = store.latest(month)
    if latest is not None and latest.status == "final":
        _adopt(ctx, latest)
        return latest, True
    as_of = as_of or today_utc()
    check_month(month, as_of)
    digest = inputs_hash(ctx, month=month, as_of=as_of, alpha=alpha)
    if latest is not None and latest.inputs_hash == digest:
        return latest, True
    snapshot = build_snapshot(ctx, month=month, as_of=as_of, alpha=alpha, previous=latest, inputs=digest)
    if snapshot.status != "final":
        return store.save(snapshot), False
    # the month's first final report: version 1, which the pages and `value --month` read from now on
    snapshot = dataclasses.replace(snapshot, content={**snapshot.content, "final_version": 1})
    try:
        return store.save(snapshot, final={"version": 1}), False
    except FinalTaken:  # issued by another process meanwhile: export that one
        return store.latest(month, status="final"), True


def _adopt(ctx: Context, snapshot: Snapshot) -> None:
    """A final snapshot issued before months had versions (valuetrack < D34) becomes version 1,
    pinned to the valuation it read (recorded in its content, else the newest valuation of its as-of
    date made before it was issued)."""
    if ctx.ledger.final(snapshot.month) is not None:
        return
    asof_id = snapshot.content.get("asof_id")
    if asof_id is None:
        rows = [r for r in ctx.ledger.asofs(500) if r["as_of"] == snapshot.as_of
                and r["alpha"] == snapshot.content["alpha"]
                and (snapshot.created_at is None or _utc(r["valued_at"]) <= snapshot.created_at)]
        if not rows:
            return
        asof_id = rows[0]["id"]
    pinned = dataclasses.replace(snapshot, content={**snapshot.content, "asof_id": asof_id})
    try:
        SnapshotStore._record_final_row(ctx.engine, pinned, int(snapshot.id))
    except FinalTaken:
        pass


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Restated:
    """A restatement applied to a final month: version ``version`` replaces ``version - 1``.

    Attributes:
        month, version: the month and its new version.
        snapshot: the new final snapshot (it records the restatement in ``content["restatement"]``).
        supersedes: the snapshot of the version it replaces.
        reason, by, at: why, who (as the app database knows them), when.
        net_before, net_after, delta: the month's total net value before and after, and the difference.
        models: the per-model differences applied (valuetrack.ledger.differences rows).
    """

    month: str
    version: int
    snapshot: Snapshot
    supersedes: int
    reason: str
    by: str
    at: dt.datetime
    net_before: float
    net_after: float
    delta: float
    currency: str
    models: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"month": self.month, "version": self.version, "snapshot_id": int(self.snapshot.id),
                "supersedes": self.supersedes, "reason": self.reason, "by": self.by, "at": self.at,
                "as_of": self.snapshot.as_of, "net_before": self.net_before, "net_after": self.net_after,
                "delta": self.delta, "currency": self.currency, "models": self.models}

    def describe(self) -> str:
        cur = self.currency
        lines = [f"Restated {self.month}: version {self.version} (snapshot {self.snapshot.id}, as of {self.snapshot.as_of}) "
                 f"replaces version {self.version - 1} (snapshot {self.supersedes}); total net value "
                 f"{money(self.net_before, cur)} → {money(self.net_after, cur)} ({money(self.delta, cur, signed=True)}).",
                 f"By {self.by} at {self.at:%Y-%m-%d %H:%M} UTC. Reason: {self.reason}"]
        for d in self.models:
            lines.append(f"  {d['model']}: {money(d['net_before'], cur)} → {money(d['net_after'], cur)} "
                         f"({money(d['delta'], cur, signed=True)}, {d['change']})")
        return "\n".join(lines)


def restate_month(ctx: Context, *, month: str, reason: str | None, as_of: dt.date | None = None,
                  alpha: float = 0.05) -> Restated:
    """Apply the pending restatement of a final month: an editor (decided here, where the write
    happens) with a reason issues the month's next version from the newest valuation's figures. The
    new final snapshot, its ``ledger_finals`` row (who, when, why, by how much, the per-model
    differences) and an audit-log entry are written in one transaction."""
    from valuetrack import ledger

    actor = ctx.require_edit(f"restate the final report of {month}")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("--reason: say why the final month is restated (e.g. 'fraud-screen registered late: "
                              "its November cost was missing'); the reason is kept with the new version")
    if len(reason) > MAX_REASON:
        raise ValidationError(f"--reason: at most {MAX_REASON} characters (got {len(reason)})")
    pv = ledger.portfolio(ctx, as_of=as_of, month=month, alpha=alpha)
    if pv.final is None:
        raise ValidationError(f"--month {month}: no final report has been issued for it, so there is nothing to "
                              f"restate (`valuetrack report --month {month}` issues it once its cohorts are mature)")
    if pv.pending is None:
        raise ValidationError(f"--month {month}: version {pv.final['version']} already has the figures of the newest "
                              "valuation; there is no pending restatement to apply")
    pending = pv.pending
    previous = ctx.snapshots.get(pv.final["snapshot_id"])
    at = dt.datetime.now(dt.timezone.utc)
    version = pv.final["version"] + 1
    record = {**pending, "kind": "restatement", "version": version, "version_before": pv.final["version"],
              "reason": reason, "by": actor.name, "at": at, "snapshot_id": previous.id, "status": previous.status,
              "created_at": previous.created_at}
    snapshot = build_snapshot(ctx, month=month, as_of=pending["as_of"], alpha=alpha, previous=previous,
                              restatement=_json(record))
    if snapshot.content["asof_id"] != pending["asof_id"]:
        raise ValuetrackError(f"a newer valuation of {month} landed while restating: nothing was stored; "
                              "look at the pending restatement again and apply it")
    if snapshot.status != "final":
        raise ValidationError(f"--month {month}: the newest valuation's figures are provisional "
                              f"({'; '.join(snapshot.content['provisional_reasons'])}); restate once they are final")
    snapshot = dataclasses.replace(snapshot, created_by=actor.name, created_at=at)
    saved = ctx.snapshots.save(snapshot, final={"version": version, "reason": reason, "net_before": pending["net_before"],
                                                "delta": pending["delta"], "differences": _json(pending["models"])})
    return Restated(month, version, saved, previous.id, reason, actor.name, at, pending["net_before"],
                    pending["net_after"], pending["delta"], pv.currency, pending["models"])


def pending_for(ctx: Context, snapshot: Snapshot, *, as_of: dt.date | None = None) -> dict[str, Any] | None:
    """The pending restatement shown beside a final snapshot (None when the snapshot is not the
    month's version in force or nothing is pending)."""
    from valuetrack import ledger

    if snapshot.status != "final":
        return None
    try:
        pv = ledger.portfolio(ctx, as_of=as_of, month=snapshot.month, alpha=snapshot.content["alpha"])
    except ValuetrackError:  # nothing valued as of that date: nothing can be pending
        return None
    if pv.final is None or pv.final["snapshot_id"] != snapshot.id or pv.pending is None:
        return None
    return _json(pv.pending)


def _json(value: Any) -> Any:
    from valuetrack.reports.snapshot import _jsonable

    return _jsonable(value)


def export_report(ctx: Context, *, month: str, fmt: str, out: Path | str, as_of: dt.date | None = None,
                  alpha: float = 0.05, restate: bool = False, reason: str | None = None) -> ReportResult:
    """Export the monthly report for ``month`` to ``out`` in ``fmt`` (pdf, html, csv, xlsx).

    The file is written to a temporary file in the same folder and moved into place, so a failure
    leaves any existing file at ``out`` untouched and readers never see a half-written report.
    """
    if fmt not in FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    out = check_output(out, ctx.settings, suffixes=(".html", ".htm") if fmt == "html" else (f".{fmt}",))
    snapshot, reused = snapshot_for(ctx, month=month, as_of=as_of, alpha=alpha, restate=restate, reason=reason)
    pending = pending_for(ctx, snapshot, as_of=as_of)
    data = snapshot.export(fmt, pending=pending)
    write_atomic(out, data)
    t = snapshot.totals
    restated = snapshot.content.get("restatement") or {}
    return ReportResult(
        path=out, format=fmt, month=month, status=snapshot.status, as_of=snapshot.as_of, snapshot_id=int(snapshot.id),
        reused=reused, supersedes=snapshot.supersedes, models=sum(1 for m in snapshot.models if m["active_in_month"]),
        flagged=len({f["model"] for f in snapshot.content["flags"]}), net=float(t["net"]),
        ci_net=tuple(t["ci_net"]) if t.get("ci_net") else None, currency=snapshot.content["currency"],
        inputs_hash=snapshot.inputs_hash, bytes=len(data), net_change=restated.get("delta"),
        final_version=snapshot.content.get("final_version"), pending_restatement=_pending_summary(pending))


def _pending_summary(pending: dict[str, Any] | None) -> dict[str, Any] | None:
    if not pending:
        return None
    return {"as_of": pending["as_of"], "net_before": pending["net_before"], "net_after": pending["net_after"],
            "delta": pending["delta"], "models": len(pending["models"])}
