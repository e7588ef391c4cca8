"""Registry edits as library actions: each change ends in a valuation that includes it, so the
ledger (and every page, ``value`` and report reading it) reflects the edit at once. The CLI and the
register page call these instead of the registry store directly (docs/decisions.md, D15).
"""

from __future__ import annotations

from typing import Any, Sequence

from valuetrack.context import Context
from valuetrack.registry.spec import ModelSpec
from valuetrack.registry.store import RegisteredModel
from valuetrack.valuation import revalue_after_edit


def register(ctx: Context, entries: Sequence[Any], *, dry_run: bool = False) -> list[Any]:
    """Create or update the models of a manifest (all or nothing), then value again if anything changed."""
    plan = ctx.registry.apply(entries, ctx.actor, dry_run=dry_run)
    if not dry_run and any(c.action != "unchanged" for c in plan):
        revalue_after_edit(ctx)
    return plan


def save(ctx: Context, spec: ModelSpec, *, expected_revision: int | None = None) -> RegisteredModel:
    """Create ``spec`` (``expected_revision`` None) or update it from that revision, then value again."""
    if expected_revision is None:
        stored = ctx.registry.create(spec, ctx.actor)
    else:
        stored = ctx.registry.update(spec, expected_revision=expected_revision, actor=ctx.actor)
    revalue_after_edit(ctx)
    return stored


def retire(ctx: Context, name: str, *, expected_revision: int | None = None) -> RegisteredModel:
    """Mark a model retired (history kept), then value again (its cost stops, it leaves the flags)."""
    stored = ctx.registry.retire(name, ctx.actor, expected_revision=expected_revision)
    revalue_after_edit(ctx)
    return stored
