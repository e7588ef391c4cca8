"""Who may change what, decided by the store at the moment of the write (docs/architecture.md,
"Access"; docs/decisions.md D21).

Roles come from the settings' ``[auth]`` section::

    [auth]
    default_role = "viewer"            # anyone who signs in and is not listed below
    editors = ["ana@example.com"]      # may register, edit, retire models and run refreshes
    admins = ["lead@example.com"]      # editors who may also change [auth] itself

    [auth.service_accounts.nightly-refresh]      # the command line's credential
    token_sha256 = "9f86d0…"           # sha256 of the token; the token itself is in $VALUETRACK_TOKEN
    role = "editor"

With no ``[auth]`` anywhere valuetrack runs in the open local mode: a single local user who may edit.

The rules:

- An :class:`Actor` is a *claim*. :meth:`Access.require_edit` looks the role up in the ``[auth]``
  mapping that the app database recorded (table ``app_settings``), so neither the caller nor a
  different settings file decides it. A claimed ``role`` can only lower the looked-up role.
- Under ``[auth]`` an identity counts only when it was authenticated: a Streamlit OIDC login
  (:func:`oidc_actor`) or a service-account token from ``$VALUETRACK_TOKEN``. ``$VALUETRACK_USER``
  and an ``Actor`` built by hand are names, not credentials: they are viewers.
- The first time settings with ``[auth]`` open an app database, the database records that
  ``[auth]``. From then on a settings file without ``[auth]`` (or with a different one) changes
  nothing; an admin of the recorded ``[auth]`` who writes with a changed ``[auth]`` makes the
  change (audited).

In-process this stops spoofing by configuration and by mistake; a program holding the app
database's own credentials can always write to it directly, which is why a team deployment keeps
those credentials on the server (docs/dashboard.md).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from valuetrack.errors import PermissionDenied

ROLES = ("viewer", "editor", "admin")
TOKEN_ENV = "VALUETRACK_TOKEN"
USER_ENV = "VALUETRACK_USER"
_RANK = {r: i for i, r in enumerate(ROLES)}
_SIGNED_IN = object()  # marks identities established by a login provider (see oidc_actor)


@dataclass(frozen=True)
class Actor:
    """The person (or job) making a call: a claim the store checks, not a grant.

    Attributes:
        name: e-mail or login as given; the audit log records the *authenticated* name instead.
        role: a role the caller asks to act with; it can lower the looked-up role, never raise it.
            None (the default) means "whatever the [auth] mapping says".
        via: how the identity was established: "claimed" (a name only), "oidc" (a login provider),
            "token" (a service-account token), "local" (the open local mode).
    """

    name: str
    role: str | None = None
    via: str = "claimed"
    _token_sha256: str | None = field(default=None, repr=False, compare=False)
    _proof: object = field(default=None, repr=False, compare=False)

    @property
    def can_edit(self) -> bool:
        """Whether to *offer* edit controls; the store decides whether an edit happens."""
        return self.role in ("editor", "admin")

    @property
    def signed_in(self) -> bool:
        return self._proof is _SIGNED_IN


def oidc_actor(email: str) -> Actor:
    """A user the dashboard's login provider (Streamlit OIDC) has authenticated (role: as [auth] says)."""
    return Actor(email, via="oidc", _proof=_SIGNED_IN)


def local_actor(auth: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Actor:
    """The command line's actor: a service-account token from $VALUETRACK_TOKEN when set, else the
    name in $VALUETRACK_USER or the login name (a name only: a viewer under [auth])."""
    env = os.environ if env is None else env
    name = env.get(USER_ENV) or _login()
    token = env.get(TOKEN_ENV)
    if token:
        digest = token_sha256(token)
        account = _service_account(digest, auth or {})
        return Actor(account[0] if account else name, account[1] if account else None, via="token",
                     _token_sha256=digest)
    if not auth:
        return Actor(name, "editor", via="local")
    return Actor(name, "viewer")


def token_sha256(token: str) -> str:
    """What ``[auth.service_accounts.NAME].token_sha256`` holds for ``token``."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def role_for(user: str, auth: Mapping[str, Any]) -> str:
    """The role of a signed-in ``user`` under an ``[auth]`` section (editor in the open local mode)."""
    if not auth:
        return "editor"
    if user in (auth.get("admins") or []):
        return "admin"
    if user in (auth.get("editors") or []):
        return "editor"
    role = str(auth.get("default_role", "viewer"))
    return role if role in ROLES else "viewer"


def _service_account(digest: str, auth: Mapping[str, Any]) -> tuple[str, str] | None:
    for name, account in (auth.get("service_accounts") or {}).items():
        if hmac.compare_digest(str(account.get("token_sha256", "")).lower(), digest):
            return name, str(account.get("role", "editor"))
    return None


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "local"


class Access:
    """The access check every store's writes go through (one per engine and settings).

    Args:
        engine: the app database.
        auth: the ``[auth]`` section of the settings in use (empty when it has none).
    """

    def __init__(self, engine: Engine, auth: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        self.settings_auth = dict(auth or {})
        if self.settings_auth and self.recorded() is None:
            self._record(self.settings_auth, None)

    def recorded(self) -> dict[str, Any] | None:
        """The [auth] mapping this app database enforces, or None (open local mode)."""
        from valuetrack.store.schema import app_settings

        with self.engine.connect() as conn:
            value = conn.execute(sa.select(app_settings.c.value).where(app_settings.c.key == "auth")).scalar()
        return value or None

    def policy(self) -> dict[str, Any]:
        """The [auth] mapping that decides: the recorded one, else the settings' own."""
        return self.recorded() or self.settings_auth

    def role_of(self, actor: Actor) -> tuple[str, str]:
        """(authenticated name, role) of ``actor`` under the recorded [auth]."""
        policy = self.policy()
        if actor._token_sha256:
            account = _service_account(actor._token_sha256, policy)
            found = account or (actor.name, "viewer")
        elif not policy:
            found = (actor.name, "editor")
        elif actor.signed_in:
            found = (actor.name, role_for(actor.name, policy))
        else:
            found = (actor.name, "viewer")
        name, role = found
        if actor.role in _RANK and _RANK[actor.role] < _RANK[role]:
            role = actor.role
        return name, role

    def require_edit(self, actor: Actor, what: str) -> Actor:
        """The actor as the store knows it (authenticated name, looked-up role), or PermissionDenied."""
        name, role = self.role_of(actor)
        if role not in ("editor", "admin"):
            raise PermissionDenied(f"{name} is a viewer and may not {what}; {self._why(actor)}")
        checked = replace(actor, name=name, role=role, _proof=_SIGNED_IN)
        recorded = self.recorded()
        if recorded and self.settings_auth and self.settings_auth != recorded and role == "admin":
            self._record(self.settings_auth, checked)  # an admin of the recorded [auth] changes it
        return checked

    def _why(self, actor: Actor) -> str:
        if actor._token_sha256:
            if _service_account(actor._token_sha256, self.policy()) is None:
                return (f"${TOKEN_ENV} matches no [auth.service_accounts] entry of this app database; "
                        "check the token, or ask an admin to add its sha256")
            return "ask an admin to give this service account role = \"editor\""
        if self.policy() and not actor.signed_in:
            return (f"this app database requires [auth] and a name (${USER_ENV}, --config, Actor(...)) "
                    f"is not a credential: set ${TOKEN_ENV} to a service account's token "
                    "([auth.service_accounts] in valuetrack.toml) or sign in to the dashboard")
        return "ask an admin to add you to [auth].editors in valuetrack.toml"

    def _record(self, auth: Mapping[str, Any], by: Actor | None) -> None:
        from valuetrack.store.schema import app_settings, audit_log

        now = dt.datetime.now(dt.timezone.utc)
        value = json.loads(json.dumps(dict(auth)))
        try:
            with self.engine.begin() as conn:
                done = conn.execute(sa.update(app_settings).where(app_settings.c.key == "auth")
                                    .values(value=value, updated_at=now, updated_by=by.name if by else None))
                if done.rowcount == 0:
                    conn.execute(sa.insert(app_settings).values(key="auth", value=value, updated_at=now,
                                                                updated_by=by.name if by else None))
                conn.execute(sa.insert(audit_log).values(
                    at=now, actor=by.name if by else "settings", action="auth", model_name=None, from_revision=None,
                    to_revision=None, changes={}, note="[auth] recorded" if by is None else "[auth] changed by an admin"))
        except OperationalError:  # a read-only app database: nothing can be written through it anyway
            pass
        except SQLAlchemyError:  # a concurrent first open recorded it
            pass
