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
    _check_shares(ctx, [e.spec for e in entries])
    plan = ctx.registry.apply(entries, ctx.actor, dry_run=dry_run)
    if not dry_run and any(c.action != "unchanged" for c in plan):
        revalue_after_edit(ctx)
    return plan


def save(ctx: Context, spec: ModelSpec, *, expected_revision: int | None = None) -> RegisteredModel:
    """Create ``spec`` (``expected_revision`` None) or update it from that revision, then value again."""
    _check_shares(ctx, [spec])
    if expected_revision is None:
        stored = ctx.registry.create(spec, ctx.actor)
    else:
        stored = ctx.registry.update(spec, expected_revision=expected_revision, actor=ctx.actor)
    revalue_after_edit(ctx)
    return stored


def _check_shares(ctx: Context, specs: Sequence[ModelSpec]) -> None:
    """Refuse an edit after which the models sharing the same bill rows would be charged more than
    the bill (their cost_source shares add up to more than 1; D41)."""
    from valuetrack.errors import ValidationError
    from valuetrack.value.billing import share_problems

    if not any(s.cost_source is not None for s in specs):
        return
    after = {m.name: m.spec for m in ctx.registry.list() if m.spec is not None}
    after.update({s.name: s for s in specs})
    problems = share_problems(after.values())
    if problems:
        raise ValidationError(problems)


def retire(ctx: Context, name: str, *, expected_revision: int | None = None, on: Any = None) -> RegisteredModel:
    """Mark a model retired (history kept), then value again (its cost stops, it leaves the flags).
    ``on``: the last day a model without exposures served (valuetrack.registry.store.RegistryStore.retire)."""
    stored = ctx.registry.retire(name, ctx.actor, expected_revision=expected_revision, on=on)
    revalue_after_edit(ctx)
    return stored


# -- notes on a model: annotations, excluded windows, overrides (docs/decisions.md D36, D37) -------


def notes(ctx: Context, name: str | None = None, *, include_withdrawn: bool = False) -> list[Any]:
    """A model's notes (every model's when ``name`` is None), oldest first; withdrawn ones when asked."""
    if name is not None:
        ctx.registry.get(name)  # NotFound with the registry's message
    return ctx.notes.list(name, include_withdrawn=include_withdrawn)


def add_note(ctx: Context, name: str, kind: str, *, text: str, category: str | None = None,
             start: Any = None, end: Any = None, amount: float | None = None) -> tuple[Any, Any]:
    """Store an annotation, an excluded window or an override (the store checks the role and every
    field), then value again; returns (the note, what the valuation did or None)."""
    note = ctx.notes.add(ctx.actor, name, kind, text=text, category=category, start=start, end=end, amount=amount)
    return note, revalue_after_edit(ctx)


def withdraw_note(ctx: Context, note_id: int, *, reason: str) -> tuple[Any, Any]:
    """Withdraw a note (kept, with who, when and why), then value again."""
    note = ctx.notes.withdraw(ctx.actor, note_id, reason=reason)
    return note, revalue_after_edit(ctx)
