"""Settings: ``valuetrack.toml`` in the working folder (or at $VALUETRACK_CONFIG).

With no settings file, valuetrack runs on the embedded demo: a DuckDB warehouse at
``sample_data/demo.duckdb`` and a SQLite app database ``valuetrack.db``, both in the working folder.

``${VAR}`` inside a connection's values is read from the environment, then from
``.streamlit/secrets.toml`` next to the settings file. Resolved values are secrets: they are only
ever handed to the driver, never stored in the app database, and ``redact`` removes them from any
text that is shown, logged or exported.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from valuetrack.errors import ConfigError

CONFIG_ENV = "VALUETRACK_CONFIG"
DEFAULT_FILE = "valuetrack.toml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEYS = re.compile(r"(password|secret|token|private_key|credentials|key_id|access_key)", re.I)
_KNOWN_TOP = {"store", "connections", "auth", "refresh", "notifications", "fx"}


@dataclass(frozen=True)
class ConnectionSettings:
    """One warehouse connection as written in the settings file (``${VAR}`` left unresolved).

    Attributes:
        name: the name models refer to in their ``connection`` field.
        url: a SQLAlchemy URL, possibly holding ``${VAR}`` references.
        options: the other keys of the section (credentials file, query timeout, ...), unresolved.
    """

    name: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def resolved(self, secrets: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        """The URL and options with every ``${VAR}`` replaced; ConfigError names a missing VAR."""
        where = f"[connections.{self.name}]"
        return _resolve(self.url, secrets, where + ".url"), {
            k: _resolve(v, secrets, f"{where}.{k}") if isinstance(v, str) else v for k, v in self.options.items()
        }

    @property
    def dialect(self) -> str:
        """The URL's backend name (``duckdb``, ``bigquery``, ``snowflake``, ``awsathena`` ...)."""
        return self.url.split(":", 1)[0].split("+", 1)[0]

    def display_url(self) -> str:
        """The URL as shown to users: ``${VAR}`` kept as written, passwords masked."""
        return redact_url(self.url)


@dataclass(frozen=True)
class FxSettings:
    """``[fx]``: the dated exchange rates of models whose ``currency`` is not the reporting one.

    A rate is units of the reporting currency per 1 unit of the row's currency (reporting USD, a
    EUR row with rate 1.085: 1 EUR = 1.085 USD); ``quote`` states it and must equal
    ``[store].currency``. The rows come from ``csv`` (a file, read at each valuation) or from
    ``table`` through ``connection`` (read at each refresh and kept in the app database).

    Attributes:
        quote: the currency the rates are expressed in (= the reporting currency).
        csv: the CSV file (absolute, resolved against the settings file's folder), or None.
        connection: the connection of the warehouse table, or None.
        table: the warehouse table (optionally schema-qualified), or None.
        date, currency, rate: the column names (in the CSV or the table).
    """

    quote: str
    csv: Path | None = None
    connection: str | None = None
    table: str | None = None
    date: str = "date"
    currency: str = "currency"
    rate: str = "rate"

    @property
    def source(self) -> str:
        """Where the rates come from, as messages name it."""
        if self.csv is not None:
            return f"{self.csv.name} ([fx].csv)"
        return f"table {self.table} of connection {self.connection!r} ([fx].table)"


@dataclass(frozen=True)
class Settings:
    """The effective settings.

    Attributes:
        store_url: SQLAlchemy URL of the app database.
        currency: reporting currency of every money figure.
        connections: named warehouse connections.
        auth: the ``[auth]`` section (roles of users), empty for the open local mode.
        path: the settings file, or None when running on the embedded defaults.
        base_dir: the folder relative paths are resolved against.
        notifications: the ``[notifications]`` section (checked; ``${VAR}`` left unresolved), empty
            when notifications are off (valuetrack.notifications reads it).
        store_url_as_written: ``[store].url`` before ``${VAR}`` was resolved (what messages show).
        fx: where exchange rates come from (``[fx]``), or None when every model is in the reporting
            currency.
    """

    store_url: str
    currency: str
    connections: Mapping[str, ConnectionSettings]
    auth: Mapping[str, Any]
    path: Path | None
    base_dir: Path
    notifications: Mapping[str, Any] = field(default_factory=dict)
    store_url_as_written: str | None = None
    fx: FxSettings | None = None

    def connection(self, name: str) -> ConnectionSettings:
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none"
            raise ConfigError(
                f"unknown connection {name!r}; connections in {self.source}: {known}. "
                f"Add a [connections.{name}] section with a url."
            ) from None

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "the embedded defaults (no valuetrack.toml)"

    def secrets(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """Values available to ``${VAR}``: .streamlit/secrets.toml, overridden by the environment."""
        values: dict[str, str] = {}
        secrets_file = self.base_dir / ".streamlit" / "secrets.toml"
        if secrets_file.exists():
            data = _read_toml(secrets_file)
            values.update({k: str(v) for k, v in data.items() if not isinstance(v, dict)})
        values.update(os.environ if env is None else env)
        return values

    def secret_values(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Every resolved ``${VAR}`` value of the settings (connections, the store URL, notification
        targets) and every inline password: the strings ``redact`` must hide."""
        secrets = self.secrets(env)
        targets = list(self.notifications.get("targets", []))
        found = referenced_values(targets, secrets)  # webhook tokens, SMTP passwords
        for text in targets:
            found.extend(url_secrets(text))
        for conn in self.connections.values():
            found += referenced_values([conn.url, *[v for v in conn.options.values() if isinstance(v, str)]], secrets)
            found.extend(v for k, v in conn.options.items()  # inline secrets (a ${VAR} reference is not one)
                         if isinstance(v, str) and _SECRET_KEYS.search(k) and v and not _VAR.search(v))
            try:
                url = make_url(_VAR.sub("x", conn.url))
                if url.password and url.password != "x":
                    found.append(str(url.password))
            except ArgumentError:
                pass
        found += referenced_values([self.store_url_as_written or ""], secrets)  # anywhere in it, path included
        try:  # the app database's own password (PostgreSQL)
            store = make_url(self.store_url)
            if store.password:
                found.append(str(store.password))
            found.extend(str(v) for k, v in store.query.items() if _SECRET_KEYS.search(k) and isinstance(v, str))
        except ArgumentError:
            pass
        return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def load_settings(path: str | Path | None = None, *, cwd: Path | None = None) -> Settings:
    """Load the settings file: ``path``, else $VALUETRACK_CONFIG, else ./valuetrack.toml, else defaults."""
    cwd = Path.cwd() if cwd is None else cwd
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else cwd / DEFAULT_FILE
    if not file.exists():
        if explicit:
            raise ConfigError(f"settings file {str(file)!r} does not exist (from {'--config' if path else CONFIG_ENV})")
        return _defaults(cwd)
    return _from_dict(_read_toml(file), file.resolve())


def _read_toml(file: Path) -> dict[str, Any]:
    """A settings or secrets file, within valuetrack.limits' size and nesting bounds."""
    from valuetrack.errors import ValidationError
    from valuetrack.limits import load_toml, read_text

    try:
        return load_toml(read_text(file, file.name), str(file))
    except ValidationError as exc:
        raise ConfigError(exc.problems[0]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read it: {exc}") from None


def _defaults(base: Path) -> Settings:
    return Settings(
        store_url=_sqlite_url(base / "valuetrack.db"),
        currency="USD",
        connections={"demo": ConnectionSettings("demo", f"duckdb:///{base / 'sample_data' / 'demo.duckdb'}")},
        auth={},
        path=None,
        base_dir=base,
    )


def _from_dict(data: dict[str, Any], file: Path) -> Settings:
    base = file.parent
    unknown = set(data) - _KNOWN_TOP
    if unknown:
        raise ConfigError(f"{file.name}: unknown section {sorted(unknown)[0]!r}; known: {', '.join(sorted(_KNOWN_TOP))}")
    for section in _KNOWN_TOP:
        if section in data and not isinstance(data[section], dict):
            raise ConfigError(f"{file.name}: [{section}] must be a table (a [{section}] section), "
                              f"not {type(data[section]).__name__}")
    store = data.get("store", {})
    raw_url = store.get("url", "sqlite:///valuetrack.db")
    if not isinstance(raw_url, str):
        raise ConfigError(f"{file.name}: [store].url must be a string such as \"sqlite:///valuetrack.db\"")
    store_url = _absolute_file_url(raw_url, base)
    currency = str(store.get("currency", "USD"))
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ConfigError(f"{file.name}: [store].currency {currency!r} must be a 3-letter code such as 'USD'")
    connections = {}
    for name, section in (data.get("connections") or {}).items():
        if not isinstance(section, dict) or not isinstance(section.get("url"), str):
            raise ConfigError(f"{file.name}: [connections.{name}] needs a url = \"...\" (a SQLAlchemy URL)")
        options = {k: v for k, v in section.items() if k != "url"}
        connections[name] = ConnectionSettings(name, _absolute_file_url(section["url"], base), options)
    if not connections:
        connections["demo"] = _defaults(base).connections["demo"]
    settings = Settings(store_url, currency, connections, _check_auth(data.get("auth", {}), file.name), file, base,
                        _check_notifications(data.get("notifications", {}), file.name),
                        fx=_check_fx(data.get("fx", {}), file.name, base, currency, connections))
    if _VAR.search(store_url):  # a team database's password comes from the environment or secrets.toml
        settings = replace(settings, store_url=_resolve(store_url, settings.secrets(), "[store].url"),
                           store_url_as_written=store_url)
    return settings


_AUTH_KEYS = {"default_role": str, "editors": list, "admins": list, "service_accounts": dict}


def _check_auth(auth: dict[str, Any], source: str) -> dict[str, Any]:
    """Refuse an [auth] section that would not mean what it says (a string of editors would match
    by substring; an unknown role or key would silently fall back to another role)."""
    from valuetrack.access import ROLES

    for key, value in auth.items():
        if key not in _AUTH_KEYS:
            raise ConfigError(f"{source}: [auth]: unknown key {key!r}; known: {', '.join(_AUTH_KEYS)}")
        if not isinstance(value, _AUTH_KEYS[key]):
            kind = {list: "a list of e-mails or logins", str: "a string", dict: "a table"}[_AUTH_KEYS[key]]
            raise ConfigError(f"{source}: [auth].{key} must be {kind} (got {type(value).__name__})")
        if isinstance(value, list) and not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"{source}: [auth].{key} must hold non-empty strings only")
    role = auth.get("default_role", "viewer")
    if role not in ROLES:
        raise ConfigError(f"{source}: [auth].default_role {role!r} is not one of {', '.join(ROLES)}")
    for name, account in (auth.get("service_accounts") or {}).items():
        where = f"{source}: [auth.service_accounts.{name}]"
        if not isinstance(account, dict) or set(account) - {"token_sha256", "role"}:
            raise ConfigError(f"{where} must be a table with token_sha256 = \"<64 hex digits>\" and optionally role")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", str(account.get("token_sha256", ""))):
            raise ConfigError(f"{where}.token_sha256 must be the sha256 of the token as 64 hex digits "
                              "(python -c \"import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())\" TOKEN)")
        if account.get("role", "editor") not in ROLES:
            raise ConfigError(f"{where}.role {account.get('role')!r} is not one of {', '.join(ROLES)}")
    return auth


_FX_KEYS = ("quote", "csv", "connection", "table", "date", "currency", "rate")


def _check_fx(section: dict[str, Any], source: str, base: Path, currency: str,
              connections: Mapping[str, ConnectionSettings]) -> FxSettings | None:
    """Refuse an [fx] section whose rates could be read the wrong way round or not at all."""
    if not section:
        return None
    where = f"{source}: [fx]"
    for key, value in section.items():
        if key not in _FX_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(_FX_KEYS)}")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}.{key} must be a non-empty string (got {value!r})")
    quote = section.get("quote")
    if quote is None:
        raise ConfigError(f"{where}.quote is missing: state the currency the rates are in, quote = \"{currency}\" "
                          f"(each rate = {currency} per 1 unit of the row's currency)")
    if quote != currency:
        raise ConfigError(f"{where}.quote is {quote!r} but the reporting currency ([store].currency) is {currency!r}: "
                          f"rates must be {currency} per 1 unit of each currency; convert the table (a rate quoted "
                          f"the other way round is 1 / rate)")
    has_csv, has_table = "csv" in section, "table" in section or "connection" in section
    if has_csv == has_table:
        raise ConfigError(f"{where}: give either csv = \"fx_rates.csv\" (a file) or connection and table "
                          "(a warehouse table), not both and not neither")
    if has_table:
        if "table" not in section or "connection" not in section:
            raise ConfigError(f"{where}: a warehouse table needs both connection = \"NAME\" and table = \"TABLE\"")
        if section["connection"] not in connections:
            known = ", ".join(sorted(connections)) or "none"
            raise ConfigError(f"{where}.connection: unknown connection {section['connection']!r}; known: {known}")
        from valuetrack.errors import ValidationError
        from valuetrack.sqlsafety import check_identifier

        for key in ("table", "date", "currency", "rate"):
            try:
                check_identifier(section.get(key, key), qualified=key == "table")
            except ValidationError as exc:
                raise ConfigError(f"{where}.{key}: {exc.problems[0]}") from None
    csv = None
    if has_csv:
        csv = Path(section["csv"])
        csv = csv if csv.is_absolute() else base / csv
    return FxSettings(quote, csv, section.get("connection"), section.get("table"), section.get("date", "date"),
                      section.get("currency", "currency"), section.get("rate", "rate"))


NOTIFICATION_EVENTS = ("raised", "escalated", "cleared", "refresh_failed")
_NOTIFY_KEYS = {"targets": list, "base_url": str, "events": list, "clear_after": int, "retry_days": int}


def _check_notifications(section: dict[str, Any], source: str) -> dict[str, Any]:
    """Refuse a [notifications] section that would silently send nothing or send the wrong things."""
    where = f"{source}: [notifications]"
    for key, value in section.items():
        if key not in _NOTIFY_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(_NOTIFY_KEYS)}")
        if not isinstance(value, _NOTIFY_KEYS[key]) or isinstance(value, bool):
            kind = {list: "a list", str: "a string", int: "a whole number"}[_NOTIFY_KEYS[key]]
            raise ConfigError(f"{where}.{key} must be {kind} (got {type(value).__name__})")
    if not section:
        return {}
    targets = section.get("targets") or []
    if not targets or not all(isinstance(t, str) and "://" in t for t in targets):
        raise ConfigError(f"{where}.targets must list at least one URL, e.g. targets = [\"${{SLACK_WEBHOOK_URL}}\", "
                          "\"mailtos://user:${SMTP_PASSWORD}@smtp.example.com?to=team@example.com\"] (Apprise URLs)")
    base_url = section.get("base_url", "http://localhost:8501")
    if not re.fullmatch(r"https?://[^\s]+", base_url):
        raise ConfigError(f"{where}.base_url {base_url!r} must be the dashboard's address, e.g. https://valuetrack.example.com")
    events = section.get("events", list(NOTIFICATION_EVENTS))
    bad = [e for e in events if e not in NOTIFICATION_EVENTS]
    if bad:
        raise ConfigError(f"{where}.events: {bad[0]!r} is not one of {', '.join(NOTIFICATION_EVENTS)}")
    for key, default in (("clear_after", 2), ("retry_days", 7)):
        if not 1 <= section.get(key, default) <= 365:
            raise ConfigError(f"{where}.{key} must be between 1 and 365 (got {section[key]})")
    return {"targets": list(targets), "base_url": base_url.rstrip("/"), "events": list(events),
            "clear_after": section.get("clear_after", 2), "retry_days": section.get("retry_days", 7)}


def url_secrets(url: str) -> list[str]:
    """The parts of a notification URL that may be secret: password, path segments (webhook tokens)
    and query values. ``${VAR}`` references are not secrets themselves."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [password or "", *parts.path.split("/"), *(v for _, v in parse_qsl(parts.query))]
    return [f for f in found if len(f) >= 4 and not _VAR.fullmatch(f) and "@" not in f]


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _absolute_file_url(url: str, base: Path) -> str:
    """Make relative sqlite/duckdb file URLs relative to the settings file's folder."""
    for prefix in ("sqlite:///", "duckdb:///"):
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if rest and not rest.startswith("/") and not rest.startswith(":memory:") and "${" not in rest:
                return prefix + str(base / rest)
    return url


def _resolve(text: str, secrets: Mapping[str, str], where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        var = m.group(1)
        if var not in secrets:
            raise ConfigError(
                f"{where} refers to ${{{var}}}, which is neither an environment variable nor a key of "
                ".streamlit/secrets.toml; set it there (it is never stored by valuetrack)"
            )
        return secrets[var]

    return _VAR.sub(sub, text)


def redact_url(url: str) -> str:
    """A URL safe to show: the password and secret-looking query values masked."""
    try:
        u = make_url(url)
    except ArgumentError:
        return _VAR.sub(lambda m: m.group(0), re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url))
    if u.password is not None and not str(u.password).startswith("${"):
        u = u.set(password="***")
    query = {k: ("***" if _SECRET_KEYS.search(k) else v) for k, v in u.query.items()}
    rendered = u.set(query=query).render_as_string(hide_password=False)
    return rendered.replace("%24%7B", "${").replace("%7D", "}")  # keep ${VAR} readable


def referenced_values(texts: list[str], secrets: Mapping[str, str]) -> list[str]:
    """The resolved values of the ``${VAR}`` references in ``texts``: exactly what must be masked
    (a bare environment value that no setting refers to is not a secret of ours)."""
    return [secrets[var] for text in texts for var in _VAR.findall(text) if secrets.get(var)]


def redact(text: str, secret_values: list[str]) -> str:
    """Replace every secret value in ``text`` with ``***``."""
    for value in secret_values:
        text = text.replace(value, "***")
    return text
