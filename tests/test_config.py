"""Settings: defaults, relative paths, ${VAR} secrets from the environment or secrets.toml, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from valuetrack.config import load_settings, redact, redact_url
from valuetrack.errors import ConfigError


def test_no_file_gives_embedded_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    s = load_settings(cwd=tmp_path)
    assert s.path is None and s.currency == "USD"
    assert s.store_url == f"sqlite:///{tmp_path / 'valuetrack.db'}"
    assert s.connection("demo").url == f"duckdb:///{tmp_path / 'sample_data' / 'demo.duckdb'}"


def test_relative_urls_resolve_against_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    f = tmp_path / "cfg" / "valuetrack.toml"
    f.write_text('[store]\nurl = "sqlite:///app.db"\ncurrency = "EUR"\n[connections.wh]\nurl = "duckdb:///wh.duckdb"\n')
    s = load_settings(f)
    assert s.store_url == f"sqlite:///{tmp_path / 'cfg' / 'app.db'}" and s.currency == "EUR"
    assert s.connection("wh").url.endswith("/cfg/wh.duckdb")
    with pytest.raises(ConfigError, match="unknown connection 'nope'.*wh"):
        s.connection("nope")


def test_secrets_from_env_then_secrets_toml_and_redaction(tmp_path: Path) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('SF_PASSWORD = "from-secrets-file-123"\n')
    f = tmp_path / "valuetrack.toml"
    f.write_text('[connections.sf]\nurl = "snowflake://ana:${SF_PASSWORD}@acct/db/schema"\n'
                 'private_key_passphrase = "${KEY_PASS}"\n')
    s = load_settings(f)
    url, opts = s.connection("sf").resolved(s.secrets({"KEY_PASS": "env-pass-456"}))
    assert url == "snowflake://ana:from-secrets-file-123@acct/db/schema"
    assert opts["private_key_passphrase"] == "env-pass-456"
    env_wins = s.secrets({"SF_PASSWORD": "env-wins-789", "KEY_PASS": "x"})
    assert s.connection("sf").resolved(env_wins)[0].endswith("env-wins-789@acct/db/schema")
    secrets = s.secret_values({"KEY_PASS": "env-pass-456"})
    assert "from-secrets-file-123" in secrets and "env-pass-456" in secrets
    assert redact(f"failed to connect to {url}", secrets) == "failed to connect to snowflake://ana:***@acct/db/schema"
    assert "${SF_PASSWORD}" in s.connection("sf").display_url()


def test_missing_secret_names_the_variable(tmp_path: Path) -> None:
    f = tmp_path / "valuetrack.toml"
    f.write_text('[connections.bq]\nurl = "bigquery://proj/ds"\ncredentials = "${GOOGLE_APPLICATION_CREDENTIALS}"\n')
    s = load_settings(f)
    with pytest.raises(ConfigError, match=r"\[connections.bq\].credentials refers to \$\{GOOGLE_APPLICATION_CREDENTIALS\}"):
        s.connection("bq").resolved({})


def test_redact_url_masks_password_and_secret_query_values() -> None:
    shown = redact_url("postgresql://u:hunter2@db:5432/app?sslmode=require&password=abc")
    assert "hunter2" not in shown and "abc" not in shown and "sslmode=require" in shown


@pytest.mark.parametrize("text,message", [
    ("[store\nurl=1", "not valid TOML"),
    ("[stor]\nurl='x'", "unknown section 'stor'"),
    ("[connections.x]\nuser='a'", r"\[connections.x\] needs a url"),
    ("[store]\ncurrency='dollars'", "must be a 3-letter code"),
])
def test_bad_settings_are_explained(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "valuetrack.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(f)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
