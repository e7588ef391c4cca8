"""Compare the newest as-of of two SQLite app databases' ledgers, row by row: what differs, by
JSON path, with how many rows differ there (nothing printed: the same rows).

    python scripts/ledger_diff.py before/valuetrack.db after/valuetrack.db

Ids, write times and the order of rows are ignored; everything else counts, the refreshes' clock
times and query durations included (two refreshes of the same day differ there, and only there
when the figures are the same). For checking that performance work changed no figure.
"""

from __future__ import annotations

import collections
import json
import sqlite3
import sys
from typing import Any

TABLES = ("ledger_models", "ledger_monthly", "ledger_timeline", "ledger_flags")
IGNORED = ("id", "asof_id", "valued_at", "raised_at", "created_at")


def newest(path: str) -> dict[str, list[dict[str, Any]]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    (asof_id,) = db.execute("SELECT max(id) FROM ledger_asofs").fetchone()

    def rows(sql: str) -> list[dict[str, Any]]:
        cur = db.execute(sql, (asof_id,))
        names = [d[0] for d in cur.description]
        out = [{k: v for k, v in zip(names, r) if k not in IGNORED} for r in cur]
        return sorted(out, key=lambda r: json.dumps(r, sort_keys=True, default=str))

    out = {"ledger_asofs": rows("SELECT * FROM ledger_asofs WHERE id = ?")}
    out.update({t: rows(f"SELECT * FROM {t} WHERE asof_id = ?") for t in TABLES})  # noqa: S608 - our names
    return out


def differences(a: Any, b: Any, path: str, found: collections.Counter) -> None:
    if isinstance(a, str) and isinstance(b, str) and a[:1] in "{[":
        try:
            a, b = json.loads(a), json.loads(b)
        except ValueError:
            pass
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                differences(a.get(k), b.get(k), f"{path}.{k}", found)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for x, y in zip(a, b):
            if x != y:
                differences(x, y, f"{path}[]", found)
    else:
        found[path] += 1


def main() -> None:
    a, b = newest(sys.argv[1]), newest(sys.argv[2])
    found: collections.Counter = collections.Counter()
    for table in a:
        if len(a[table]) != len(b[table]):
            found[f"{table}: {len(a[table])} rows against {len(b[table])}"] += 1
            continue
        for x, y in zip(a[table], b[table]):
            if x != y:
                differences(x, y, table, found)
    for path, n in found.most_common():
        print(n, path)


if __name__ == "__main__":
    main()
