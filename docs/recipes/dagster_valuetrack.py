"""Dagster: refresh valuetrack every morning, then fail the run when a model is flagged.

Load with `dagster dev -f dagster_valuetrack.py` (or add `defs` to your code location) and set
VALUETRACK_HOME (the folder holding valuetrack.toml and .venv). Exit codes (docs/scheduling.md):
refresh exits 1 when a model failed or another refresh held the lock past --lock-timeout;
`flags --fail-on-flags` exits 3 when any model is flagged. A non-zero exit fails the op.
"""

import os
import subprocess

import dagster as dg

HOME = os.environ.get("VALUETRACK_HOME", "/srv/valuetrack")


def _valuetrack(context: dg.OpExecutionContext, *args: str) -> None:
    done = subprocess.run([os.path.join(HOME, ".venv", "bin", "valuetrack"), *args], cwd=HOME,
                          capture_output=True, text=True)
    context.log.info(done.stdout)
    if done.returncode != 0:
        raise dg.Failure(description=f"valuetrack {args[0]} exited {done.returncode}: {done.stderr.strip()}")


@dg.op
def refresh(context: dg.OpExecutionContext) -> None:
    _valuetrack(context, "refresh", "--lock", "--lock-timeout", "900")


@dg.op(ins={"after": dg.In(dg.Nothing)})
def flags(context: dg.OpExecutionContext) -> None:
    _valuetrack(context, "flags", "--fail-on-flags")


@dg.job
def valuetrack_refresh() -> None:
    flags(after=refresh())


defs = dg.Definitions(
    jobs=[valuetrack_refresh],
    schedules=[dg.ScheduleDefinition(job=valuetrack_refresh, cron_schedule="15 6 * * *")],
)
