"""The documentation that users rely on stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from valuetrack.registry.spec import field_docs

ROOT = Path(__file__).resolve().parents[1]


def test_user_guide_lists_every_manifest_field() -> None:
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    missing = [name for name in field_docs() if f"| `{name}` |" not in guide]
    assert not missing, f"docs/user-guide.md's manifest reference lacks {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()
