"""A valuation as of a day that has not happened is refused: it would charge costs for days to come,
and every read that takes the newest valuation (`value`, `flags`, the pages) would show it from then
on. Up to tomorrow (UTC) is accepted, so that a user ahead of UTC may give their own today."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from valuetrack.context import open_context, today_utc

AS_OF = "2026-03-01"


def test_a_future_as_of_is_refused_and_changes_nothing(workspace: Path, cli) -> None:
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    ctx = open_context()
    asofs, refreshes = len(ctx.ledger.asofs()), len(ctx.aggregates.refreshes("homepage-recs"))
    future = today_utc() + dt.timedelta(days=2)
    for command in ("revalue", "refresh"):
        refused = cli(command, "--as-of", str(future))
        assert refused.code == 1, (command, refused.out)
        assert f"--as-of {future} is in the future" in refused.err and "Traceback" not in refused.err
    assert len(ctx.ledger.asofs()) == asofs and len(ctx.aggregates.refreshes("homepage-recs")) == refreshes
    assert cli("value", "--json", schema="value").json["as_of"] == AS_OF  # the default read is unchanged

    tomorrow = today_utc() + dt.timedelta(days=1)  # the latest accepted
    assert cli("revalue", "--as-of", str(tomorrow)).code == 0
    assert cli("value", "--json", schema="value").json["as_of"] == str(tomorrow)
