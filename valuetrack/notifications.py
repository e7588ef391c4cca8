"""Notifications: new, escalated and cleared flags, and failed refreshes, sent to webhooks (Slack-
and Teams-compatible) and e-mail through Apprise (docs/notifications.md).

What makes an event (``transitions``, a pure function): a model's first flag is *raised*; a worse
flag on a flagged model *escalates*; a flagged model with no flag for ``clear_after`` consecutive
as-of days is *cleared*. A flag that flickers off for a day sends nothing, and the numbers moving
from day to day are not events.

Delivery is at least once: an event is stored with its idempotency key before anything is sent,
and each target's acknowledgement is logged; a target that failed (down, refused) gets the event
again at the next run, up to ``retry_days`` later. An acknowledged event is never sent again to
that target. Target URLs hold secrets (webhook tokens, SMTP passwords): they are only handed to
Apprise; what is stored, shown or logged is a target id and redacted text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence
from urllib.parse import quote, urlsplit

from valuetrack.config import redact
from valuetrack.context import Context, today_utc
from valuetrack.errors import ConfigError, MissingDependency
from valuetrack.store.notifications import NotificationStore, StoredEvent
from valuetrack.value.flags import FLAG_SEVERITY

# a plain http(s) URL is a webhook: posted {"text": message}, which Slack and Teams incoming
# webhooks both accept (Apprise's json:// with its fields renamed or dropped)
_WEBHOOK_FIELDS = ":message=text&:title=&:version=&:attachments=&:type="


@dataclass(frozen=True)
class Target:
    """One configured destination.

    Attributes:
        id: stable id for the delivery log: scheme and host plus a hash of the configured text
            (the text with ``${VAR}`` unresolved, so rotating a secret keeps the id).
        label: what a person sees: scheme and host only.
        url: the resolved Apprise URL (secret: never stored, shown or logged).
    """

    id: str
    label: str
    url: str = field(repr=False)


@dataclass(frozen=True)
class Delivery:
    event: str
    target: str
    status: str  # sent | failed
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "target": self.target, "status": self.status, "error": self.error}


@dataclass(frozen=True)
class NotifyReport:
    """What a notification run did.

    Attributes:
        as_of: the as-of date the flags were read at.
        events: the events this run created (an event is created once, ever).
        deliveries: every send attempted in this run, new events and retries alike.
    """

    as_of: dt.date
    events: list[StoredEvent]
    deliveries: list[Delivery]

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status != "sent"]

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "events": [e.to_dict() for e in self.events],
                "deliveries": [d.to_dict() for d in self.deliveries]}

    def describe(self) -> str:
        sent = len(self.deliveries) - len(self.failed)
        lines = [f"Notifications: {len(self.events)} new events, {sent} messages sent, {len(self.failed)} failed"
                 + (" (retried at the next run)" if self.failed else "") + "."]
        lines += [f"  {e.kind:<14} {e.title}" for e in self.events]
        lines += [f"  failed to {d.target}: {d.error}" for d in self.failed]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# what is an event


def transitions(states: dict[str, dict[str, Any]], flags: dict[str, list[str]], as_of: dt.date,
                clear_after: int) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """New per-model states and the (kind, model) events, from the stored states and today's flags.

    ``flags``: the flag types of every model that is watched (a model absent from it is not
    judged). A run on an as-of date already seen does not count towards ``clear_after``.
    """
    new_states, events = {}, []
    for model, types in flags.items():
        old = states.get(model) or {"active": False, "flag_types": [], "severity": 0, "absent_runs": 0,
                                   "last_as_of": as_of - dt.timedelta(days=1)}
        severity = max((FLAG_SEVERITY[t] for t in types), default=0)
        state = {"active": old["active"], "flag_types": sorted(types), "severity": old["severity"],
                 "absent_runs": old["absent_runs"], "last_as_of": max(old["last_as_of"], as_of)}
        if types:
            state["absent_runs"] = 0
            if not old["active"]:
                events.append(("raised", model))
                state.update(active=True, severity=severity)
            elif severity > old["severity"]:
                events.append(("escalated", model))
                state["severity"] = severity
        elif old["active"]:
            if as_of > old["last_as_of"]:
                state["absent_runs"] = old["absent_runs"] + 1
            if state["absent_runs"] >= clear_after:
                events.append(("cleared", model))
                state.update(active=False, severity=0, absent_runs=0)
        if state != old:
            new_states[model] = state
    return new_states, events


def _flag_source(ctx: Context, as_of: dt.date) -> tuple[Any, dict[str, list[str]]]:
    """The portfolio's flags at ``as_of`` (the one place that reads them), per active model, from
    the newest valuation in the ledger on or before ``as_of``."""
    from valuetrack import ledger

    pv = ledger.portfolio(ctx, as_of=as_of)
    active = {m.model for m in pv.models if m.status == "active"}
    flags: dict[str, list[str]] = {name: [] for name in active}
    for f in pv.flags:
        if f.model in active:
            flags[f.model].append(f.type)
    return pv, flags


# ------------------------------------------------------------------------------------------------
# messages


def _link(base_url: str, model: str) -> str:
    return f"{base_url}/model?model={quote(model)}"


def _flag_message(kind: str, model: str, pv: Any, base_url: str) -> tuple[str, str]:
    from valuetrack.formatting import money

    value = next(m for m in pv.models if m.model == model)
    flags = [f for f in pv.flags if f.model == model]
    cur = pv.currency
    if kind == "cleared":
        title = f"valuetrack: {model} is no longer flagged"
        lines = [f"{value.display_name} ({model}) has had no flag since its last message."]
    else:
        worst = max(flags, key=lambda f: FLAG_SEVERITY[f.type])
        title = f"valuetrack: {model} {'flagged' if kind == 'raised' else 'flag escalated'}: {worst.type.replace('_', ' ')}"
        lines = [f"{value.display_name} ({model}): {', '.join(f.type.replace('_', ' ') for f in flags)}."]
        lines += [f.reason for f in flags] + [f"Next: {worst.action}"]
    if value.net is not None:
        ci = f" (95% interval {money(value.ci_net[0], cur)} to {money(value.ci_net[1], cur)})" if value.ci_net else ""
        roi = f", ROI {value.roi:.0%}" if value.roi is not None else ""
        lines.append(f"Net value to date {money(value.net, cur)}{ci}{roi}, as of {pv.as_of}.")
    lines.append(_link(base_url, model))
    return title, "\n".join(lines)


def _failure_message(outcome: Any, base_url: str) -> tuple[str, str]:
    return (f"valuetrack: refresh of {outcome.model} failed",
            f"The refresh of {outcome.model} as of {outcome.as_of} failed: {outcome.error}\n"
            f"Its previous figures stay, shown as stale.\n{_link(base_url, outcome.model)}")


# ------------------------------------------------------------------------------------------------
# sending


def targets(ctx: Context) -> list[Target]:
    """The configured targets with ``${VAR}`` resolved; ConfigError when notifications are off."""
    from valuetrack.config import ConnectionSettings

    section = ctx.settings.notifications
    if not section:
        raise ConfigError(f"no [notifications] section in {ctx.settings.source}; add one with targets = [...] "
                          "(see docs/notifications.md)")
    secrets = ctx.settings.secrets()
    out = []
    for i, text in enumerate(section["targets"]):
        url, _ = ConnectionSettings(f"notifications.targets[{i}]", text).resolved(secrets)
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):  # a plain webhook
            url = f"{'jsons' if parts.scheme == 'https' else 'json'}://{url.split('://', 1)[1]}"
            url += ("&" if parts.query else "?") + _WEBHOOK_FIELDS
        label = f"{parts.scheme}://{parts.hostname or ''}"
        out.append(Target(f"{label}#{hashlib.sha256(text.encode()).hexdigest()[:12]}", label, url))
    return out


def _send(target: Target, event: StoredEvent, hidden: Sequence[str]) -> str | None:
    """Send one message to one target; None when acknowledged, else the (redacted) reason."""
    try:
        import apprise
    except ModuleNotFoundError:
        raise MissingDependency('notifications need Apprise: pip install "valuetrack[notify]"') from None

    url = target.url
    body = f"{event.body}\n\n(ref {event.key})"
    if url.startswith(("json://", "jsons://")):  # the idempotency key travels as a header
        url += ("&" if "?" in url else "?") + f"+Idempotency-Key={quote(event.key)}"
        body = f"{event.title}\n{body}"  # a webhook message has no title of its own
    # Apprise's debug records quote target URLs (secrets): never let it make them, keep its records
    # out of other handlers, and report a redacted reason from its warnings instead
    from apprise.logger import logger as apprise_log

    apprise_log.setLevel(logging.CRITICAL)  # LogCapture lowers it to WARNING for the send only
    apprise_log.propagate = False
    sender = apprise.Apprise()
    with apprise.LogCapture(level=logging.WARNING) as captured:
        if not sender.add(url):
            return f"not a notification URL Apprise understands ({target.label}); see docs/notifications.md"
        ok = sender.notify(title=event.title, body=body)
    if ok:
        return None
    reason = (captured.getvalue().strip().splitlines() or ["no answer"])[-1]
    reason = re.sub(r"^\S+ \S+ - [A-Z]+ - ", "", reason)  # Apprise's timestamp and level
    return redact(f"delivery to {target.label} failed: {reason}", [*hidden, target.url])[:500]


def _deliver(ctx: Context, store: NotificationStore, to: Iterable[Target], since: dt.datetime) -> list[Delivery]:
    hidden = ctx.settings.secret_values()
    out = []
    for target in to:
        for event in store.undelivered(target.id, since):
            error = _send(target, event, hidden)
            store.record_delivery(event.key, target.id, error is None, error)
            out.append(Delivery(event.key, target.label, "sent" if error is None else "failed", error))
    return out


def notify(ctx: Context, *, as_of: dt.date | None = None, refresh_outcomes: Sequence[Any] = ()) -> NotifyReport:
    """Turn the portfolio's flags at ``as_of`` (and failed refreshes) into events, then deliver every
    event a target has not acknowledged yet."""
    ctx.require_edit("send notifications")
    to = targets(ctx)
    section = ctx.settings.notifications
    as_of = as_of or today_utc()
    store = NotificationStore(ctx.engine)
    pv, flags = _flag_source(ctx, as_of)
    states, changes = transitions(store.states(), flags, as_of, section["clear_after"])
    wanted = set(section["events"])
    events = [StoredEvent(f"{kind}:{model}:{as_of}", kind, model, as_of, *_flag_message(kind, model, pv, section["base_url"]))
              for kind, model in changes if kind in wanted]
    if "refresh_failed" in wanted:
        events += [StoredEvent(f"refresh_failed:{o.model}:{o.as_of}", "refresh_failed", o.model, o.as_of,
                               *_failure_message(o, section["base_url"]))
                   for o in refresh_outcomes if o.status != "ok"]
    added = store.save(states, events)
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=section["retry_days"])
    return NotifyReport(as_of, added, _deliver(ctx, store, to, since))


def send_test(ctx: Context) -> NotifyReport:
    """``notify --test``: one test message to every target, now; reports each target's answer."""
    ctx.require_edit("send notifications")
    to = targets(ctx)
    now = dt.datetime.now(dt.timezone.utc)
    event = StoredEvent(f"test:{now.isoformat(timespec='seconds')}", "test", None, now.date(),
                        "valuetrack: test message",
                        f"This is a test from valuetrack. Links point to {ctx.settings.notifications['base_url']}")
    hidden = ctx.settings.secret_values()
    deliveries = []
    for target in to:
        error = _send(target, event, hidden)
        deliveries.append(Delivery(event.key, target.label, "sent" if error is None else "failed", error))
    return NotifyReport(now.date(), [event], deliveries)
