"""Every --json output has a schema in the package, and every schema is itself valid."""

from __future__ import annotations

import argparse

from jsonschema import Draft202012Validator

from valuetrack import schemas
from valuetrack.cli import build_parser

# commands whose output is not JSON: export writes TOML, serve runs the dashboard
NOT_JSON = {"models export", "serve"}


def _leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _leaf_commands(sub, f"{prefix}{name} ")
    return out or [prefix.strip()]


def _schema_name(command: str) -> str:
    return command.replace(" ", "_")


def test_every_json_command_has_a_schema() -> None:
    commands = [c for c in _leaf_commands(build_parser()) if c not in NOT_JSON]
    assert len(commands) >= 12
    missing = [c for c in commands if _schema_name(c) not in schemas.names()]
    assert not missing, f"no schema in valuetrack/schemas/ for: {missing}"


def test_schemas_are_valid_draft_2020_12() -> None:
    for name in schemas.names():
        Draft202012Validator.check_schema(schemas.load(name))
