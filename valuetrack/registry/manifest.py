"""The model manifest: TOML in, TOML out.

``load_manifest`` validates the whole file and raises one ValidationError listing every problem
(each naming the model and the field). ``dump_manifest`` writes the canonical form: fields in
declaration order, defaults written out, so export → register → export is byte-identical.
An entry may carry the ``revision`` it was exported at; registering it then refuses to overwrite
a newer revision (see RegistryStore.apply).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import tomli_w

from valuetrack.errors import ValidationError
from valuetrack.limits import check_model_count, load_toml, read_text
from valuetrack.registry.spec import ModelSpec

HEADER = "# valuetrack model manifest: `valuetrack models register --file THIS_FILE`\n"
TO_FILL = "TO FILL"
"""Placeholder the MLflow import writes where only a person can answer (the KPI, the attribution);
registering refuses an entry that still holds it."""


def to_fill_paths(data: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every value still equal to TO_FILL in raw manifest data."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in to_fill_paths(v, f"{prefix}{k}.")]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in to_fill_paths(v, f"{prefix[:-1]}[{i}].")]
    return [prefix[:-1]] if data == TO_FILL else []


@dataclass(frozen=True)
class ManifestEntry:
    """One model of a manifest and, if it was exported from a registry, the revision it had."""

    spec: ModelSpec
    revision: int | None = None


def parse_manifest(text: str, *, source: str = "manifest") -> list[ManifestEntry]:
    """Parse and validate manifest text; raise ValidationError listing every problem."""
    data = load_toml(text, source)
    problems: list[str] = []
    unknown = [k for k in data if k != "models"]
    if unknown:
        problems.append(f"{source}: unknown top-level key {unknown[0]!r}; models go in [[models]] tables")
    models = data.get("models", [])
    if not isinstance(models, list) or not models:
        problems.append(f"{source}: no [[models]] entries found")
        raise ValidationError(problems)
    check_model_count(len(models), source)
    entries: list[ManifestEntry] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(models):
        label = f"models[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{label}: must be a [[models]] table")
            continue
        raw = dict(raw)
        revision = raw.pop("revision", None)
        name = raw.get("name")
        where = f"model {name!r}" if isinstance(name, str) else label
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int) or revision < 1):
            problems.append(f"{where}.revision: must be a whole number >= 1 (got {revision!r})")
            revision = None
        if isinstance(name, str):
            if name in seen:
                problems.append(f"{where}.name: duplicate; models[{seen[name]}] has the same name")
            seen.setdefault(name, i)
        unfilled = to_fill_paths(raw)
        if unfilled:
            problems.extend(f"{where}.{path}: still {TO_FILL!r} (left by the MLflow import); fill it in" for path in unfilled)
            continue
        try:
            entries.append(ManifestEntry(ModelSpec.from_dict(raw, label=label), revision))
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems)
    return entries


def load_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read and validate a manifest file."""
    p = Path(path)
    try:
        text = read_text(p, "--file")
    except FileNotFoundError:
        raise ValidationError(f"--file: {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"--file: cannot read {str(p)!r}: {exc}") from None
    return parse_manifest(text, source=p.name)


def dump_manifest(entries: Iterable[ManifestEntry]) -> str:
    """Canonical TOML for the entries, sorted by name."""
    models = []
    for entry in sorted(entries, key=lambda e: e.spec.name):
        body = entry.spec.to_dict()
        if entry.revision is not None:
            body = {"name": body.pop("name"), "revision": entry.revision, **body}
        models.append(body)
    return HEADER + tomli_w.dumps({"models": models})
