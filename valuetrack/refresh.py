"""``valuetrack refresh``: pull each model's aggregates from its warehouse into the app database.

Per model: read only what is not final yet (cohorts immature at the last refresh and later days),
store it in one transaction, record the refresh with its cost. A warehouse that fails leaves the
previously stored aggregates untouched; the refresh is recorded as failed with a message free of
secrets, and the figures are shown as stale.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

from valuetrack.config import redact
from valuetrack.context import Context, past_as_of, today_utc
from valuetrack.errors import ValuetrackError
from valuetrack.registry.store import RegisteredModel


@dataclass(frozen=True)
class RefreshOutcome:
    """What one model's refresh did.

    Attributes:
        model: the model.
        status: "ok" or "failed".
        as_of: the as-of date.
        since_day: first day re-read (None: the whole history).
        rows: rows written to the app database.
        cost: the warehouse's cost figures summed over the queries.
        error: why it failed (secrets removed), or None.
    """

    model: str
    status: str
    as_of: dt.date
    since_day: dt.date | None
    rows: int
    cost: dict[str, Any]
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def refresh(ctx: Context, *, model: str | None = None, as_of: dt.date | None = None,
            timeout_s: float | None = None, full: bool = False, value: bool = True,
            early: Any = None) -> list[RefreshOutcome]:
    """Refresh one model (``model``) or every active model, then (``value``) value the portfolio and
    record it in the ledger; never raises for a warehouse failure. ``value=False`` is for a caller
    refreshing several models one by one, which values once at the end (valuetrack.valuation.revalue).
    ``early`` (valuetrack.value.parallel.EarlyValuation, command line): the pulls, their saves and
    the overlap count run in a forked process while this one starts the valuation workers (D69),
    and each model's valuation starts as soon as its aggregates are stored; the caller's revalue
    collects them."""
    from valuetrack.connectors import get_connector
    from valuetrack.refresh_pull import model_definition, pull_models

    actor = ctx.require_edit("refresh models")
    as_of = past_as_of(as_of or today_utc())
    targets: list[RegisteredModel] = [ctx.registry.get(model)] if model else ctx.registry.list(status="active")
    store = ctx.aggregates
    secrets = ctx.settings.secrets()
    hidden = ctx.settings.secret_values()
    connectors: dict[str, Any] = {}
    starts = []
    statuses = store.statuses([t.spec.name for t in targets])  # one query, not one per model
    for registered in targets:
        spec = registered.spec
        status = statuses[spec.name]
        ok = status.last_ok or {}
        # read with other queries (an edit of its exposures, outcomes, windows ...): the whole history again (D66)
        redefined = ok.get("definition") not in (None, model_definition(spec))
        since = None if full or redefined else status.next_since_day
        if since is not None and since > as_of:
            since = as_of
        starts.append((spec, since, None if redefined else ok.get("bin_edges"), redefined or not status.exposures_complete))
    ids = store.start_refreshes([(spec.name, since) for spec, since, _, _ in starts], as_of=as_of, actor=actor.name)
    plans = [(spec, since, edges, refresh_id, whole) for (spec, since, edges, whole), refresh_id in zip(starts, ids)]
    # the units shared are counted over every active model, also when one model is refreshed: the
    # portfolio's overlap deduction must include it (a model refreshed alone was otherwise not deducted)
    specs = [t.spec for t in (targets if model is None else ctx.registry.list(status="active"))]
    settled = {} if full else ctx.overlaps.settled_counts()  # to advance (D64)
    done: dict[str, RefreshOutcome] = {}
    sent: list[Any] = []  # in the warehouse process: how each outcome reaches the command's process

    def finished(outcome: RefreshOutcome) -> None:
        done[outcome.model] = outcome
        if sent:
            sent[0](outcome)
        elif early is not None:
            early.ready([outcome.model])  # valued now (a failed model on its last good aggregates, shown as stale)

    def failed(spec: Any, since: Any, refresh_id: int, exc: Exception) -> None:
        if isinstance(exc, ValuetrackError):
            message = redact(exc.message, hidden)
        else:  # a driver error we did not classify: keep going with the others
            message = redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", hidden)
        store.fail_refresh(refresh_id, message)
        finished(RefreshOutcome(spec.name, "failed", as_of, since, 0, {}, message))

    def save(plan: tuple, result: Any) -> None:  # as soon as the model is pulled
        spec, since, _, refresh_id, _ = plan
        try:
            if isinstance(result, Exception):
                raise result
            rows = store.save(refresh_id, result)
        except Exception as exc:  # noqa: BLE001
            failed(spec, since, refresh_id, exc)
            return
        finished(RefreshOutcome(spec.name, "ok", as_of, since, rows, result.total_cost, None))

    def pull(plans: list[tuple]) -> None:
        for conn_name in dict.fromkeys(p[0].connection for p in plans):  # one batch of queries per connection
            group = [p for p in plans if p[0].connection == conn_name]
            try:
                if conn_name not in connectors:
                    connectors[conn_name] = get_connector(ctx.settings.connection(conn_name), secrets)
            except Exception as exc:  # noqa: BLE001 - every model of the connection fails with the reason
                for spec, since, _, refresh_id, _ in group:
                    failed(spec, since, refresh_id, exc)
                continue
            by_name = {p[0].name: p for p in group}
            # the models without exposures first (time series: no query of theirs is shared, and theirs
            # are the longest valuations, under way while the others' shared queries run)
            for part in ([p for p in group if p[0].attribution.exposures is None],
                         [p for p in group if p[0].attribution.exposures is not None]):
                if not part:
                    continue
                pull_models([p[0] for p in part], connectors[conn_name], as_of=as_of,
                            since_days={p[0].name: p[1] for p in part},
                            bin_edges={p[0].name: p[2] for p in part}, timeout_s=timeout_s,
                            guardrail_definitions={p[0].name: store.guardrail_definitions(p[0].name)
                                                   for p in part if p[0].guardrails},
                            # counts stored before D53 reach back HEALTH_DAYS only: read the whole history
                            whole_exposures={p[0].name for p in part if p[4]},
                            on_pulled=lambda name, result: save(by_name[name], result))

    def count_overlaps() -> None:
        counts = _count_overlaps(ctx, specs, connectors, secrets, as_of, timeout_s, settled)
        if counts is not None:
            ctx.overlaps.replace(*counts)

    def in_warehouse_process(send: Any) -> None:
        # the app database's pooled connections are this process's parent's: open new ones (a
        # PostgreSQL connection used from both processes breaks its protocol, a SQLite one its locks)
        ctx.engine.dispose(close=False)
        sent.append(send)
        try:
            pull(plans)
            count_overlaps()
        finally:
            for connector in connectors.values():
                connector.dispose()

    if early is not None and _fx_unchanged(ctx):
        # the warehouse work runs in a process forked now, while this one imports the valuation and
        # forks its workers (D69); each model stored there is valued here at once
        from valuetrack.value.parallel import stream_from_child

        token = ctx.ledger.token()  # before any model is stored, as for any valuation
        complete = stream_from_child(in_warehouse_process, on_item=finished,
                                     meanwhile=lambda: early.begin(len(plans), token))
        if not complete:  # it died or failed: what it did not do is done here
            pull([p for p in plans if p[0].name not in done])
            count_overlaps()
    else:
        pull(plans)
        count_overlaps()
    outcomes = [done[p[0].name] for p in plans]
    outcomes = _record_fx(ctx, connectors, secrets, as_of, timeout_s, outcomes, hidden)
    for connector in connectors.values():
        connector.dispose()
    if value:
        from valuetrack.valuation import revalue

        valued = revalue(ctx, as_of=as_of, reason="refresh")  # the whole portfolio (flags and totals are portfolio-wide)
        outcomes = mark_unvalued(outcomes, valued.failures)
    return outcomes


def _fx_unchanged(ctx: Context) -> bool:
    """Whether this refresh leaves the exchange rates as they are (no [fx] warehouse table to read):
    the models may then be valued before the rates are read (``early``)."""
    fx = ctx.settings.fx
    return fx is None or fx.csv is not None


def mark_unvalued(outcomes: list[RefreshOutcome], failures: dict[str, str]) -> list[RefreshOutcome]:
    """A model pulled and stored but not valued: its refresh says so (the aggregates stay stored)."""
    return [dataclasses.replace(o, status="failed", error=f"pulled {o.rows} rows, but {failures[o.model]}")
            if o.model in failures and o.status == "ok" else o for o in outcomes]


def _record_fx(ctx: Context, connectors: dict[str, Any], secrets: Any, as_of: dt.date, timeout_s: float | None,
               outcomes: list[RefreshOutcome], hidden: list[str]) -> list[RefreshOutcome]:
    """Read the exchange rates of the [fx] warehouse table for the currencies of registered models
    (one pushed-down query) into the app database. A failure keeps the previous rates and marks the
    refresh of each model that needs them as failed, saying why."""
    from valuetrack.connectors import get_connector
    from valuetrack.fx import read_table_rates

    fx = ctx.settings.fx
    if fx is None or fx.csv is not None:
        return outcomes
    needed = {m.name: m.spec.currency for m in ctx.registry.list()
              if m.spec.currency and m.spec.currency != ctx.settings.currency}
    if not needed:
        return outcomes
    try:
        if fx.connection not in connectors:
            connectors[fx.connection] = get_connector(ctx.settings.connection(fx.connection), secrets)
        frame = read_table_rates(ctx.settings, connectors[fx.connection], sorted(set(needed.values())), as_of,
                                 timeout_s=timeout_s)
        ctx.fx_rates.replace(frame, needed.values())
        return outcomes
    except ValuetrackError as exc:
        message = redact(exc.message, hidden)
    return [dataclasses.replace(o, status="failed", error=f"the exchange rates could not be read ({message}); the "
                                f"previously read rates are used") if o.model in needed else o for o in outcomes]


def _count_overlaps(ctx: Context, specs: list[Any], connectors: dict[str, Any], secrets: Any,
                    as_of: dt.date, timeout_s: float | None, settled: Mapping[str, tuple] | None = None) -> tuple | None:
    """Count the units per membership pattern of every group of models sharing units and a KPI
    (one GROUP BY on a bitmask per group; pair by pair when more than MAX_PATTERNS patterns occur,
    see valuetrack.value.overlap): the arguments of ``ctx.overlaps.replace``, or None when a query
    failed (the last counts stay).

    ``settled``: the stored counts to advance (``ctx.overlaps.settled_counts()``, D64). A group
    with counts under its key, from a settled day no later than this refresh's and at most
    RECOUNT_AFTER_DAYS old, is counted over the units served since that day only; any other group
    (or one whose stored counts no longer add up) over its whole history. Either way the group's
    counts at this refresh's settled day are kept for the next one."""
    from valuetrack.connectors import get_connector
    from valuetrack.queries import membership_changes, membership_masks, membership_query, shared_units_query
    from valuetrack.value.overlap import (MAX_PATTERNS, RECOUNT_AFTER_DAYS, Pattern, SettledCounts, advance_counts,
                                          kpi_groups, membership_key, pairs_from_patterns, patterns_from_masks,
                                          settled_day)

    patterns: list[Pattern] = []
    kept: list[SettledCounts] = []
    try:
        for group in kpi_groups(specs):
            conn_name = group[0].connection
            if conn_name not in connectors:
                connectors[conn_name] = get_connector(ctx.settings.connection(conn_name), secrets)
            connector = connectors[conn_name]
            names, n = tuple(s.name for s in group), len(group)

            def run(query: Any) -> Any:
                return connector.run(query, model=group[0].name, purpose="overlap", timeout_s=timeout_s).frame

            def advanced(since: dt.date | None, base: Mapping[int, int]) -> tuple | None:
                """The counts now and at this refresh's settled day; None when more than
                MAX_PATTERNS rows came back or the stored counts do not add up."""
                frame = run(membership_query(group, as_of=as_of, settled=day, since=since, dialect_ops=connector.ops,
                                             limit=MAX_PATTERNS + 1))
                if len(frame) > MAX_PATTERNS:
                    return None
                return advance_counts(base, membership_changes(frame, n))

            key, day = membership_key(group), settled_day(group, as_of)
            since, base = (settled or {}).get(key, (None, {}))
            fresh = since is not None and since <= day and (as_of - since).days <= RECOUNT_AFTER_DAYS
            counts = (fresh and advanced(since, base)) or advanced(None, {})
            if counts is not None and len(counts[0]) <= MAX_PATTERNS:
                patterns += patterns_from_masks(names, counts[0].items())
                kept.append(SettledCounts(key, day, counts[1]))
                continue
            if counts is None:  # more (pattern, settled pattern) pairs than MAX_PATTERNS: the patterns alone
                frame = run(membership_query(group, as_of=as_of, dialect_ops=connector.ops, limit=MAX_PATTERNS + 1))
                if len(frame) <= MAX_PATTERNS:
                    patterns += patterns_from_masks(names, zip(membership_masks(frame, n), frame["units"]))
                    continue
            frame = run(shared_units_query(group, as_of=as_of, dialect_ops=connector.ops))
            patterns += [Pattern(names, (names[int(r.model_a)], names[int(r.model_b)]), int(r.shared), True)
                         for r in frame.itertuples(index=False) if int(r.shared) > 0]
    except ValuetrackError:
        return None  # the previous overlaps stay; the refresh of each model has its own status
    return pairs_from_patterns(patterns), as_of, patterns, kept


