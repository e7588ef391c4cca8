"""Monthly value reports: a definition (month + as-of date) run against the app database gives an
immutable :class:`Snapshot` stored in ``report_snapshots``, which exports itself as PDF, HTML, CSV
or XLSX (docs/reports.md).

    snapshot = build_snapshot(ctx, month="2026-04")           # not stored
    snapshot = ctx.snapshots.save(snapshot)        # stored, with an id
    pdf = snapshot.export("pdf")                               # bytes, for a download button
    result = export_report(ctx, month="2026-04", fmt="pdf", out=Path("april.pdf"))   # the CLI's call
"""

from __future__ import annotations

from valuetrack.reports.export import (ReportResult, ReportWriteError, Restated, export_report, pending_for, restate_month,
                                      snapshot_for, write_atomic)
from valuetrack.reports.render import FORMATS
from valuetrack.reports.snapshot import Snapshot, build_snapshot, inputs_hash
from valuetrack.reports.store import SnapshotIntegrityError, SnapshotStore

__all__ = ["FORMATS", "ReportResult", "ReportWriteError", "Restated", "Snapshot", "SnapshotIntegrityError", "SnapshotStore",
           "build_snapshot", "export_report", "inputs_hash", "pending_for", "restate_month", "snapshot_for", "write_atomic"]
