"""What every entry point (CLI, app, scripts) opens first: settings, the acting user, the stores.

The stores are handed out here, one per context, so no caller builds ``XStore(ctx.engine)`` itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from valuetrack.access import Access, Actor, local_actor
from valuetrack.config import Settings, load_settings, redact
from valuetrack.errors import ValuetrackError
from valuetrack.registry.store import RegistryStore
from valuetrack.store.db import open_engine

if TYPE_CHECKING:
    from valuetrack.reports.store import SnapshotStore
    from valuetrack.store.aggregates import AggregateStore
    from valuetrack.store.ledger import LedgerStore
    from valuetrack.store.notes import NotesStore
    from valuetrack.store.results import FxRateStore, OverlapStore, VarStore


@dataclass
class Context:
    """Settings plus lazily opened stores, for one user."""

    settings: Settings
    actor: Actor

    @cached_property
    def engine(self) -> Engine:
        try:
            return open_engine(self.settings.store_url)
        except ValuetrackError as exc:  # e.g. a folder of the URL named in the message: mask ${VAR} values
            exc.message = redact(exc.message, self.settings.secret_values())
            exc.args = (exc.message,)
            raise

    @cached_property
    def access(self) -> Access:
        """The access check of this app database (the [auth] it recorded decides)."""
        return Access(self.engine, self.settings.auth)

    @cached_property
    def registry(self) -> RegistryStore:
        return RegistryStore(self.engine, access=self.access)

    def require_edit(self, what: str) -> Actor:
        """The acting user as the app database knows them, or PermissionDenied naming ``what``.
        Every library action that writes calls this (or a store that does) first."""
        return self.access.require_edit(self.actor, what)

    @cached_property
    def aggregates(self) -> AggregateStore:
        """The aggregates pulled from the warehouses, and the refresh log."""
        from valuetrack.store.aggregates import AggregateStore

        return AggregateStore(self.engine)

    @cached_property
    def fx_rates(self) -> FxRateStore:
        """Exchange rates read from the warehouse table of [fx] by the latest refresh."""
        from valuetrack.store.results import FxRateStore

        return FxRateStore(self.engine)

    @cached_property
    def notes(self) -> NotesStore:
        """Annotations, excluded windows and overrides of the models (writes checked by ``access``)."""
        from valuetrack.store.notes import NotesStore

        return NotesStore(self.engine, self.access)

    @cached_property
    def overlaps(self) -> OverlapStore:
        from valuetrack.store.results import OverlapStore

        return OverlapStore(self.engine)

    @cached_property
    def var(self) -> VarStore:
        """The portfolio's value at risk as each valuation computed it."""
        from valuetrack.store.results import VarStore

        return VarStore(self.engine)

    @cached_property
    def ledger(self) -> LedgerStore:
        """The valuation ledger's tables (readers use valuetrack.ledger, the read API over it)."""
        from valuetrack.store.ledger import LedgerStore

        return LedgerStore(self.engine)

    @cached_property
    def snapshots(self) -> SnapshotStore:
        """Issued monthly report snapshots."""
        from valuetrack.reports.store import SnapshotStore

        return SnapshotStore(self.engine)

    @property
    def sample_data_dir(self) -> Path:
        return self.settings.base_dir / "sample_data"


def open_context(config: str | Path | None = None, *, actor: Actor | None = None, cwd: Path | None = None) -> Context:
    settings = load_settings(config, cwd=cwd)
    return Context(settings, actor or local_actor(settings.auth))


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def past_as_of(as_of: dt.date) -> dt.date:
    """``as_of`` when a valuation may be made as of it: at most tomorrow (UTC; so a user ahead of
    UTC may give their own today). A later one would charge costs, and count days, that have not
    happened, and every read that takes the newest valuation would show them: refused."""
    from valuetrack.errors import ParameterError

    latest = today_utc() + dt.timedelta(days=1)
    if as_of > latest:
        raise ParameterError(f"--as-of {as_of} is in the future (today is {today_utc()} UTC): a valuation counts "
                             f"the days before its as-of, which have to have happened. Give a date up to {latest}, "
                             "or leave --as-of out for today.")
    return as_of
