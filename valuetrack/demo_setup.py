"""``valuetrack demo``: build the embedded demo warehouse (if not current) and register its models.

Idempotent: a current warehouse is not rebuilt and unchanged models keep their revision.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from valuetrack.context import Context, today_utc
from valuetrack.registry.manifest import load_manifest


@dataclass(frozen=True)
class DemoSetup:
    """What ``valuetrack demo`` did.

    Attributes:
        warehouse: path of the DuckDB file.
        manifest: path of the demo manifest.
        rebuilt: whether the warehouse was (re)generated.
        as_of: the data runs to the day before this date.
        created, updated, unchanged: registry changes.
        elapsed_s: wall time.
    """

    warehouse: str
    manifest: str
    rebuilt: bool
    as_of: dt.date
    created: int
    updated: int
    unchanged: int
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def describe(self) -> str:
        what = "Built" if self.rebuilt else "Kept the current"
        return (f"{what} demo warehouse {self.warehouse} (data to {self.as_of - dt.timedelta(days=1)}).\n"
                f"Models: {self.created} registered, {self.updated} updated, {self.unchanged} unchanged.\n"
                "Next: `valuetrack models list`, or `valuetrack serve` for the dashboard.")


def setup_demo(ctx: Context, *, as_of: dt.date | None = None, rebuild: bool = False, scale: float = 1.0) -> DemoSetup:
    from valuetrack.demo import build_demo, is_current

    started = time.perf_counter()
    ctx.require_edit("register the demo models")
    as_of = as_of or today_utc()
    folder = ctx.sample_data_dir
    folder.mkdir(parents=True, exist_ok=True)
    rebuilt = rebuild or not is_current(folder, as_of, scale=scale)
    if rebuilt:
        build_demo(folder, as_of=as_of, scale=scale)
    manifest = folder / "demo_models.toml"
    from valuetrack.actions import register

    plan = register(ctx, load_manifest(manifest))
    count = {a: sum(1 for c in plan if c.action == a) for a in ("create", "update", "unchanged")}
    return DemoSetup(str(folder / "demo.duckdb"), str(manifest), rebuilt, as_of, count["create"], count["update"],
                     count["unchanged"], round(time.perf_counter() - started, 2))
