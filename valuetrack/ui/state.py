"""Cached access to the library for the pages.

Every figure comes from the valuation ledger (valuetrack.ledger): pages never value anything.
Records are cached keyed by a *data version* (the registry's, the refresh log's and the ledger's
high-water marks, indexed lookups in the app database) and a TTL, so a page shows new figures as
soon as a valuation lands — from the app or the CLI. Nothing here reads the warehouse: the only
warehouse calls the app makes are the explicit "Test connection", "Preview data" and "Refresh" actions.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace
from typing import Any

import streamlit as st

from valuetrack.access import Actor, local_actor, oidc_actor
from valuetrack.context import Context, open_context, today_utc

AS_OF_ENV = "VALUETRACK_AS_OF"
TTL_S = 600


@st.cache_resource(show_spinner=False)
def _context(config: str | None, cwd: str) -> Context:
    ctx = open_context(config)
    _ = ctx.registry  # open and migrate the app database once per process
    return ctx


def _base() -> Context:
    return _context(os.environ.get("VALUETRACK_CONFIG"), os.getcwd())


def context() -> Context:
    """The app's context, acting as the user of this session."""
    ctx = _base()
    return _with_engine(ctx, current_actor(ctx))


def _with_engine(ctx: Context, actor: Actor) -> Context:
    if actor == ctx.actor:
        return ctx
    out = Context(ctx.settings, actor)
    out.__dict__["engine"] = ctx.engine  # share the process's engine (cached_property slot)
    out.__dict__["access"] = ctx.access
    return out


def current_actor(ctx: Context) -> Actor:
    """Logged-in user under [auth] (Streamlit OIDC); the local user in open local mode. The role shown
    is the one the app database's recorded [auth] gives (the store decides every write the same way)."""
    if not ctx.settings.auth and not ctx.access.recorded():
        return local_actor()
    email = logged_in_email()
    if not email:
        return Actor("anonymous", "viewer")
    actor = oidc_actor(email)
    return replace(actor, role=ctx.access.role_of(actor)[1])


def logged_in_email() -> str | None:
    """The e-mail of the OIDC user of this session, or None when nobody is logged in."""
    user = getattr(st, "user", None)
    try:
        if user is None or not user.get("is_logged_in", False):
            return None
        return user.get("email") or user.get("preferred_username") or user.get("sub")
    except Exception:  # no [auth] secrets: st.user has no login state
        return None


def auth_required() -> bool:
    """True when valuetrack.toml has an [auth] section: every visitor must log in."""
    return bool(_base().settings.auth)


def oidc_configured() -> bool:
    """True when .streamlit/secrets.toml has Streamlit's [auth] (OIDC provider) section."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def as_of() -> dt.date:
    """The as-of date of every figure: $VALUETRACK_AS_OF (demos, tests) or today in UTC."""
    raw = os.environ.get(AS_OF_ENV)
    if raw:
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    return today_utc()


def data_version() -> tuple[Any, ...]:
    """Changes whenever a model is registered/edited/retired, a refresh starts or finishes, or a
    valuation lands in the ledger (two indexed lookups)."""
    from valuetrack.ledger import data_version as ledger_version

    return ledger_version(_base())


def _key() -> tuple[str | None, str]:
    return os.environ.get("VALUETRACK_CONFIG"), os.getcwd()


# -- cached loaders (every figure comes from the ledger: valuetrack.ledger) --------------------


def registered() -> list:
    """The registered models (RegistryStore.list, cached until the registry changes)."""
    return _registered(*_key(), data_version())


@st.cache_data(ttl=TTL_S, show_spinner=False, max_entries=16)
def _registered(config: str | None, cwd: str, version: tuple) -> list:
    return _context(config, cwd).registry.list()


def portfolio(month: str | None = None):  # noqa: ANN201 - StoredPortfolio
    """The newest valuation on or before the as-of date, to date, for ``month`` (the same record
    ``valuetrack value --json`` prints) or for a range of months ``"YYYY-MM..YYYY-MM"`` (the sums of
    the stored months: valuetrack.ledger.portfolio_range); None when nothing has been valued yet."""
    return _portfolio(*_key(), as_of(), month, data_version())


# cache_resource: the object is frozen and pages only read it; pickling it on every rerun would cost
# more than the lookup
@st.cache_resource(ttl=TTL_S, show_spinner=False, max_entries=16)
def _portfolio(config: str | None, cwd: str, as_of_: dt.date, month: str | None, version: tuple):  # noqa: ANN202
    from valuetrack import ledger

    try:
        if month and ".." in month:
            first, last = month.split("..", 1)
            return ledger.portfolio_range(_context(config, cwd), first, last, as_of=as_of_)
        return ledger.portfolio(_context(config, cwd), as_of=as_of_, month=month)
    except ledger.NotValued:
        return None


def portfolio_var() -> dict[str, Any] | None:
    """The portfolio's value at risk as the last valuation stored it (None: never computed)."""
    return _portfolio_var(*_key(), as_of(), data_version())


@st.cache_data(ttl=TTL_S, show_spinner=False, max_entries=16)
def _portfolio_var(config: str | None, cwd: str, as_of_: dt.date, version: tuple) -> dict[str, Any] | None:
    return _context(config, cwd).var.latest(as_of_)


def sparklines(names: list[str]) -> dict[str, list[float]]:
    """Net value per live month for each model (for the portfolio table's trend column)."""
    return _sparklines(*_key(), tuple(names), as_of(), data_version())


@st.cache_data(ttl=TTL_S, show_spinner=False, max_entries=64)
def _sparklines(config: str | None, cwd: str, names: tuple[str, ...], as_of_: dt.date,
                version: tuple) -> dict[str, list[float]]:
    from valuetrack import ledger

    pv = _portfolio(config, cwd, as_of_, None, version)
    if pv is None:
        return {}
    nets = ledger.monthly_nets(_context(config, cwd), pv.asof_id)
    return {n: nets.get(n, []) for n in names}


def model_view(name: str) -> dict[str, Any] | None:
    """Everything the model page shows for one model (see ``views.model_view``); None when the
    model is not in the newest valuation."""
    return _model_view(*_key(), name, as_of(), data_version())


@st.cache_data(ttl=TTL_S, show_spinner="Loading the model…", max_entries=256)
def _model_view(config: str | None, cwd: str, name: str, as_of_: dt.date, version: tuple) -> dict[str, Any] | None:
    from valuetrack import ledger
    from valuetrack.ui.views import model_view as build

    ctx = _context(config, cwd)
    try:
        return build(ctx, ledger.model(ctx, name, as_of=as_of_))
    except ledger.NotValued:
        return None


def invalidate() -> None:
    """Forget cached records (after a change made from this app; others are seen via data_version)."""
    _registered.clear()
    _portfolio.clear()
    _sparklines.clear()
    _model_view.clear()
    _report.clear()
    _report_bytes.clear()
    _report_pending.clear()


def report(month: str):  # noqa: ANN201 - Snapshot
    """The month's report snapshot, as ``valuetrack report`` exports it (reused while its inputs hold)."""
    return _report(*_key(), month, as_of(), data_version())


@st.cache_data(ttl=TTL_S, show_spinner="Building the report…", max_entries=32)
def _report(config: str | None, cwd: str, month: str, as_of_: dt.date, version: tuple):  # noqa: ANN202
    from valuetrack.reports import snapshot_for

    ctx = _context(config, cwd)
    return snapshot_for(ctx, month=month, as_of=as_of_)[0]


def report_pending(month: str) -> dict[str, Any] | None:
    """The pending restatement of a final month's report (None when nothing is pending)."""
    return _report_pending(*_key(), month, as_of(), data_version())


@st.cache_data(ttl=TTL_S, show_spinner=False, max_entries=32)
def _report_pending(config: str | None, cwd: str, month: str, as_of_: dt.date, version: tuple) -> dict[str, Any] | None:
    from valuetrack.reports import pending_for

    return pending_for(_context(config, cwd), _report(config, cwd, month, as_of_, version), as_of=as_of_)


def report_bytes(month: str, fmt: str) -> bytes:
    return _report_bytes(*_key(), month, fmt, as_of(), data_version())


@st.cache_data(ttl=TTL_S, show_spinner="Rendering…", max_entries=64)
def _report_bytes(config: str | None, cwd: str, month: str, fmt: str, as_of_: dt.date, version: tuple) -> bytes:
    pending = _report_pending(config, cwd, month, as_of_, version)
    return _report(config, cwd, month, as_of_, version).export(fmt, pending=pending)


def restate(month: str, reason: str) -> Any:
    """Apply the month's pending restatement as the user of this session (the library decides whether
    they may: an editor, with a reason); the caches are dropped afterwards."""
    from valuetrack.reports import restate_month

    done = restate_month(context(), month=month, reason=reason, as_of=as_of())
    invalidate()
    return done
