"""JSON Schemas of every ``--json`` output, shipped with the package.

``validate(name, document)`` checks a document against ``NAME.json`` (references between the
schema files resolve locally, without network access).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json") if not p.stem.startswith("_"))


def validate(name: str, document: Any) -> None:
    """Raise jsonschema.ValidationError when ``document`` does not match schema ``name``."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (f"valuetrack/{p.name}", Resource.from_contents(_live(p.stem, json.loads(p.read_text(encoding="utf-8")))))
        for p in HERE.glob("*.json")
    )
    Draft202012Validator(_live(name, load(name)), registry=registry).validate(document)


def _live(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The method enum is the live registry's (the file lists the built-in methods; a test checks it)."""
    if name != "_common":
        return schema
    from valuetrack.attribution import methods

    out = json.loads(json.dumps(schema))
    out["$defs"]["method"]["enum"] = list(methods.names())
    return out
