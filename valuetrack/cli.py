"""The ``valuetrack`` command line. Each command is a thin call into the library, printing text or,
with ``--json``, one JSON document on stdout that validates against ``valuetrack/schemas/``.

Exit codes: 0 success, 1 an error the message explains, 2 bad usage, 3 flags present (only with
``--fail-on-flags``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from valuetrack import __version__
from sqlalchemy.exc import OperationalError

from valuetrack.errors import NoModels, ValidationError, ValuetrackError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FLAGS = 0, 1, 2, 3


class UsageError(ValuetrackError):
    exit_code = EXIT_USAGE
    code = "usage"


# ------------------------------------------------------------------------------------------------
# output helpers


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, dates → ISO strings, numpy scalars → Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str | Callable[[], str]) -> None:
    if args.json:
        body = {"version": __version__, **payload}
        print(json.dumps(_clean(body), indent=2, sort_keys=False))
    else:
        print(text() if callable(text) else text)


def _as_of(args: argparse.Namespace) -> dt.date:
    from valuetrack.context import today_utc

    return args.as_of or today_utc()


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def _alpha(value: str) -> float:
    try:
        a = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 < a < 0.5:
        raise argparse.ArgumentTypeError(f"--alpha must be between 0 and 0.5 (got {a})")
    return a


def _share(value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 < s < 1.0:
        raise argparse.ArgumentTypeError(f"--treatment-share must be strictly between 0 and 1 (got {s})")
    return s


def _positive_int(option: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"must be a whole number >= 1 (got {n})")
        return n
    return parse


def _positive_float(option: str, what: str) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not (math.isfinite(x) and x > 0):
            raise argparse.ArgumentTypeError(f"must be {what} > 0 (got {value})")
        return x
    return parse


def _non_negative_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not (math.isfinite(x) and x >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 (got {value})")
    return x


def _month(value: str) -> str:
    from valuetrack.value.portfolio import parse_month

    try:
        parse_month(value)
    except ValidationError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month YYYY-MM, e.g. 2026-05") from None
    return value


def _month_range(value: str) -> tuple[str, str]:
    first, sep, last = value.partition("..")
    if not sep:
        raise argparse.ArgumentTypeError(f"{value!r} is not a range of months YYYY-MM..YYYY-MM, e.g. 2026-01..2026-03")
    from valuetrack.ledger import months_between

    try:
        months_between(first, last)  # the checks the page's range goes through
    except ValidationError as exc:
        raise argparse.ArgumentTypeError("; ".join(p.removeprefix("--month: ") for p in exc.problems)) from None
    return first, last


def _ctx(args: argparse.Namespace):  # noqa: ANN202
    from valuetrack.context import open_context

    return open_context(args.config)


def _ctx_with_models(args: argparse.Namespace):  # noqa: ANN202
    """The context of a command that reports on the registered models: NoModels (exit 1) when there
    are none, without creating an app database in a folder that had none."""
    ctx = _ctx(args)
    _require_models(ctx)
    return ctx


def _require_models(ctx: Any) -> None:
    """NoModels when no model is registered (see :func:`_ctx_with_models`)."""
    from valuetrack.store.db import database_exists, require_folder

    exists = database_exists(ctx.settings.store_url)
    if not exists:
        require_folder(ctx.settings.store_url)  # a folder that is not there says so, not "no models"
    if not exists or not ctx.registry.list():
        where = f"settings: {ctx.settings.source}"
        raise NoModels("no models are registered here; run `valuetrack demo` or point VALUETRACK_CONFIG at your "
                       f"settings ({where})")


# ------------------------------------------------------------------------------------------------
# commands


def cmd_demo(args: argparse.Namespace) -> int:
    from valuetrack.demo_setup import setup_demo

    ctx = _ctx(args)
    result = setup_demo(ctx, as_of=args.as_of, rebuild=args.rebuild, scale=args.scale)
    emit(args, result.to_dict(), result.describe)
    return EXIT_OK


def cmd_models_list(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    rows = [m.summary() for m in ctx.registry.list(status=args.status)]

    def text() -> str:
        if not rows:
            return "No models registered. `valuetrack demo` registers the demo company's models."
        width = max(len(r["name"]) for r in rows)
        lines = [f"{'NAME':<{width}}  STATUS   REV  METHOD      TEAM          KPI"]
        lines += [f"{r['name']:<{width}}  {r['status']:<7}  {r['revision']:>3}  {r['method']:<10}  "
                  f"{r['team'][:12]:<12}  {r['kpi']}" for r in rows]
        return "\n".join(lines)

    emit(args, {"models": rows}, text)
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    from valuetrack.registry.manifest import dump_manifest
    from valuetrack.registry.store import entries_of

    from valuetrack import ledger
    from valuetrack.formatting import money

    ctx = _ctx(args)
    model = ctx.registry.get(args.name)
    audit = [a.to_dict() for a in ctx.registry.audit(args.name, limit=args.history)]
    try:
        record = ledger.model(ctx, args.name, as_of=args.as_of)
    except ledger.NotValued:
        record = None
    valuation = None if record is None else {
        "as_of": record.asof["as_of"], "valued_at": record.asof["valued_at"], "state": record.state,
        "error": record.error, "registry_revision": record.value.registry_revision, "refresh_id": record.refresh_id,
        "library_version": record.asof["library_version"], "input_hash": record.input_hash,
        "figures": record.value.to_dict(), "flags": [f.to_dict() for f in record.flags],
        "segments": record.detail.get("segments") or []}
    history = [] if record is None else [
        {"as_of": h["as_of"], "type": h["type"], "status": h["status"], "raised_on": h["raised_on"],
         "cleared_on": h["cleared_on"], "p_value": h["p_value"], "evidence": h["evidence"]} for h in record.history]
    payload = {"model": model.summary(), "spec": model.spec.to_dict(), "audit": audit, "valuation": valuation,
               "flag_history": history}

    def text() -> str:
        lines = [dump_manifest(entries_of([model])).rstrip(), ""]
        if record is None:
            lines.append("# not valued yet (`valuetrack refresh` or `valuetrack revalue`)")
        else:
            v = record.value
            lines.append(f"# valued as of {record.asof['as_of']}: net {money(v.net, v.currency)} to date, "
                         f"state {record.state}" + (f" ({record.error})" if record.error else ""))
            lines += [f"# flag {f.type}: {f.reason}" for f in record.flags]
        lines += ["", f"# history (latest {len(audit)})"]
        lines += [f"# {a['at']}  {a['actor']}  {a['action']}  rev {a['from_revision']} → {a['to_revision']}"
                  f"  {', '.join(a['changes'])[:100]}" for a in audit]
        return "\n".join(lines)

    emit(args, payload, text)
    return EXIT_OK


def cmd_models_register(args: argparse.Namespace) -> int:
    from valuetrack.registry.manifest import load_manifest

    ctx = _ctx(args)
    entries = load_manifest(args.file)
    _check_connections(ctx, entries)
    from valuetrack.actions import register

    plan = register(ctx, entries, dry_run=args.dry_run)
    counts = {a: sum(1 for c in plan if c.action == a) for a in ("create", "update", "unchanged")}

    def text() -> str:
        head = "Dry run, nothing written:" if args.dry_run else "Registered:"
        lines = [f"{head} {counts['create']} new, {counts['update']} updated, {counts['unchanged']} unchanged"]
        for c in plan:
            rev = f"rev {c.from_revision} → {c.to_revision}" if c.action == "update" else f"rev {c.to_revision}"
            lines.append(f"  {c.action:<9} {c.name} ({rev})")
            if c.action == "update" or (args.dry_run and c.action == "create" and args.verbose):
                lines += [f"      {k}: {old!r} → {new!r}" for k, (old, new) in c.changes.items()]
        return "\n".join(lines)

    emit(args, {"dry_run": args.dry_run, "counts": counts, "changes": [c.to_dict() for c in plan]}, text)
    return EXIT_OK


def _check_connections(ctx: Any, entries: Sequence[Any]) -> None:
    known = ctx.settings.connections
    problems = [
        f"model {e.spec.name!r}.connection: {e.spec.connection!r} is not a connection of {ctx.settings.source}; "
        f"known: {', '.join(sorted(known))}"
        for e in entries if e.spec.connection not in known
    ]
    if problems:
        raise ValidationError(problems)


def cmd_models_export(args: argparse.Namespace) -> int:
    from valuetrack.registry.manifest import dump_manifest
    from valuetrack.registry.store import entries_of

    ctx = _ctx(args)
    stored = ctx.registry.list()
    if args.name:
        stored = [m for m in stored if m.name in set(args.name)]
        missing = set(args.name) - {m.name for m in stored}
        if missing:
            raise ValidationError(f"--name: no model named {sorted(missing)[0]!r} is registered")
    text = dump_manifest(entries_of(stored))
    if args.out:
        from valuetrack.outputs import check_output, write_atomic

        write_atomic(check_output(args.out, ctx.settings, suffixes=(".toml",)), text)
        print(f"Wrote {len(stored)} models to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_models_import_mlflow(args: argparse.Namespace) -> int:
    from valuetrack.config import redact_url
    from valuetrack.outputs import check_output, write_atomic
    from valuetrack.registry.mlflow_import import import_mlflow

    ctx = _ctx(args)
    out = check_output(args.out, ctx.settings, suffixes=(".toml",))
    result = import_mlflow(ctx, args.tracking_uri, filter_string=args.filter, out=out)
    if not args.dry_run:
        write_atomic(out, result.text)

    def text() -> str:
        head = "Dry run, nothing written" if args.dry_run else f"Wrote {out}"
        lines = [f"{head}: {len(result.models)} models from MLflow at {redact_url(args.tracking_uri)}"]
        for m in result.models:
            lines.append(f"  {m.action:<9} {m.name} (MLflow {m.mlflow_name!r})"
                         + (f": {', '.join(m.changes)}" if m.changes else ""))
            if m.to_fill:
                lines.append(f"      to fill: {', '.join(m.to_fill)}")
        lines += [f"warning: {w}" for w in result.warnings]
        if not args.dry_run and any(m.to_fill for m in result.models):
            lines.append(f"Fill in every \"TO FILL\" in {out}, then: valuetrack models register --file {out}")
        elif not args.dry_run and result.models:
            lines.append(f"Next: valuetrack models register --file {out}")
        return "\n".join(lines)

    emit(args, {"dry_run": args.dry_run, "out": str(out), "tracking_uri": redact_url(args.tracking_uri),
                **result.to_dict()}, text)
    return EXIT_OK


def cmd_models_retire(args: argparse.Namespace) -> int:
    from valuetrack.actions import retire

    ctx = _ctx(args)
    model = retire(ctx, args.name, expected_revision=args.revision, on=args.on)
    emit(args, {"model": model.summary()}, f"Retired {model.name} (revision {model.revision}); its history is kept.")
    return EXIT_OK


def _note_lines(notes: Sequence[Any], currency: str) -> list[str]:
    """One line per note; control characters of the typed text become spaces (no terminal escapes)."""
    import re

    from valuetrack import notes_text

    plain = lambda t: re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", str(t))  # noqa: E731
    lines = []
    for n in notes:
        state = "" if n.active else f"  [withdrawn {n.withdrawn_at:%Y-%m-%d} by {n.withdrawn_by}: {n.withdrawn_reason}]"
        lines.append(plain(f"{n.id:>5}  {n.model}  {notes_text.what(n.to_dict(), currency)}: {n.text}  (by {n.created_by}, "
                           f"{n.created_at:%Y-%m-%d %H:%M}){state}"))
    return lines


def cmd_notes_list(args: argparse.Namespace) -> int:
    from valuetrack.actions import notes

    ctx = _ctx(args)
    found = notes(ctx, args.name, include_withdrawn=args.all)
    if args.kind:
        found = [n for n in found if n.kind == args.kind]
    emit(args, {"notes": [n.to_dict() for n in found]},
         lambda: "\n".join(_note_lines(found, ctx.settings.currency)) if found else "No notes." + ("" if args.all else " (--all shows withdrawn ones)"))
    return EXIT_OK


def _note_added(args: argparse.Namespace, kind: str, **fields: Any) -> int:
    from valuetrack.actions import add_note

    ctx = _ctx(args)
    note, valued = add_note(ctx, args.name, kind, **fields)
    emit(args, {"note": note.to_dict(), "valued": valued.to_dict() if valued else None},
         lambda: "\n".join([_note_lines([note], ctx.settings.currency)[0].replace(f"{note.id:>5}", f"Added note {note.id}:", 1),
                            valued.describe() if valued else "Not valued yet: the next refresh (or `valuetrack revalue`) "
                                                             "includes it."]))
    return EXIT_OK


def cmd_notes_annotate(args: argparse.Namespace) -> int:
    return _note_added(args, "annotation", text=args.text, category=args.category, start=args.on)


def cmd_notes_exclude(args: argparse.Namespace) -> int:
    return _note_added(args, "exclusion", text=args.reason, start=args.start, end=args.end)


def cmd_notes_override(args: argparse.Namespace) -> int:
    if (args.amount is None) == (args.share is None):
        raise UsageError("give either --amount (with --on) or --share (with optional --from/--to), not both")
    if args.amount is not None:
        if args.start or args.end:
            raise UsageError("--from/--to go with --share; an amount counts on one day (--on)")
        return _note_added(args, "override", text=args.reason, category="amount", amount=args.amount, start=args.on)
    if args.on:
        raise UsageError("--on goes with --amount; a share covers --from .. --to (default: every day)")
    return _note_added(args, "override", text=args.reason, category="share", amount=args.share, start=args.start,
                       end=args.end)


def cmd_notes_withdraw(args: argparse.Namespace) -> int:
    from valuetrack.actions import withdraw_note

    ctx = _ctx(args)
    note, valued = withdraw_note(ctx, args.id, reason=args.reason)
    emit(args, {"note": note.to_dict(), "valued": valued.to_dict() if valued else None},
         lambda: "\n".join([_note_lines([note], ctx.settings.currency)[0].replace(f"{note.id:>5}", f"Withdrew note {note.id}:", 1),
                            valued.describe() if valued else "Not valued yet."]))
    return EXIT_OK


def _finite(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {value})")
    return x


def _note_id(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a note number (`valuetrack notes list` shows them)") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"note numbers start at 1 (got {n})")
    return n


def cmd_refresh(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from valuetrack.refresh import mark_unvalued, refresh
    from valuetrack.valuation import early_valuation, revalue

    if args.lock_timeout is not None and not args.lock:
        raise UsageError("--lock-timeout needs --lock")
    ctx = _ctx(args)
    if args.notify:
        from valuetrack.notifications import targets

        targets(ctx)  # a missing or broken [notifications] section fails before any work
    if args.export_to:
        from valuetrack.connectors import get_connector

        get_connector(ctx.settings.connection(args.export_to)).check_write(args.export_table)
    _require_models(ctx)  # nothing registered: the wrong folder or settings, said so (not "0 of 0")
    sent = exported = None
    with _maybe_locked(ctx, args), early_valuation(ctx, _as_of(args)) as early:
        names = list(dict.fromkeys(args.model or [None]))  # each model named once, in the order given
        for name in names if len(names) > 1 else ():
            ctx.registry.get(name)  # an unknown name fails before any model is refreshed
        outcomes = [o for name in names for o in refresh(
            ctx, model=name, as_of=args.as_of, timeout_s=args.timeout, full=args.full, value=False,
            early=early if len(names) == 1 else None)]
        try:  # the refresh's outcomes are reported even when valuing afterwards fails
            done = revalue(ctx, as_of=_as_of(args), reason="refresh", workers=None, early=early)
            outcomes = mark_unvalued(outcomes, done.failures)
            valued: dict[str, Any] = done.to_dict()
        except ValuetrackError as exc:
            valued = {"error": exc.message}
        except SQLAlchemyError as exc:
            from valuetrack.store.db import write_failure

            valued = {"error": write_failure(getattr(exc, "orig", exc))}
        if args.export_to:
            from valuetrack.writeback import export_to_warehouse

            exported = export_to_warehouse(ctx, args.export_to, table=args.export_table, as_of=args.as_of)
        if args.notify:
            from valuetrack.notifications import notify

            sent = notify(ctx, as_of=args.as_of, refresh_outcomes=outcomes)
    failed = [o for o in outcomes if o.status != "ok"]
    if sent is not None and sent.failed:  # the refresh itself succeeded: warn, retry at the next run
        print(f"valuetrack: warning: {len(sent.failed)} notifications failed and will be retried at the next "
              f"run: {sent.failed[0].error}", file=sys.stderr)

    def text() -> str:
        lines = [f"Refreshed {len(outcomes) - len(failed)} of {len(outcomes)} models (as of {_as_of(args)})."]
        for o in outcomes:
            since = f"from {o.since_day}" if o.since_day else "full history"
            secs = o.cost.get("elapsed_s")
            detail = f"{o.rows} rows, {since}, {secs:.1f}s in the warehouse" if o.status == "ok" and secs is not None else (o.error or "")
            lines.append(f"  {o.status:<6} {o.model}: {detail}")
        if failed:
            lines.append("Failed models keep their previous figures, shown as stale.")
        if "error" in valued:
            lines.append(f"Valuing the portfolio failed: {valued['error']}; the last valuation stays in place "
                         "(`valuetrack revalue` values again).")
        if sent is not None:
            lines.append(sent.describe())
        if exported is not None:
            lines.append(exported.describe())
        return "\n".join(lines)

    payload = {"as_of": _as_of(args).isoformat(), "refreshed": [o.to_dict() for o in outcomes], "valuation": valued}
    if sent is not None:
        payload["notifications"] = sent.to_dict()
    if exported is not None:
        payload["export"] = exported.to_dict()
    emit(args, payload, text)
    return _report_failures([(o.model, o.error or "failed") for o in failed]
                            + ([("valuation", valued["error"])] if "error" in valued else []))


def _report_failures(failed: Sequence[tuple[str, str]]) -> int:
    """Each model that failed, on stderr (everything else was stored); exit 1 when any did."""
    for model, why in failed:
        print(f"valuetrack: {model}: {why}", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK


def _maybe_locked(ctx: Any, args: argparse.Namespace):  # noqa: ANN202
    import contextlib

    if not args.lock:
        return contextlib.nullcontext()
    from valuetrack.runlock import refresh_lock

    ctx.require_edit("refresh models")
    return refresh_lock(ctx.engine, ctx.settings.store_url, args.lock_timeout or 0.0)


def cmd_notify(args: argparse.Namespace) -> int:
    from valuetrack.notifications import notify, send_test

    ctx = _ctx(args)
    report = send_test(ctx) if args.test else notify(ctx, as_of=args.as_of)

    def text() -> str:
        if args.test:
            return "\n".join(f"{d.target}: {'sent' if d.status == 'sent' else d.error}" for d in report.deliveries)
        return report.describe()

    emit(args, {"test": args.test, **report.to_dict()}, text)
    return EXIT_ERROR if report.failed else EXIT_OK


def cmd_value(args: argparse.Namespace) -> int:
    from valuetrack import ledger
    from valuetrack.formatting import interval, money, money_column, pct

    ctx = _ctx_with_models(args)
    if args.months:  # the stored months summed (docs/decisions.md D43), as the page's period filter does
        pv = ledger.portfolio_range(ctx, *args.months, as_of=args.as_of, alpha=args.alpha)
    else:
        pv = ledger.portfolio(ctx, as_of=args.as_of, month=args.month, alpha=args.alpha)
    payload = pv.to_dict()
    if args.var:
        payload["var"] = ctx.var.latest(pv.as_of) or {
            "as_of": None, "error": "no value at risk is stored yet: run `valuetrack refresh` to compute it"}

    def text() -> str:
        t = pv.totals
        cur = pv.currency
        lines = [f"Value {pv.period} ({pv.period_start} to {pv.period_end}), as of {pv.as_of}, in {cur}",
                 f"Portfolio net value (running costs) {money(t['net'], cur)}"
                 + (f" (95% interval {interval(t['ci_net'], cur)})" if t["ci_net"] else ""),
                 f"Portfolio net value (fully loaded: one-off costs amortised) {money(t.get('net_fully_loaded'), cur)}",
                 *([f"Portfolio net value adjusted for overrides agreed with finance {money(t['net_adjusted'], cur)} "
                    f"({money(t['override_amount'], cur, signed=True)} from overrides; statistics and flags use the "
                    "unadjusted figure)"] if t.get("override_amount") else []),
                 "", "NET and ROI are on running costs (one-off costs are not included; see --json's *_fully_loaded).",
                 f"{'MODEL':<24}{'NET':>12}{'95% INTERVAL':>26}{'ROI':>9}{'P(>0)':>8}  NOTE"]
        models = sorted(pv.models, key=lambda m: -(m.net if m.net is not None else -1e18))
        nets = money_column([m.net for m in models], cur)  # one precision per column
        ends = money_column([e for m in models for e in (m.ci_net or [])], cur)
        for m, net in zip(models, nets):
            ci = f"{ends.pop(0)} to {ends.pop(0)}" if m.ci_net else "—"
            note = "provisional" if m.provisional else (m.reason or "")
            if m.native and m.state == "ok":  # a model in another currency: its own net beside
                note = f"{money(m.native.get('net'), m.native['currency'])} in {m.native['currency']}; " + note
            if m.state != "ok":
                note = "NOT VALUED" + (f" (last valued {m.last_valued})" if m.last_valued else "") + f": {m.error}"
            elif m.gross is None:
                note = f"no estimate: its cost {money(m.cost, cur, cents=True)} counts in the total"
            lines.append(f"{m.model[:23]:<24}{net:>12}{ci:>26}{pct(m.roi):>9}{pct(m.prob_positive):>8}  {note}")
        if t["not_valued"]:
            lines.append(f"{t['not_valued']} model(s) could not be valued; the totals leave them out.")
        r = t.get("reconciliation")
        if r is not None:
            lines += ["", f"Sum of the rows {money(r['rows'], cur, cents=True)} − overlap counted once "
                      f"{money(-r['overlap'], cur, cents=True)} − cost of models without an estimate "
                      f"{money(-r['no_estimate_cost'], cur, cents=True)} = net value {money(r['total'], cur, cents=True)}"]
        lines += [f"Warning: {w}" for w in t.get("overlap_warnings") or []]
        lines += _final_lines(pv)
        if args.var:
            lines += ["", *_var_lines(payload["var"])]
        return "\n".join(lines)

    emit(args, payload, text)
    return _report_failures([(m.model, m.error or "could not be valued") for m in pv.failures])


def _final_lines(pv: Any) -> list[str]:
    """A final month: which version the figures are, and the pending restatement, if any."""
    from valuetrack.formatting import money

    if pv.final is None:
        return []
    f, cur = pv.final, pv.currency
    lines = ["", f"FINAL, version {f['version']} (report snapshot {f['snapshot_id']}, figures as of {f['as_of']})"
             + (f", restated by {f['created_by']}: {f['reason']}" if f["reason"] else "")]
    p = pv.pending
    if p:
        lines.append(f"PENDING RESTATEMENT (not applied): the valuation as of {p['as_of']} values {pv.period} at "
                     f"{money(p['net_after'], cur)} ({money(p['delta'], cur, signed=True)}):")
        for d in p["models"]:
            lines.append(f"  {d['model']}: {money(d['net_before'], cur)} → {money(d['net_after'], cur)} "
                         f"({money(d['delta'], cur, signed=True)}, {d['change']})")
        lines.append(f"  Apply it: valuetrack restate --month {pv.period} --reason TEXT (an editor)")
    return lines


def _var_lines(var: dict[str, Any]) -> list[str]:
    from valuetrack.formatting import money

    if "error" in var:
        return [f"Value at risk: {var['error']}"]
    cur, lines = var["currency"], [f"Value at risk of the portfolio (as of {var['as_of']}; "
                                   f"{len(var['models'])} models, {var['paths']} simulated paths)"]
    for h, label in (("12m", "next 12 months"), ("1m", "next month")):
        r = var["horizons"].get(h)
        if r:
            lines.append(f"  {label:<15} expected {money(r['expected'], cur)}, 5% VaR {money(r['var'], cur)}, "
                         f"expected shortfall {money(r['es'], cur)}")
    lines += [f"  left out: {o['model']} ({o['reason']})" for o in var["left_out"]]
    return lines


def cmd_flags(args: argparse.Namespace) -> int:
    from valuetrack import ledger
    from valuetrack.formatting import money

    ctx = _ctx_with_models(args)
    pv = ledger.portfolio(ctx, as_of=args.as_of, alpha=args.alpha)

    def text() -> str:
        if not pv.flags:
            return f"No model is flagged (as of {pv.as_of})."
        lines = [f"{len({f.model for f in pv.flags})} models flagged (as of {pv.as_of}), the worst first:"]
        for f in pv.flag_dicts():  # ordered by severity, then money at stake (valuetrack.value.flags.ordered)
            stake = f"; {money(f['at_stake'], pv.currency)} at stake" if f.get("at_stake") is not None else ""
            lines += [f"- {f['model']}: {f['type']} (raised on {f['raised_on']}{stake})", f"    {f['reason']}",
                      f"    Next: {f['action']}"]
        return "\n".join(lines)

    emit(args, {"as_of": pv.as_of, "alpha": pv.alpha, "flags": pv.flag_dicts(),
                "models_checked": len(pv.models)}, text)
    return EXIT_FLAGS if args.fail_on_flags and pv.flags else EXIT_OK


def cmd_revalue(args: argparse.Namespace) -> int:
    from valuetrack.valuation import revalue

    ctx = _ctx_with_models(args)
    ctx.require_edit("value the portfolio")
    done = revalue(ctx, as_of=args.as_of, reason="revalue", alpha=args.alpha, workers=None)
    emit(args, done.to_dict(), done.describe)
    return _report_failures(list(done.failures.items()))  # as refresh and value: each on stderr, exit 1


def cmd_report(args: argparse.Namespace) -> int:
    from valuetrack.reports import export_report

    ctx = _ctx_with_models(args)
    result = export_report(ctx, month=args.month, fmt=args.format, out=Path(args.out), as_of=args.as_of,
                           restate=args.restate, reason=args.reason)
    emit(args, result.to_dict(), result.describe)
    return EXIT_OK


def cmd_restate(args: argparse.Namespace) -> int:
    from valuetrack.reports import restate_month

    ctx = _ctx_with_models(args)
    done = restate_month(ctx, month=args.month, reason=args.reason, as_of=args.as_of, alpha=args.alpha)
    emit(args, done.to_dict(), done.describe)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from valuetrack.writeback import export_to_warehouse

    ctx = _ctx(args)
    result = export_to_warehouse(ctx, args.to_warehouse, table=args.table, as_of=args.as_of)
    emit(args, result.to_dict(), result.describe)
    return EXIT_OK


def cmd_attribute_ab(args: argparse.Namespace) -> int:
    from valuetrack.attribution.ab import attribute_frame
    from valuetrack.io import read_table

    result = attribute_frame(read_table(args.data), metric=args.metric, arm_col=args.arm_col,
                             control=args.control, treatment=args.treatment, covariate=args.covariate,
                             alpha=args.alpha, planned_treatment_share=args.treatment_share,
                             gbstats_compat=args.compat == "gbstats")
    return _emit_result(args, result)


def cmd_attribute_ts(args: argparse.Namespace) -> int:
    from valuetrack.attribution.ts_frame import attribute_ts_frame
    from valuetrack.io import read_table

    controls = [c for c in (args.controls or "").split(",") if c]
    result = attribute_ts_frame(read_table(args.data), date_col=args.date_col, metric=args.metric,
                                intervention=args.intervention, controls=controls, method=args.method,
                                alpha=args.alpha, seed=args.seed)
    return _emit_result(args, result)


def cmd_attribute_did(args: argparse.Namespace) -> int:
    from valuetrack.attribution.panel import attribute_did_frame
    from valuetrack.io import read_table

    if (args.unit_col is None) == (args.group_col is None):
        raise UsageError("give either --unit-col with --treated, or --group-col with --treated-value")
    if args.unit_col is not None and not args.treated:
        raise UsageError("--unit-col needs --treated UNIT[,UNIT]")
    if args.group_col is not None and args.treated_value is None:
        raise UsageError("--group-col needs --treated-value V")
    treated = [t for t in (args.treated or "").split(",") if t]
    result = attribute_did_frame(read_table(args.data), time_col=args.time_col, metric=args.metric,
                                 intervention=args.intervention, unit_col=args.unit_col, treated=treated,
                                 group_col=args.group_col, treated_value=args.treated_value,
                                 method="synth" if args.method == "synthetic_control" else args.method,
                                 se=args.se, alpha=args.alpha)
    return _emit_result(args, result)


def _emit_result(args: argparse.Namespace, result: Any) -> int:
    payload = {"as_of": _as_of(args).isoformat(), **result.to_dict()}

    def text() -> str:
        clean = _clean(payload)
        return "\n".join(f"{k:>16}: {v}" for k, v in clean.items() if not isinstance(v, (dict, list)) or k.startswith(("ci", "cs")))

    emit(args, payload, text)
    return EXIT_OK


# As .streamlit/config.toml in the checkout (serve runs from the user's folder, where that file is not):
# always headless (a non-headless first run makes Streamlit stop and ask for an e-mail address), no
# telemetry (works offline), and no "Deploy" button or developer menu for users.
# browser.serverAddress: the address printed at start; set, Streamlit does not look up the machine's
# external IP on the internet (a request that fails offline).
SERVE_OPTIONS = ("--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
                 "--browser.serverAddress", "localhost")


def cmd_serve(args: argparse.Namespace) -> int:
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.exists():
        raise ValuetrackError(f"app.py not found next to the package ({app}); run from a checkout of valuetrack")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port), *SERVE_OPTIONS]
    env = dict(os.environ)
    if args.config:
        env["VALUETRACK_CONFIG"] = str(Path(args.config).resolve())
    url = f"http://localhost:{args.port}"
    print(f"valuetrack dashboard: {url}  (Ctrl+C stops it)", file=sys.stderr)
    import signal

    with subprocess.Popen(cmd, env=env) as proc:
        # stopping `valuetrack serve` (Ctrl+C, SIGTERM from a supervisor) stops the server too
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        if not args.headless:
            _open_browser_when_up(url, proc)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()


def wait_until_serving(url: str, proc: subprocess.Popen | None = None, timeout_s: float = 120.0) -> bool:
    """Poll the dashboard's health address until it answers (True), or until the server process
    ``proc`` ends or ``timeout_s`` passes (False). Also for scripts, benchmarks and browser tests."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return True
        except OSError:
            time.sleep(0.5)
    return False


def _open_browser_when_up(url: str, proc: subprocess.Popen) -> None:
    import threading
    import webbrowser

    def wait_and_open() -> None:
        if wait_until_serving(url, proc, timeout_s=60.0):
            webbrowser.open(url)

    threading.Thread(target=wait_and_open, daemon=True).start()


# ------------------------------------------------------------------------------------------------
# parser


def _methods_reading(section: str) -> list[str]:
    """The registered methods that read one manifest section (the `attribute` subcommands' choices)."""
    from valuetrack.attribution import methods

    return [m.name for m in methods.all_methods() if m.sections == (section,)]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    common.add_argument("--config", metavar="PATH", help="settings file (default: ./valuetrack.toml or $VALUETRACK_CONFIG)")
    common.add_argument("--as-of", type=_date, metavar="DATE", help="compute as of this date (default: today, UTC)")

    parser = argparse.ArgumentParser(prog="valuetrack", description="What each of your deployed ML models is worth.")
    parser.add_argument("--version", action="version", version=f"valuetrack {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common], help="build the embedded demo (DuckDB warehouse + registered models)")
    p.add_argument("--rebuild", action="store_true", help="regenerate the warehouse even if it is current")
    p.add_argument("--scale", type=_positive_float("--scale", "a number"), default=1.0, help="units multiplier (smaller = faster; default 1)")
    p.set_defaults(func=cmd_demo)

    models = sub.add_parser("models", help="the model registry").add_subparsers(dest="models_command", required=True, metavar="ACTION")
    p = models.add_parser("list", parents=[common], help="registered models")
    p.add_argument("--status", choices=["active", "retired"])
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("show", parents=[common], help="one model's manifest entry and history")
    p.add_argument("name")
    p.add_argument("--history", type=_positive_int("--history"), default=20, metavar="N", help="audit entries to show (default 20)")
    p.set_defaults(func=cmd_models_show)
    p = models.add_parser("register", parents=[common], help="create or update the models of a manifest (all or nothing)")
    p.add_argument("--file", required=True, metavar="PATH", help="manifest TOML")
    p.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")
    p.add_argument("--verbose", action="store_true", help="show every field of new models in a dry run")
    p.set_defaults(func=cmd_models_register)
    p = models.add_parser("export", parents=[common], help="write the registry as a manifest")
    p.add_argument("--out", metavar="PATH", help="file to write (default: stdout)")
    p.add_argument("--name", action="append", metavar="NAME", help="only this model (repeatable)")
    p.set_defaults(func=cmd_models_export)
    imports = models.add_parser("import", help="propose manifest entries from another registry").add_subparsers(
        dest="import_source", required=True, metavar="SOURCE")
    p = imports.add_parser("mlflow", parents=[common], help="from an MLflow model registry (docs/mlflow.md)")
    p.add_argument("--tracking-uri", required=True, metavar="URI", help="the MLflow tracking server, e.g. http://mlflow:5000")
    p.add_argument("--filter", metavar="FILTER", help="MLflow search filter, e.g. \"name LIKE 'churn%%'\"")
    p.add_argument("--out", default="mlflow-models.toml", metavar="PATH",
                   help="manifest to write, merged with it when it exists (default mlflow-models.toml)")
    p.add_argument("--dry-run", action="store_true", help="show what would be proposed, write nothing")
    p.set_defaults(func=cmd_models_import_mlflow)
    p = models.add_parser("retire", parents=[common], help="mark a model retired (history kept)")
    p.add_argument("name")
    p.add_argument("--revision", type=_positive_int("--revision"), help="refuse if the model is no longer at this revision")
    p.add_argument("--on", type=_date, metavar="DATE",
                   help="the last day it served, for a model without exposures (default: today, UTC): its cost stops then")
    p.set_defaults(func=cmd_models_retire)

    notes = sub.add_parser("notes", help="annotations, excluded windows and overrides of a model (audited; each "
                                         "change values again)").add_subparsers(dest="notes_command", required=True,
                                                                                metavar="ACTION")
    p = notes.add_parser("list", parents=[common], help="a model's notes (every model's without NAME)")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--kind", choices=["annotation", "exclusion", "override"])
    p.add_argument("--all", action="store_true", help="withdrawn notes too")
    p.set_defaults(func=cmd_notes_list)
    p = notes.add_parser("annotate", parents=[common], help="a dated note shown on the model's charts and report")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--on", required=True, type=_date, metavar="DATE", help="the day it happened")
    p.add_argument("--text", required=True, metavar="TEXT", help="what happened")
    p.add_argument("--category", choices=["release", "incident", "campaign", "other"], default="other")
    p.set_defaults(func=cmd_notes_annotate)
    p = notes.add_parser("exclude", parents=[common],
                         help="leave days out of attribution (an outage, a tracking bug); no value is claimed for them")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--from", dest="start", required=True, type=_date, metavar="DATE", help="first day left out")
    p.add_argument("--to", dest="end", required=True, type=_date, metavar="DATE", help="last day left out")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_notes_exclude)
    p = notes.add_parser("override", parents=[common],
                         help="a value adjustment agreed with finance: an amount on a day, or a share of gross value counted")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--amount", type=_finite, metavar="MONEY", help="added to the value (negative takes away)")
    p.add_argument("--on", type=_date, metavar="DATE", help="with --amount: the day it counts on")
    p.add_argument("--share", type=_finite, metavar="S", help="share of the estimated gross value counted, 0 to 1")
    p.add_argument("--from", dest="start", type=_date, metavar="DATE", help="with --share: first day (default: launch)")
    p.add_argument("--to", dest="end", type=_date, metavar="DATE", help="with --share: last day (default: open)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="what was agreed, with whom")
    p.set_defaults(func=cmd_notes_override)
    p = notes.add_parser("withdraw", parents=[common], help="withdraw a note (it is kept, marked withdrawn)")
    p.add_argument("id", type=_note_id, metavar="ID")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_notes_withdraw)

    p = sub.add_parser("refresh", parents=[common], help="pull aggregates from the warehouses into the app database")
    p.add_argument("--model", metavar="NAME", action="append",
                   help="only this model; repeat it for several (default: every active model)")
    p.add_argument("--full", action="store_true", help="re-read the whole history, not only what is not final")
    p.add_argument("--timeout", type=_positive_float("--timeout", "a number of seconds"), metavar="SECONDS", help="per-query timeout")
    p.add_argument("--lock", action="store_true",
                   help="one refresh at a time per app database: wait for a running one, then exit 1 (for schedulers)")
    p.add_argument("--lock-timeout", type=_non_negative_float, metavar="SECONDS",
                   help="with --lock: how long to wait for a running refresh (default 0: give up at once)")
    p.add_argument("--export-to", metavar="CONNECTION",
                   help="then write the values to this connection's table (export --to-warehouse; docs/writeback.md)")
    p.add_argument("--export-table", default="valuetrack_values", metavar="TABLE", help="with --export-to (default valuetrack_values)")
    p.add_argument("--notify", action="store_true",
                   help="then send new, escalated and cleared flags and failed refreshes to [notifications] targets")
    p.set_defaults(func=cmd_refresh)
    p = sub.add_parser("revalue", parents=[common],
                       help="value every model from the stored aggregates and record it in the ledger")
    p.add_argument("--alpha", type=_alpha, default=0.05)
    p.set_defaults(func=cmd_revalue)
    p = sub.add_parser("notify", parents=[common], help="send flag notifications now ([notifications] in valuetrack.toml)")
    p.add_argument("--test", action="store_true", help="send a test message to every target and report each answer")
    p.set_defaults(func=cmd_notify)
    p = sub.add_parser("value", parents=[common], help="per-model value, ROI, intervals, P(net value > 0)")
    period = p.add_mutually_exclusive_group()
    period.add_argument("--month", type=_month, metavar="YYYY-MM", help="one calendar month (default: to date)")
    period.add_argument("--months", type=_month_range, metavar="YYYY-MM..YYYY-MM",
                        help="whole months, summed as the portfolio page's period filter sums them (no intervals)")
    p.add_argument("--alpha", type=_alpha, default=0.05)
    p.add_argument("--var", action="store_true",
                   help="add the portfolio's value at risk (12 months and 1 month) stored by the latest refresh")
    p.set_defaults(func=cmd_value)
    p = sub.add_parser("flags", parents=[common], help="models delivering no value, with reasons")
    p.add_argument("--fail-on-flags", action="store_true", help="exit with 3 when any model is flagged")
    p.add_argument("--alpha", type=_alpha, default=0.05)
    p.set_defaults(func=cmd_flags)

    p = sub.add_parser("report", parents=[common], help="export the monthly value report")
    p.add_argument("--month", required=True, type=_month, metavar="YYYY-MM")
    p.add_argument("--format", required=True, choices=["pdf", "html", "csv", "xlsx"])
    p.add_argument("--out", required=True, metavar="PATH", help="file to write (replaced atomically)")
    p.add_argument("--restate", action="store_true",
                   help="apply the pending restatement of a final month first (needs --reason and an editor; "
                        "default: re-export the final version unchanged)")
    p.add_argument("--reason", metavar="TEXT", help="with --restate: why the final month is restated (kept with it)")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("restate", parents=[common],
                       help="apply a final month's pending restatement: its next version, with who, when and why")
    p.add_argument("--month", required=True, type=_month, metavar="YYYY-MM")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why the final month is restated (kept with it)")
    p.add_argument("--alpha", type=_alpha, default=0.05)
    p.set_defaults(func=cmd_restate)

    p = sub.add_parser("export", parents=[common], help="write values, intervals and flags to a warehouse table")
    p.add_argument("--to-warehouse", required=True, metavar="CONNECTION",
                   help="connection to write to; it must list the table in write_tables (docs/writeback.md)")
    p.add_argument("--table", default="valuetrack_values", metavar="TABLE",
                   help="table to write, optionally schema-qualified (default valuetrack_values)")
    p.set_defaults(func=cmd_export)

    attribute = sub.add_parser("attribute", help="estimate an effect from a CSV/Parquet file").add_subparsers(
        dest="attribute_command", required=True, metavar="METHOD")
    p = attribute.add_parser("ab", parents=[common], help="A/B test on unit-level rows")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--metric", required=True, metavar="COL")
    p.add_argument("--arm-col", required=True, metavar="COL")
    p.add_argument("--control", required=True, metavar="LABEL")
    p.add_argument("--treatment", required=True, metavar="LABEL")
    p.add_argument("--covariate", metavar="COL", help="pre-period covariate for CUPED")
    p.add_argument("--treatment-share", type=_share, default=0.5, metavar="S",
                   help="planned share of units in the treatment arm, for the SRM check (default 0.5)")
    p.add_argument("--alpha", type=_alpha, default=0.05)
    p.add_argument("--compat", choices=["gbstats"],
                   help="reproduce GrowthBook gbstats 0.8.0 exactly: relative CUPED variance without the "
                        "covariance term, and an arm with zero variance refused (docs/methods-ab.md)")
    p.set_defaults(func=cmd_attribute_ab)
    p = attribute.add_parser("ts", parents=[common], help="time-series counterfactual on a daily series")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--date-col", required=True, metavar="COL")
    p.add_argument("--metric", required=True, metavar="COL")
    p.add_argument("--intervention", required=True, type=_date, metavar="DATE")
    p.add_argument("--controls", metavar="A,B")
    p.add_argument("--method", choices=_methods_reading("series"), default="structural")
    p.add_argument("--alpha", type=_alpha, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_attribute_ts)
    p = attribute.add_parser("did", parents=[common], help="difference-in-differences or synthetic control on a panel")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--time-col", required=True, metavar="COL")
    p.add_argument("--metric", required=True, metavar="COL")
    p.add_argument("--intervention", required=True, metavar="T", help="first treated period (a date or a number)")
    p.add_argument("--unit-col", metavar="COL")
    p.add_argument("--treated", metavar="UNIT[,UNIT]")
    p.add_argument("--group-col", metavar="COL")
    p.add_argument("--treated-value", metavar="V")
    p.add_argument("--method", choices=_methods_reading("panel") + ["synth"], default="did",
                   help="synth is short for synthetic_control")
    p.add_argument("--se", choices=["classical", "hc1", "cluster"])
    p.add_argument("--alpha", type=_alpha, default=0.05)
    p.set_defaults(func=cmd_attribute_did)

    p = sub.add_parser("serve", parents=[common], help="open the dashboard (streamlit run app.py)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--headless", action="store_true", help="do not open a browser")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for bad usage, 0 for --help/--version
        return int(exc.code or 0)
    try:
        return args.func(args)
    except ValuetrackError as exc:
        return _fail(args, exc.message, exc.code, exc.exit_code)
    except OperationalError as exc:  # the app database read-only, locked past its busy timeout, disk full, gone
        from valuetrack.store.db import write_failure

        return _fail(args, write_failure(exc.orig), "database", EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", "interrupted", EXIT_ERROR)


def run() -> None:
    """The ``valuetrack`` command (console script and ``python -m valuetrack``): :func:`main`, then
    the process ends at once, as mypy's does. Tearing the interpreter down (freeing every module
    and a valuation's thousands of objects one by one) took a quarter of a second of CPU after the
    work was done; the output is flushed and the app database's connections closed first. Nothing
    else is pending at that point: each command closes its files, commits its writes and ends the
    processes it forked (any still running is terminated rather than left without its parent).

    The cyclic garbage collector runs every 50,000 new container objects rather than every 700: a
    command imports pandas, SQLAlchemy, scipy and statsmodels and builds frames of thousands of
    objects, and at 700 the collections walked the whole heap three times during the imports alone
    (≈ 80 ms of a refresh's first second; ≈ 0.15 s of its CPU in all). Memory stays bounded:
    collections still run, only less often."""
    import gc

    gc.set_threshold(50_000, 10, 10)
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing more to say
            pass
    import logging
    import multiprocessing

    from valuetrack.store.db import dispose_all

    for child in multiprocessing.active_children():  # none is left by a command; never orphan one
        child.terminate()
    logging.shutdown()
    dispose_all()
    os._exit(code)


def _fail(args: argparse.Namespace, message: str, code: str, exit_code: int) -> int:
    message = _without_secrets(args, message)
    print(f"valuetrack: error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"version": __version__, "error": {"code": code, "message": message}}, indent=2))
    return exit_code


def _without_secrets(args: argparse.Namespace, message: str) -> str:
    """Last line of defence: mask the settings' resolved ${VAR} values in an error message (the
    code that raised should have already)."""
    from valuetrack.config import load_settings, redact

    try:
        hidden = load_settings(getattr(args, "config", None)).secret_values()
    except ValuetrackError:  # the settings themselves are what failed: nothing resolved to hide
        return message
    return redact(message, hidden)


if __name__ == "__main__":
    sys.exit(main())
