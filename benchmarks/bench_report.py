"""Monthly report for 50 models: time to issue the snapshot and produce the PDF.

Builds the demo company (scale 0.1), refreshes it, then registers copies of its models under new
names (A/B copies read the same exposures through ``model_value``) and copies their stored
aggregates in the app database, so the portfolio has 50 models without 40 more warehouse pulls.
The copies are valued once (``revalue``, timed apart). Timed: ``export_report(..., fmt="pdf")`` end
to end for a month whose snapshot does not exist yet (the ledger read, snapshot stored, charts
drawn, HTML rendered, PDF written; nothing is valued), then the
re-export of the stored snapshot (charts and PDF only), then the other formats.
``--quick`` uses 12 models.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

AS_OF = dt.date(2026, 6, 15)
MONTH = "2026-04"


def _portfolio(root: Path, models: int) -> None:
    from valuetrack.cli import main
    from valuetrack.context import open_context
    from valuetrack.registry.spec import ModelSpec
    from valuetrack.store import schema as s

    os.chdir(root)
    os.environ.pop("VALUETRACK_CONFIG", None)
    assert main(["demo", "--scale", "0.1", "--as-of", AS_OF.isoformat()]) == 0
    assert main(["refresh", "--as-of", AS_OF.isoformat()]) == 0
    ctx = open_context()
    base = ctx.registry.list()
    copies = []
    for i in range(models - len(base)):
        src = base[i % len(base)]
        d = src.spec.to_dict()
        name = f"{src.name[:50]}-copy{i + 1}"
        d["name"], d["display_name"] = name, f"{src.spec.display_name} (copy {i + 1})"
        ex = d.get("attribution", {}).get("exposures")
        if ex and ex.get("model"):
            ex["model_value"] = ex.get("model_value") or src.name
        ctx.registry.create(ModelSpec.from_dict(d), ctx.actor)
        copies.append((src, name))
    with ctx.engine.begin() as c:
        for src, name in copies:
            for table in (s.ab_aggregates, s.ab_day_totals, s.ab_crossovers, s.series_points, s.health_daily,
                          s.health_histogram, s.refreshes):
                cols = [col.name for col in table.c if col.name not in ("model_name", "id")]
                rows = [dict(r) for r in c.execute(sa.select(*[table.c[n] for n in cols])
                                                   .where(table.c.model_name == src.name)).mappings()]
                if rows:
                    c.execute(table.insert(), [{**r, "model_name": name} for r in rows])


def run(quick: bool) -> dict:
    from valuetrack.context import open_context
    from valuetrack.reports import export_report
    from valuetrack.store.db import dispose_all

    models = 12 if quick else 50
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        try:
            t0 = time.perf_counter()
            _portfolio(root, models)
            setup_s = time.perf_counter() - t0
            ctx = open_context()
            from valuetrack.valuation import revalue

            t0 = time.perf_counter()
            revalue(ctx, as_of=AS_OF)  # the copies' aggregates were written directly: value them once
            revalue_s = time.perf_counter() - t0
            out = root / "report.pdf"
            t0, c0 = time.perf_counter(), time.process_time()
            first = export_report(ctx, month=MONTH, fmt="pdf", out=out, as_of=AS_OF)
            issue_s, issue_cpu_s = time.perf_counter() - t0, time.process_time() - c0
            from valuetrack.reports.render import _html

            _html.cache_clear()  # time the re-export from the stored snapshot, charts included
            t0, c0 = time.perf_counter(), time.process_time()
            again = export_report(ctx, month=MONTH, fmt="pdf", out=out, as_of=AS_OF)
            reexport_s, reexport_cpu_s = time.perf_counter() - t0, time.process_time() - c0
            assert again.reused and again.snapshot_id == first.snapshot_id
            others = {}
            for fmt in ("html", "csv", "xlsx"):
                t0 = time.perf_counter()
                export_report(ctx, month=MONTH, fmt=fmt, out=root / f"report.{fmt}", as_of=AS_OF)
                others[f"{fmt}_s"] = round(time.perf_counter() - t0, 3)
            pages = None
            try:
                info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
                pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
            except (OSError, subprocess.CalledProcessError, StopIteration):
                pass
            return {
                "models": first.models, "month": MONTH, "as_of": AS_OF.isoformat(), "pages": pages,
                "pdf_bytes": first.bytes, "setup_s": round(setup_s, 2), "revalue_s": round(revalue_s, 2),
                "pdf_issue_s": round(issue_s, 3),
                "pdf_reexport_s": round(reexport_s, 3),
                "pdf_issue_cpu_s": round(issue_cpu_s, 3), "pdf_reexport_cpu_s": round(reexport_cpu_s, 3),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "per_model_issue_s": round(issue_s / max(first.models, 1), 4),
                **{f"reexport_{k}": v for k, v in others.items()},
                "note": "pdf_issue_s: the ledger read + snapshot stored + charts + HTML + PDF (no valuation); "
                        "pdf_reexport_s: the stored snapshot rendered again (charts + HTML + PDF); *_cpu_s: this "
                        "process's CPU time for the same (less sensitive than the wall time to other jobs on the "
                        "machine); load_average: 1, 5, 15 minutes at the end of the run",
            }
        finally:
            os.chdir(cwd)
            dispose_all()
