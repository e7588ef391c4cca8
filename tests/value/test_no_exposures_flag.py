"""A model whose exposures query matches no row at all (its `model_value` names no model in the
table: e.g. a renamed copy, whose `model_value` defaults to its new name) was shown with its cost
and no estimate, and never flagged, so `flags --fail-on-flags` in a nightly job never caught it. A
refresh that found none is read as "no exposures since launch": the untrustworthy flag's stale rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from valuetrack.actions import save
from valuetrack.context import open_context

AS_OF = "2026-03-01"


def test_a_model_without_any_exposure_is_flagged_untrustworthy(workspace: Path, cli) -> None:
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    ctx = open_context()
    spec = ctx.registry.get("homepage-recs").spec
    exposures = dataclasses.replace(spec.attribution.exposures, model_value=None)  # defaults to the name
    save(ctx, spec.replace(name="homepage-recs-v2", display_name="Homepage recs v2",
                           attribution=dataclasses.replace(spec.attribution, exposures=exposures)))
    refreshed = cli("refresh", "--as-of", AS_OF, "--json", schema="refresh")
    assert refreshed.code == 0
    flags = cli("flags", "--as-of", AS_OF, "--json", schema="flags").json["flags"]
    mine = [f for f in flags if f["model"] == "homepage-recs-v2"]
    assert [f["type"] for f in mine] == ["untrustworthy"], flags
    launch = spec.interventions[0].start if spec.interventions else None
    assert "no exposures have arrived" in mine[0]["reason"]
    if launch is not None:
        import datetime as dt

        assert f"for {(dt.date.fromisoformat(AS_OF) - launch).days} days" in mine[0]["reason"]
    # the original, with its exposures, is not flagged for it
    assert not any(f["model"] == "homepage-recs" and "no exposures have arrived" in f["reason"] for f in flags)
