"""Run fakesnow's Snowflake stand-in server (HTTP, the real connector's wire protocol).

Run with the project's venv: ``python scripts/standins/fakesnow_server.py --host 127.0.0.1 --port P``.

It is ``fakesnow -s`` plus one fix: fakesnow 0.12 encodes TIMESTAMP columns for the connector as
Snowflake's (epoch, fraction[, timezone]) struct but drops the validity bitmap, so a NULL
timestamp reaches the client as 1970-01-01 00:00:00. The fix passes the nulls through as the
struct's mask; everything else is fakesnow unchanged.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import pyarrow as pa
import pyarrow.compute as pc

import fakesnow
import fakesnow.arrow

_timestamp_to_sf_struct = fakesnow.arrow.timestamp_to_sf_struct


def timestamp_to_sf_struct(ts: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    struct = _timestamp_to_sf_struct(ts)
    if ts.null_count == 0 or struct.null_count == ts.null_count:
        return struct
    # the connector reads a NULL from the children (as Snowflake sends it), so null them there
    # too and declare them nullable
    mask = pc.is_null(ts)
    children = [pc.if_else(mask, pa.scalar(None, f.type), struct.field(i)) for i, f in enumerate(struct.type)]
    fields = [f.with_nullable(True) for f in struct.type]
    return pa.StructArray.from_arrays(children, fields=fields, mask=mask)


fakesnow.arrow.timestamp_to_sf_struct = timestamp_to_sf_struct


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    # `fakesnow -s` stops on SIGINT only; the harness stops servers with SIGTERM
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        with fakesnow.server(port=args.port, host=args.host):
            print(f"fakesnow server ready on {args.host}:{args.port}", flush=True)
            stop.wait()
    except RuntimeError:  # uvicorn already logged why (e.g. port in use)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
