"""Typed errors. Every error a user can cause carries a message that names what is wrong and how
to fix it; the CLI prints the message (never a traceback) and exits with ``exit_code``."""

from __future__ import annotations


class ValuetrackError(Exception):
    """Base of every error valuetrack raises on purpose.

    Attributes:
        code: a short stable identifier scripts can match on (e.g. ``"not_found"``).
        exit_code: the CLI's exit status for this error (1 unless stated).
    """

    code = "error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class ConfigError(ValuetrackError):
    """The settings file or a secret it refers to is missing or malformed."""

    code = "config"


class ValidationError(ValuetrackError):
    """Input failed validation. ``problems`` lists every problem found, each naming the field."""

    code = "invalid"

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        head = "invalid input" if len(self.problems) > 1 else "invalid input: " + self.problems[0]
        if len(self.problems) > 1:
            head += f" ({len(self.problems)} problems):\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(head)


class ParameterError(ValuetrackError, ValueError):
    """A function was called with a parameter outside its bounds (a programming or usage error)."""

    code = "parameter"


class NotFound(ValuetrackError):
    code = "not_found"


class AlreadyExists(ValuetrackError):
    code = "already_exists"


class Conflict(ValuetrackError):
    """An edit was made against an older revision than the stored one."""

    code = "conflict"


class NoModels(ValuetrackError):
    """A command that reports on the registered models found none: the wrong folder or settings,
    most likely, so it says so instead of reporting a portfolio of zero."""

    code = "no_models"


class PermissionDenied(ValuetrackError):
    code = "permission_denied"


class MissingDependency(ValuetrackError):
    """An optional driver is not installed; the message gives the exact pip command."""

    code = "missing_dependency"


class UnsafeSQL(ValidationError):
    """A table/column name, where-filter or custom SQL was refused as unsafe or not read-only."""

    code = "unsafe_sql"


class WarehouseError(ValuetrackError):
    """The warehouse could not answer (down, timeout, throttled after retries, bad query)."""

    code = "warehouse"
