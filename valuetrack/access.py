"""Who may change what. Library calls that change the registry take an ``Actor`` and refuse a
viewer, so the rule holds whether the call comes from a page, the CLI or a script.

Roles come from the settings' ``[auth]`` section::

    [auth]
    default_role = "viewer"            # anyone who logs in and is not listed below
    editors = ["ana@example.com"]      # may register, edit, retire models and run refreshes
    admins = ["lead@example.com"]

With no ``[auth]`` section valuetrack runs in the open local mode: a single local user who may edit.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Any, Mapping

from valuetrack.errors import PermissionDenied

ROLES = ("viewer", "editor", "admin")


@dataclass(frozen=True)
class Actor:
    """The person (or job) making a call.

    Attributes:
        name: e-mail or login, recorded in the audit log.
        role: "viewer", "editor" or "admin".
    """

    name: str
    role: str = "editor"

    @property
    def can_edit(self) -> bool:
        return self.role in ("editor", "admin")

    def require_edit(self, what: str) -> None:
        if not self.can_edit:
            raise PermissionDenied(
                f"{self.name} is a viewer and may not {what}; ask an admin to add you to "
                "[auth].editors in valuetrack.toml"
            )


def role_for(user: str, auth: Mapping[str, Any]) -> str:
    """The role of ``user`` under an ``[auth]`` section (open local mode when it is empty)."""
    if not auth:
        return "editor"
    if user in (auth.get("admins") or []):
        return "admin"
    if user in (auth.get("editors") or []):
        return "editor"
    role = str(auth.get("default_role", "viewer"))
    return role if role in ROLES else "viewer"


def local_actor(auth: Mapping[str, Any] | None = None) -> Actor:
    """The actor for the command line: $VALUETRACK_USER or the login name."""
    name = os.environ.get("VALUETRACK_USER") or _login()
    return Actor(name, role_for(name, auth or {}))


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "local"
