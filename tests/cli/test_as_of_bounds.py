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


def test_a_month_after_the_newest_valuation_says_which_valuation_was_read(workspace: Path, cli) -> None:
    """`value --as-of D` reads the newest valuation on or before D: a month that had not started at
    that valuation is refused naming it (the date asked for is not the date read) and how to value D."""
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    r = cli("value", "--month", "2026-03", "--as-of", "2026-04-15", "--json")
    assert r.code == 1
    message = r.json["error"]["message"]
    assert f"has not started as of {AS_OF}, the newest valuation on or before the as-of asked" in message
    assert "valuetrack revalue --as-of DATE" in message
