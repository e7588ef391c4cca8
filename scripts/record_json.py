"""Write the ledger record a valuation would store, as sorted JSON, to compare two versions of the
code figure by figure (performance work must not change a number).

    cd APP_FOLDER   # holds valuetrack.toml and its app database (use a copy: nothing is written)
    PYTHONPATH=/path/to/old/checkout python /path/to/scripts/record_json.py 2026-06-01 before.json
    PYTHONPATH=/path/to/new/checkout python /path/to/scripts/record_json.py 2026-06-01 after.json
    cmp before.json after.json

The record is :func:`valuetrack.valuation.build_record`'s (periods with their totals and overlaps,
every model's figures and input hash, the months, the charts' series (unpacked), the flags), with floats
written by ``repr`` (exact), so equal files mean bit-for-bit equal figures. It prints the CPU
seconds the valuation took.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
import time


def main(as_of: str, out: str) -> None:
    from valuetrack.context import open_context
    from valuetrack.store.ledger import jsonable
    from valuetrack.valuation import build_record

    ctx = open_context()
    start = time.process_time()
    record, _ = build_record(ctx, as_of=dt.date.fromisoformat(as_of), reason="compare", alpha=0.05,
                             token=ctx.ledger.token())
    print(f"valued in {time.process_time() - start:.2f} s of CPU", file=sys.stderr)
    try:  # the series are stored packed since D55: compare their values (an older checkout has no packing)
        from valuetrack.store.ledger import series_values
    except ImportError:
        def series_values(series: dict) -> dict:
            return series
    record.timeline = [{**row, "series": series_values(row["series"])} for row in record.timeline]
    # every field but the kept structural fits (a cache the next valuation may read, no figure: D52)
    fields = jsonable({f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name != "fits"})
    with open(out, "w") as f:
        json.dump(fields, f, sort_keys=True, indent=0, default=repr)


if __name__ == "__main__":
    main(*sys.argv[1:3])
