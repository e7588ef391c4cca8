"""The model registry over the app database.

ORM-free: rows never leave this module; callers get ``RegisteredModel`` values. Every change bumps
the model's revision and writes an audit entry in the same transaction. Edits carry the revision
they were made against; the UPDATE only matches that revision, so of two edits from the same
revision the second is refused as a Conflict instead of silently overwriting the first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from valuetrack.access import Access, Actor
from valuetrack.errors import AlreadyExists, Conflict, NotFound, ParameterError, ValidationError, ValuetrackError
from valuetrack.registry.manifest import ManifestEntry
from valuetrack.registry.spec import ModelSpec, latest
from valuetrack.store.db import write_failure
from valuetrack.store.schema import audit_log, models


@dataclass(frozen=True)
class RegisteredModel:
    """A model as stored: its spec plus registry metadata."""

    spec: ModelSpec
    revision: int
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    problems: tuple[str, ...] = ()
    """Why the stored spec no longer validates (it is still listed, and valued as an error)."""

    @property
    def name(self) -> str:
        return self.spec.name

    def summary(self) -> dict[str, Any]:
        s = self.spec
        return {
            "name": s.name, "display_name": s.display_name, "owner": s.owner, "team": s.team,
            "status": s.status, "connection": s.connection, "kpi": s.kpi.name,
            "method": s.attribution.method, "monthly_cost": latest(s.monthly_cost), "revision": self.revision,
            "updated_at": _iso(self.updated_at), "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class Change:
    """What registering one manifest entry does (or did).

    Attributes:
        name: the model.
        action: "create", "update" or "unchanged".
        from_revision: the stored revision before the change (None for a create).
        to_revision: the revision after it (same as from_revision when unchanged).
        changes: dotted field → [old, new].
    """

    name: str
    action: str
    from_revision: int | None
    to_revision: int | None
    changes: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "from_revision": self.from_revision,
                "to_revision": self.to_revision, "changes": self.changes}


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    model_name: str | None
    from_revision: int | None
    to_revision: int | None
    changes: dict[str, list[Any]]
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": _iso(self.at), "actor": self.actor, "action": self.action,
                "model": self.model_name, "from_revision": self.from_revision,
                "to_revision": self.to_revision, "changes": self.changes, "note": self.note}


class RegistryStore:
    """Registered models and their audit log in the app database."""

    def __init__(self, engine: Engine, auth: Mapping[str, Any] | None = None, *, access: Access | None = None) -> None:
        """Args: engine: the app database; auth: the settings' [auth] section (the database's
        recorded one decides, see valuetrack.access); access: an Access to share instead."""
        self.engine = engine
        self.access = access or Access(engine, auth)

    # -- reading ------------------------------------------------------------------------------

    def list(self, *, status: str | None = None) -> list[RegisteredModel]:
        query = select(models).order_by(models.c.name)
        if status:
            query = query.where(models.c.status == status)
        with self.engine.connect() as conn:
            return [_to_model(r) for r in conn.execute(query).mappings()]

    def get(self, name: str) -> RegisteredModel:
        with self.engine.connect() as conn:
            row = _get_row(conn, name)
        if row is None:
            raise NotFound(f"no model named {name!r} is registered; `valuetrack models list` shows them")
        return _to_model(row)

    def audit(self, name: str | None = None, *, limit: int | None = None) -> list[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc())
        if name is not None:
            query = query.where(audit_log.c.model_name == name)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [AuditEntry(**{k: r[k] for k in ("id", "at", "actor", "action", "model_name", "from_revision",
                                                     "to_revision", "changes", "note")})
                    for r in conn.execute(query).mappings()]

    # -- writing ------------------------------------------------------------------------------

    def create(self, spec: ModelSpec, actor: Actor) -> RegisteredModel:
        """Register a new model; AlreadyExists when the name is taken."""
        actor = self.access.require_edit(actor, "register models")
        with self._transaction() as conn:
            if _get_row(conn, spec.name) is not None:
                raise AlreadyExists(f"a model named {spec.name!r} is already registered; edit it instead")
            self._insert(conn, spec, actor)
            written = _get_row(conn, spec.name)  # what this transaction wrote, not a later writer's
        return _to_model(written)

    def update(self, spec: ModelSpec, *, expected_revision: int, actor: Actor, action: str = "update") -> RegisteredModel:
        """Replace a model's spec if it is still at ``expected_revision``; Conflict otherwise."""
        actor = self.access.require_edit(actor, "retire models" if action == "retire" else "edit models")
        with self._transaction() as conn:
            row = _get_row(conn, spec.name)
            if row is None:
                raise NotFound(f"no model named {spec.name!r} is registered")
            self._update(conn, row, spec, expected_revision, actor, action)
            written = _get_row(conn, spec.name)  # what this transaction wrote, not a later writer's
        return _to_model(written)

    def retire(self, name: str, actor: Actor, *, expected_revision: int | None = None,
               on: dt.date | None = None) -> RegisteredModel:
        """Mark a model retired (its history and results are kept). A model without exposures (a
        time series, a panel) cannot show when it stopped serving: the day (``on``, default today
        UTC) closes its last intervention window (``end``), where its cost stops."""
        actor = self.access.require_edit(actor, "retire models")
        current = self.get(name)
        if on is not None and current.spec.attribution.exposures is not None:
            raise ParameterError(f"{name} has exposures: it stopped serving on the day of its last exposure, which its "
                                 "figures already follow, so a retirement day (--on) does not apply to it. Retire it "
                                 "without --on.")
        if current.spec.status == "retired":
            return current
        spec = current.spec.replace(status="retired")
        if spec.attribution.exposures is None and spec.interventions and spec.interventions[-1].end is None:
            last = spec.interventions[-1]
            day = on or dt.datetime.now(dt.timezone.utc).date()
            spec = spec.replace(interventions=(*spec.interventions[:-1], dataclasses.replace(last, end=max(day, last.start))))
        return self.update(spec,
                           expected_revision=current.revision if expected_revision is None else expected_revision,
                           actor=actor, action="retire")

    def apply(self, entries: Sequence[ManifestEntry], actor: Actor, *, dry_run: bool = False) -> list[Change]:
        """Create or update every entry in one transaction: all of them, or none on any error.

        Models absent from ``entries`` are left alone. An entry carrying a ``revision`` must match
        the stored one (Conflict otherwise). With ``dry_run`` nothing is written.
        """
        if not dry_run:
            actor = self.access.require_edit(actor, "register models")
        plan: list[Change] = []
        with self._transaction() as conn:
            for entry in entries:
                row = _get_row(conn, entry.spec.name)
                if row is None:
                    plan.append(Change(entry.spec.name, "create", None, 1, _diff({}, _spec_json(entry.spec))))
                    if not dry_run:
                        self._insert(conn, entry.spec, actor)
                    continue
                stored = int(row["revision"])
                if entry.revision is not None and entry.revision != stored:
                    raise Conflict(
                        f"model {entry.spec.name!r}: the manifest was exported at revision {entry.revision} "
                        f"but the registry is at revision {stored} (changed by {row['updated_by']} at "
                        f"{_iso(row['updated_at'])}); export again and re-apply your edit"
                    )
                changes = _diff(row["spec"], _spec_json(entry.spec))
                if not changes:
                    plan.append(Change(entry.spec.name, "unchanged", stored, stored))
                    continue
                plan.append(Change(entry.spec.name, "update", stored, stored + 1, changes))
                if not dry_run:
                    self._update(conn, row, entry.spec, stored, actor, "update")
            if dry_run:
                conn.rollback()
        return plan

    # -- internals ----------------------------------------------------------------------------

    def _transaction(self):  # noqa: ANN202
        return _Tx(self.engine)

    def _insert(self, conn: Connection, spec: ModelSpec, actor: Actor) -> None:
        now = _now()
        try:
            conn.execute(insert(models).values(**_columns(spec), revision=1, created_at=now, created_by=actor.name,
                                               updated_at=now, updated_by=actor.name))
        except IntegrityError:
            raise AlreadyExists(f"a model named {spec.name!r} was registered concurrently; reload and edit it") from None
        _audit(conn, actor, "create", spec.name, None, 1, _diff({}, _spec_json(spec)), now)

    def _update(self, conn: Connection, row: Any, spec: ModelSpec, expected: int, actor: Actor, action: str) -> None:
        changes = _diff(row["spec"], _spec_json(spec))
        if not changes:
            return
        now = _now()
        result = conn.execute(
            update(models)
            .where(and_(models.c.name == spec.name, models.c.revision == expected))
            .values(**_columns(spec), revision=expected + 1, updated_at=now, updated_by=actor.name)
        )
        if result.rowcount != 1:
            current = _get_row(conn, spec.name)
            raise Conflict(
                f"model {spec.name!r} was changed since revision {expected} "
                f"(now revision {current['revision'] if current else '?'}, by "
                f"{current['updated_by'] if current else '?'}); reload it and re-apply your edit"
            )
        _audit(conn, actor, action, spec.name, expected, expected + 1, changes, now)


class _Tx:
    """engine.begin() that turns a locked SQLite file into a clear, retryable error."""

    def __init__(self, engine: Engine) -> None:
        self._cm = engine.begin()

    def __enter__(self) -> Connection:
        try:
            return self._cm.__enter__()
        except OperationalError as exc:
            raise ValuetrackError(write_failure(exc.orig, done="nothing was written")) from None

    def __exit__(self, *exc: Any) -> Any:
        try:
            handled = self._cm.__exit__(*exc)
        except OperationalError as err:
            raise ValuetrackError(_not_saved(err)) from None
        if isinstance(exc[1], OperationalError):  # e.g. disk full or locked mid-transaction: rolled back above
            raise ValuetrackError(_not_saved(exc[1])) from None
        return handled


def _not_saved(err: OperationalError) -> str:
    text = write_failure(err.orig, done="nothing was written")
    return text if "read-only" in text else f"the app database could not save the change ({err.orig}); nothing was written"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat(timespec="seconds")


def _spec_json(spec: ModelSpec) -> dict[str, Any]:
    return json.loads(json.dumps(spec.to_dict(), default=str))


def _columns(spec: ModelSpec) -> dict[str, Any]:
    return {
        "name": spec.name, "display_name": spec.display_name, "owner": spec.owner, "team": spec.team,
        "status": spec.status, "connection": spec.connection, "kpi_name": spec.kpi.name,
        "method": spec.attribution.method, "spec": _spec_json(spec),
    }


def _get_row(conn: Connection, name: str) -> Any:
    return conn.execute(select(models).where(models.c.name == name)).mappings().first()


_PARSED: dict[str, tuple[ModelSpec | None, list[str]]] = {}
"""Stored specs already read, by their JSON text and the registered methods (validation asks the
method): a spec is immutable, and a refresh at 200 models reads the registry several times."""


def _parsed(stored: Any) -> tuple[ModelSpec | None, list[str]]:
    from valuetrack.attribution import methods

    key = json.dumps([stored, methods.names()], sort_keys=True, default=str)
    if key not in _PARSED:
        if len(_PARSED) >= 4096:
            _PARSED.clear()
        _PARSED[key] = ModelSpec.from_stored(stored)
    spec, problems = _PARSED[key]
    return spec, list(problems)


def _to_model(row: Any) -> RegisteredModel:
    spec, problems = _parsed(row["spec"])
    if spec is None:
        raise ValidationError([f"the stored registration of {row['name']!r} cannot be read; register it again "
                               "from its manifest"] + problems)
    return RegisteredModel(
        spec=spec, revision=int(row["revision"]),
        created_at=row["created_at"], created_by=row["created_by"],
        updated_at=row["updated_at"], updated_by=row["updated_by"], problems=tuple(problems),
    )


def _audit(conn: Connection, actor: Actor, action: str, name: str, frm: int | None, to: int | None,
           changes: dict[str, list[Any]], at: dt.datetime) -> None:
    conn.execute(insert(audit_log).values(at=at, actor=actor.name, action=action, model_name=name,
                                          from_revision=frm, to_revision=to, changes=changes))


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}; lists stay whole."""
    if not isinstance(data, dict):
        return {prefix[:-1]: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    a, b = _flatten(old), _flatten(new)
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def entries_of(stored: Iterable[RegisteredModel]) -> list[ManifestEntry]:
    """Registry → manifest entries (for export)."""
    return [ManifestEntry(m.spec, m.revision) for m in stored]
