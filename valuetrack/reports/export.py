"""``valuetrack report``: pick (or issue) the month's snapshot, render it, write the file atomically.

Which snapshot is exported:

1. The month's latest snapshot is **final** and the as-of date asked for is not earlier than its
   own (or none is given): it is re-exported as issued. A closed month reads the same forever, even
   though later cohorts keep refining the per-unit effect; ``restate=True`` re-issues it on
   purpose (e.g. after correcting a model's value per unit), listing what changed.
2. Otherwise the inputs hash is computed for (month, as-of date). When it equals the latest
   snapshot's, that snapshot is re-exported (the PDF, HTML, CSV and XLSX of a run are one issue).
3. Otherwise a new snapshot is built and stored; it lists its differences from the previous one
   (e.g. provisional → final).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valuetrack.context import Context, today_utc
from valuetrack.errors import ParameterError
from valuetrack.formatting import money
from valuetrack.outputs import OutputWriteError, check_output, write_atomic
from valuetrack.reports.render import FORMATS
from valuetrack.reports.snapshot import Snapshot, build_snapshot, check_month, inputs_hash
from valuetrack.reports.store import SnapshotStore


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

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "month": self.month, "status": self.status,
                "as_of": self.as_of.isoformat(), "snapshot_id": self.snapshot_id, "reused": self.reused,
                "supersedes": self.supersedes, "models": self.models, "flagged": self.flagged, "net": self.net,
                "ci_net": list(self.ci_net) if self.ci_net else None, "currency": self.currency,
                "inputs_hash": self.inputs_hash, "bytes": self.bytes, "net_change": self.net_change}

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
        return line + f", as of {self.as_of}."


def snapshot_for(ctx: Context, *, month: str, as_of: dt.date | None = None, alpha: float = 0.05,
                 restate: bool = False) -> tuple[Snapshot, bool]:
    """The month's snapshot to export and whether it was reused (rules in the module docstring)."""
    store = ctx.snapshots
    latest = store.latest(month)
    if (latest is not None and latest.status == "final" and not restate
            and (as_of is None or as_of >= latest.as_of)):
        return latest, True
    as_of = as_of or today_utc()
    check_month(month, as_of)
    digest = inputs_hash(ctx, month=month, as_of=as_of, alpha=alpha)
    if latest is not None and latest.inputs_hash == digest:
        return latest, True
    restater = ctx.require_edit(f"restate the final report of {month}") if latest and latest.status == "final" else None
    snapshot = build_snapshot(ctx, month=month, as_of=as_of, alpha=alpha, previous=latest, inputs=digest)
    if restater is not None:  # the snapshot records the authenticated identity that replaced a final one
        snapshot = dataclasses.replace(snapshot, created_by=restater.name)
    return store.save(snapshot), False


def export_report(ctx: Context, *, month: str, fmt: str, out: Path | str, as_of: dt.date | None = None,
                  alpha: float = 0.05, restate: bool = False) -> ReportResult:
    """Export the monthly report for ``month`` to ``out`` in ``fmt`` (pdf, html, csv, xlsx).

    The file is written to a temporary file in the same folder and moved into place, so a failure
    leaves any existing file at ``out`` untouched and readers never see a half-written report.
    """
    if fmt not in FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    out = check_output(out, ctx.settings)
    snapshot, reused = snapshot_for(ctx, month=month, as_of=as_of, alpha=alpha, restate=restate)
    data = snapshot.export(fmt)
    write_atomic(out, data)
    t = snapshot.totals
    restated = snapshot.content.get("restatement") or {}
    return ReportResult(
        path=out, format=fmt, month=month, status=snapshot.status, as_of=snapshot.as_of, snapshot_id=int(snapshot.id),
        reused=reused, supersedes=snapshot.supersedes, models=sum(1 for m in snapshot.models if m["active_in_month"]),
        flagged=len({f["model"] for f in snapshot.content["flags"]}), net=float(t["net"]),
        ci_net=tuple(t["ci_net"]) if t.get("ci_net") else None, currency=snapshot.content["currency"],
        inputs_hash=snapshot.inputs_hash, bytes=len(data), net_change=restated.get("delta"))
