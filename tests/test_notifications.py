"""Notifications (docs/notifications.md): events from flag transitions with hysteresis, at-least-once
delivery with an idempotency key, against a real local HTTP server (webhook) and SMTP server
(aiosmtpd), with secrets in target URLs never shown or stored."""

from __future__ import annotations

import datetime as dt
import email
import json
import sqlite3
import textwrap
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

from tests.conftest import free_port
from valuetrack.notifications import transitions
from valuetrack.store.db import dispose_all

AS_OF = "2026-06-30"
TOKEN = "hook-token-7f3a9c2e51"  # a secret in the webhook URL, from the environment
KEEP = {"churn-save-offers", "dynamic-pricing"}  # churn-save-offers does not cover its cost in the demo


# ------------------------------------------------------------------------------------------------
# transitions: the pure rules


D = dt.date(2026, 6, 1)


def _run(days: list[list[str]], clear_after: int = 2) -> list[list[str]]:
    states: dict = {}
    out = []
    for i, types in enumerate(days):
        new, events = transitions(states, {"m": types}, D + dt.timedelta(days=i), clear_after)
        states = {**states, **new}
        out.append([k for k, _ in events])
    return out


def test_a_flickering_flag_sends_one_message_until_it_stays_off() -> None:
    days = [["unproven"], [], ["unproven"], [], ["unproven"], [], []]
    assert _run(days) == [["raised"], [], [], [], [], [], ["cleared"]]


def test_a_worse_flag_escalates_once_and_a_milder_one_is_silent() -> None:
    days = [["unproven"], ["not_covering_cost"], ["not_covering_cost"], ["destroying_value"], ["unproven"]]
    assert _run(days) == [["raised"], ["escalated"], [], ["escalated"], []]


def test_rerunning_the_same_as_of_does_not_count_towards_clearing() -> None:
    states: dict = {}
    new, events = transitions(states, {"m": ["unproven"]}, D, 2)
    states.update(new)
    for _ in range(3):  # three refreshes of the same day without the flag
        new, events = transitions(states, {"m": []}, D + dt.timedelta(days=1), 2)
        states.update(new)
        assert events == []
    assert transitions(states, {"m": []}, D + dt.timedelta(days=2), 2)[1] == [("cleared", "m")]


def test_an_unflagged_model_never_sends() -> None:
    assert _run([[], [], []]) == [[], [], []]


# ------------------------------------------------------------------------------------------------
# end to end: refresh --notify against local servers


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201 (aiosmtpd handler)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def _text(msg: email.message.Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


@pytest.fixture
def company(demo_builder, monkeypatch: pytest.MonkeyPatch, cli):
    """The demo company with two active models, one of them flagged; returns a function writing
    valuetrack.toml with the given webhook port and SMTP port."""
    folder = demo_builder(0.1, AS_OF)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("VALUETRACK_USER", "scheduler@example.com")
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    monkeypatch.setenv("VALUETRACK_CONFIG", str(folder / "valuetrack.toml"))

    def configure(hook_port: int, smtp_port: int, clear_after: int = 1) -> Path:
        (folder / "valuetrack.toml").write_text(textwrap.dedent(f"""
            [store]
            url = "sqlite:///valuetrack.db"
            [connections.demo]
            url = "duckdb:///sample_data/demo.duckdb"
            [notifications]
            base_url = "https://vt.example.com/"
            targets = ["http://127.0.0.1:{hook_port}/hook/${{HOOK_TOKEN}}",
                       "mailto://127.0.0.1:{smtp_port}?from=valuetrack@example.com&to=team@example.com&mode=insecure"]
            clear_after = {clear_after}
        """))
        dispose_all()
        return folder

    configure(1, 1)
    for m in cli("models", "list", "--json", schema="models_list").json["models"]:
        if m["name"] not in KEEP:
            assert cli("models", "retire", m["name"]).code == 0
    yield configure
    dispose_all()


def _hooks(server: HTTPServer) -> list[tuple[dict, dict]]:
    return [(json.loads(req.get_data(as_text=True)), dict(req.headers)) for req, _ in server.log]


def _no_secret_anywhere(folder: Path, *outputs: str) -> None:
    for out in outputs:
        assert TOKEN not in out
    with sqlite3.connect(folder / "valuetrack.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            dump = json.dumps(db.execute(f'SELECT * FROM "{table}"').fetchall(), default=str)
            assert TOKEN not in dump, f"the webhook token is stored in {table}"


def test_new_flag_once_then_nothing_then_cleared(company, cli, httpserver: HTTPServer, smtp) -> None:
    httpserver.expect_request("/hook/" + TOKEN, method="POST").respond_with_data("ok")
    folder = company(httpserver.port, smtp.port)

    first = cli("refresh", "--notify", "--as-of", AS_OF, "--json", schema="refresh")
    assert first.code == 0, first.err
    hooks = _hooks(httpserver)
    assert len(hooks) == 1 and len(smtp.messages) == 1
    body, headers = hooks[0]
    assert set(body) == {"text"}  # Slack- and Teams-compatible
    text = body["text"]
    assert "churn-save-offers" in text and "not covering" in text.lower()
    assert "Net value to date -$" in text and "95% interval" in text
    assert "https://vt.example.com/model?model=churn-save-offers" in text
    assert headers["Idempotency-Key"] == f"raised:churn-save-offers:{AS_OF}"
    mail = smtp.messages[0]
    assert "churn-save-offers" in mail["Subject"] and mail["To"] == "team@example.com"
    assert "https://vt.example.com/model?model=churn-save-offers" in _text(mail)
    assert [e["kind"] for e in first.json["notifications"]["events"]] == ["raised"]
    assert {d["target"] for d in first.json["notifications"]["deliveries"]} == {"http://127.0.0.1", "mailto://127.0.0.1"}

    second = cli("refresh", "--notify", "--as-of", AS_OF, "--json", schema="refresh")
    assert second.code == 0
    assert len(_hooks(httpserver)) == 1 and len(smtp.messages) == 1
    assert second.json["notifications"] == {"as_of": AS_OF, "events": [], "deliveries": []}

    # the team lowers the hurdle and gives it time: the model is no longer flagged
    exported = folder / "churn.toml"
    assert cli("models", "export", "--name", "churn-save-offers", "--out", exported).code == 0
    exported.write_text(exported.read_text().replace("min_roi = 0.0", "min_roi = -1.0")
                        .replace("unproven_after_days = 90", "unproven_after_days = 3650"))
    assert cli("models", "register", "--file", exported).code == 0
    third = cli("refresh", "--notify", "--as-of", "2026-07-01", "--json", schema="refresh")
    assert third.code == 0, third.err
    hooks = _hooks(httpserver)
    assert len(hooks) == 2 and len(smtp.messages) == 2
    assert "no longer flagged" in hooks[1][0]["text"] and "churn-save-offers" in smtp.messages[1]["Subject"]
    assert [e["kind"] for e in third.json["notifications"]["events"]] == ["cleared"]
    _no_secret_anywhere(folder, first.out, first.err, second.out, third.out)


def test_a_target_down_does_not_fail_the_refresh_and_is_retried_next_run(company, cli, smtp) -> None:
    port = free_port()  # nothing listens here yet
    folder = company(port, smtp.port)
    down = cli("refresh", "--notify", "--as-of", AS_OF, "--json", schema="refresh")
    assert down.code == 0
    assert "notifications failed and will be retried" in down.err
    statuses = {d["target"]: d["status"] for d in down.json["notifications"]["deliveries"]}
    assert statuses == {"http://127.0.0.1": "failed", "mailto://127.0.0.1": "sent"}
    assert len(smtp.messages) == 1

    server = HTTPServer(host="127.0.0.1", port=port)
    server.expect_request("/hook/" + TOKEN, method="POST").respond_with_data("ok")
    server.start()
    try:
        up = cli("notify", "--as-of", AS_OF, "--json", schema="notify")
        assert up.code == 0, up.err
        assert up.json["events"] == []  # no new event: the old one is retried
        assert [(d["target"], d["status"]) for d in up.json["deliveries"]] == [("http://127.0.0.1", "sent")]
        assert len(server.log) == 1 and len(smtp.messages) == 1  # the e-mail is not sent twice
        assert "churn-save-offers" in json.loads(server.log[0][0].get_data(as_text=True))["text"]
        again = cli("notify", "--as-of", AS_OF, "--json", schema="notify")
        assert again.json["deliveries"] == [] and len(server.log) == 1
    finally:
        server.stop()
    _no_secret_anywhere(folder, down.out, down.err)


def test_notify_test_reports_each_target_and_redacts_the_token(company, cli, httpserver: HTTPServer, smtp) -> None:
    httpserver.expect_request("/hook/" + TOKEN, method="POST").respond_with_data("nope", status=500)
    company(httpserver.port, smtp.port)
    result = cli("notify", "--test", "--json", schema="notify")
    assert result.code == 1  # one target refused
    by_target = {d["target"]: d for d in result.json["deliveries"]}
    assert by_target["mailto://127.0.0.1"]["status"] == "sent"
    assert by_target["http://127.0.0.1"]["status"] == "failed" and by_target["http://127.0.0.1"]["error"]
    assert len(smtp.messages) == 1 and "test" in smtp.messages[0]["Subject"]
    assert TOKEN not in result.out + result.err


def test_notify_without_a_notifications_section_says_how_to_add_one(workspace: Path, cli) -> None:
    result = cli("refresh", "--notify", "--json")
    assert result.code == 1 and "[notifications]" in result.err and "targets" in result.err


@pytest.mark.parametrize("section, message", [
    ('targets = []', "must list at least one URL"),
    ('targets = ["json://h/x"]\nevents = ["raised", "sometimes"]', "'sometimes' is not one of"),
    ('targets = ["json://h/x"]\nbase_url = "vt.example.com"', "base_url"),
    ('targets = ["json://h/x"]\nclear_after = 0', "clear_after must be between 1 and 365"),
    ('targets = "json://h/x"', "targets must be a list"),
])
def test_bad_notifications_section_is_refused_with_the_key(workspace: Path, cli, section: str, message: str) -> None:
    path = workspace / "valuetrack.toml"
    path.write_text(path.read_text() + "\n[notifications]\n" + section + "\n")
    result = cli("models", "list")
    assert result.code == 1 and message in result.err and "Traceback" not in result.err
