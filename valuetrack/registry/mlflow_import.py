"""``valuetrack models import mlflow``: propose manifest entries from an MLflow model registry
(docs/mlflow.md).

MLflow knows a model's name, description, tags (an owner, a team), its versions and their aliases.
It records no deployment date, so each version's live-from date comes from its tag
``valuetrack.live_from`` (YYYY-MM-DD) or is left ``TO FILL``; so are the KPI and the attribution,
which only a person can answer. The proposal is a manifest file the person completes and registers
with ``valuetrack models register --file``.

Merging is conservative and idempotent: the starting point of each model is its entry in the
existing output file (work in progress), else the registered model, else a new draft. MLflow only
fills what is missing or still ``TO FILL``; a value a person set is never overwritten. A version
already present (an intervention or annotation labelled ``MLflow version N``) is not added again.
The first version is the model's launch (an intervention); a later version is an intervention
(a relaunch) for time-series models and an annotation for the others (A/B: the holdout keeps
measuring across versions, so a new version changes no window).
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import tomli_w

from valuetrack.errors import MissingDependency, ValidationError, ValuetrackError
from valuetrack.registry.manifest import HEADER, TO_FILL, to_fill_paths
from valuetrack.registry.spec import NAME_RE

LIVE_FROM_TAG = "valuetrack.live_from"
NAME_TAG = "valuetrack.name"
OWNER_TAGS = ("valuetrack.owner", "owner")
TEAM_TAGS = ("valuetrack.team", "team")
CONNECTION_TAG = "valuetrack.connection"


def _needs_interventions(method: str) -> bool:
    """Time-series and panel methods read launches from the interventions (the method registry says which)."""
    from valuetrack.attribution import methods

    return method in methods.names() and methods.get(method).needs_interventions


_VERSION_LABEL = re.compile(r"^MLflow version (\d+)\b")
DRAFT_NOTE = (
    "# Proposed by `valuetrack models import mlflow`. Replace every \"TO FILL\" (the KPI, the attribution\n"
    "# and its [models.attribution.exposures]/[outcomes] or [series] tables, live-from dates MLflow\n"
    "# does not know), then `valuetrack models register --file THIS_FILE`. Re-running the import keeps\n"
    "# what you wrote and only adds new versions. See docs/mlflow.md.\n"
)


@dataclass(frozen=True)
class MlflowVersion:
    version: int
    live_from: dt.date | None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class MlflowModel:
    """What the MLflow registry knows about one registered model."""

    name: str
    description: str
    tags: dict[str, str]
    versions: tuple[MlflowVersion, ...]


@dataclass(frozen=True)
class ImportedModel:
    """The import's proposal for one model.

    Attributes:
        name: the valuetrack name.
        mlflow_name: the registered model's name in MLflow.
        action: "new" (not registered), "update" (the entry changes), "unchanged".
        changes: the fields MLflow filled or added (dotted paths).
        to_fill: the fields still ``TO FILL``.
    """

    name: str
    mlflow_name: str
    action: str
    changes: list[str]
    to_fill: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ImportResult:
    """The proposal: the manifest text to write and what changed per model."""

    models: list[ImportedModel]
    text: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"models": [m.to_dict() for m in self.models], "warnings": self.warnings}


# ------------------------------------------------------------------------------------------------
# reading MLflow


def read_mlflow(tracking_uri: str, filter_string: str | None = None) -> tuple[list[MlflowModel], list[str]]:
    """Registered models (with versions, aliases, tags, descriptions) through the MLflow client."""
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ModuleNotFoundError:
        raise MissingDependency('the MLflow import needs the MLflow client: pip install "valuetrack[mlflow]"') from None
    # a registry that is down should say so in seconds, not after MLflow's default minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from valuetrack.config import redact, url_secrets

    shown = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    warnings: list[str] = []
    try:
        registered, token = [], None
        while True:
            page = client.search_registered_models(filter_string=filter_string, max_results=200, page_token=token)
            registered.extend(page)
            token = page.token
            if not token:
                break
        out = []
        for rm in registered:
            versions = [v for v in client.search_model_versions(f"name='{_quote(rm.name)}'")]
            by_alias: dict[int, list[str]] = {}
            for alias, number in (rm.aliases or {}).items():
                by_alias.setdefault(int(number), []).append(alias)
            parsed = []
            for v in sorted(versions, key=lambda v: int(v.version)):
                live = (v.tags or {}).get(LIVE_FROM_TAG)
                day = None
                if live:
                    try:
                        day = dt.date.fromisoformat(live.strip())
                    except ValueError:
                        warnings.append(f"MLflow model {rm.name!r} version {v.version}: tag {LIVE_FROM_TAG}={live!r} "
                                        "is not a date YYYY-MM-DD; its live-from date is left TO FILL")
                parsed.append(MlflowVersion(int(v.version), day, tuple(sorted(by_alias.get(int(v.version), [])))))
            out.append(MlflowModel(rm.name, rm.description or "", dict(rm.tags or {}), tuple(parsed)))
    except Exception as exc:  # MlflowException (refused, bad filter), or the HTTP client's own errors
        reason = str(getattr(exc, "message", None) or exc).strip()
        reason = redact(reason.splitlines()[0][:300] if reason else type(exc).__name__, url_secrets(tracking_uri))
        if isinstance(exc, MlflowException) and "API request to" in reason:
            reason = "no answer (is the server running, and is the URI right?)"
        hint = " Check --filter, e.g. \"name LIKE 'churn%'\"." if filter_string else ""
        raise ValuetrackError(f"cannot read the MLflow registry at {shown}: {reason}.{hint} "
                              "Check --tracking-uri (e.g. http://mlflow.internal:5000)") from None
    return out, warnings


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


# ------------------------------------------------------------------------------------------------
# proposing entries


def valuetrack_name(model: MlflowModel) -> str | None:
    """The manifest name: tag ``valuetrack.name``, else the MLflow name lower-cased with runs of
    other characters turned into '-'; None when that is not a valid name."""
    name = model.tags.get(NAME_TAG) or re.sub(r"[^a-z0-9]+", "-", model.name.lower()).strip("-")[:64].strip("-")
    return name if NAME_RE.fullmatch(name) else None


def _first_tag(tags: dict[str, str], keys: Sequence[str]) -> str | None:
    return next((tags[k] for k in keys if tags.get(k, "").strip()), None)


def _draft(name: str, model: MlflowModel, connections: Sequence[str]) -> dict[str, Any]:
    connection = model.tags.get(CONNECTION_TAG) or (connections[0] if len(connections) == 1 else TO_FILL)
    return {"name": name, "display_name": TO_FILL, "owner": TO_FILL, "team": TO_FILL, "status": "active",
            "connection": connection, "timezone": "UTC", "monthly_cost": 0.0, "interventions": [],
            "kpi": {"name": TO_FILL, "unit": TO_FILL, "value_per_unit": TO_FILL},
            "attribution": {"method": TO_FILL}}


def _fill(entry: dict[str, Any], key: str, value: Any, changes: list[str]) -> None:
    """Set ``key`` only when it is missing or still TO FILL: a value a person set is never overwritten."""
    if value in (None, "") or (key in entry and entry[key] != TO_FILL):
        return
    if entry.get(key) != value:
        entry[key] = value
        changes.append(key)


def _version_of(item: dict[str, Any]) -> int | None:
    m = _VERSION_LABEL.match(str(item.get("label", "")))
    return int(m.group(1)) if m else None


def _date_key(value: Any) -> tuple[int, str]:
    return (1, "") if value == TO_FILL else (0, str(value))


def merge(entry: dict[str, Any], model: MlflowModel) -> list[str]:
    """Fill ``entry`` (raw manifest data, changed in place) from ``model``; returns what changed."""
    changes: list[str] = []
    _fill(entry, "display_name", model.tags.get("valuetrack.display_name") or model.name, changes)
    _fill(entry, "owner", _first_tag(model.tags, OWNER_TAGS), changes)
    _fill(entry, "team", _first_tag(model.tags, TEAM_TAGS), changes)
    _fill(entry, "description", model.description.strip()[:1000] or None, changes)
    interventions = entry.setdefault("interventions", [])
    annotations = entry.get("annotations", [])
    present = {(_version_of(i)): i for i in [*interventions, *annotations] if _version_of(i) is not None}
    method = (entry.get("attribution") or {}).get("method")
    for v in model.versions:
        day = v.live_from or TO_FILL
        if v.version in present:
            item = present[v.version]
            key = "start" if "start" in item else "date"
            if item.get(key) == TO_FILL and v.live_from is not None:
                item[key] = v.live_from
                changes.append(f"version {v.version} live-from date")
            continue
        label = f"MLflow version {v.version}" + (f" ({', '.join(v.aliases)})" if v.aliases else "")
        if not interventions or _needs_interventions(method):
            interventions.append({"start": day, "label": label})
            changes.append(f"interventions: version {v.version}")
        else:
            annotations.append({"date": day, "label": label})
            changes.append(f"annotations: version {v.version}")
    interventions.sort(key=lambda i: _date_key(i.get("start")))
    if annotations:
        entry["annotations"] = sorted(annotations, key=lambda a: _date_key(a.get("date")))
    return changes


def propose(models: Sequence[MlflowModel], *, existing: dict[str, dict[str, Any]],
            registered: dict[str, dict[str, Any]], connections: Sequence[str]) -> tuple[list[dict[str, Any]], list[ImportedModel], list[str]]:
    """Entries to write (the existing file's, updated, plus new and changed ones) and a summary."""
    out = {name: copy.deepcopy(e) for name, e in existing.items()}
    summary, warnings = [], []
    for model in models:
        name = valuetrack_name(model)
        if name is None:
            warnings.append(f"MLflow model {model.name!r}: no valid valuetrack name can be made from it; "
                            f"set its tag {NAME_TAG} (3-64 characters of a-z, 0-9 and '-')")
            continue
        if name in out:
            base, action = out[name], "update"
        elif name in registered:
            base, action = copy.deepcopy(registered[name]), "update"
        else:
            base, action = _draft(name, model, connections), "new"
        before = copy.deepcopy(base)
        changes = merge(base, model)
        if action == "update" and base == before:
            action = "unchanged"
        if name in out or action != "unchanged":
            out[name] = base
        summary.append(ImportedModel(name, model.name, action, changes, to_fill_paths(base)))
    return [out[n] for n in sorted(out)], summary, warnings


def import_mlflow(ctx: Any, tracking_uri: str, *, filter_string: str | None = None,
                  out: Path | None = None) -> ImportResult:
    """Read MLflow and propose the manifest (merged with ``out`` if it exists); writes nothing."""
    from valuetrack.registry.store import entries_of

    existing: dict[str, dict[str, Any]] = {}
    if out is not None and out.exists():
        try:
            data = tomllib.loads(out.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValidationError(f"--out: {str(out)!r} is not a manifest valuetrack can merge into ({exc}); "
                                  "move it away or choose another --out") from None
        existing = {e["name"]: e for e in data.get("models", []) if isinstance(e, dict) and isinstance(e.get("name"), str)}
    registered = {}
    for entry in entries_of(ctx.registry.list()):
        body = entry.spec.to_dict()
        registered[entry.spec.name] = {"name": body.pop("name"), "revision": entry.revision, **body}
    models, warnings = read_mlflow(tracking_uri, filter_string)
    entries, summary, more = propose(models, existing=existing, registered=registered,
                                     connections=list(ctx.settings.connections))
    text = HEADER + DRAFT_NOTE + (tomli_w.dumps({"models": entries}) if entries else "")
    return ImportResult(summary, text, warnings + more)
