"""Webhook bodies (generic JSON, Slack, Teams) as a real HTTP receiver gets them, the email
as a real SMTP server gets it, and no secret in any of them or in the logs."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from headwater.alerts import after_run
from headwater.project import Project
from tests.fixtures.receivers import (
    BASE_URL,
    PASSWORD,
    PASSWORD_ENV,
    Mailbox,
    Receiver,
    alerting_yaml,
    email_config,
    free_port,
)
from tests.fixtures.tiny import model, run_tiny, tiny_project

SLACK_PATH = "/services/T0ACME/B0HOOK/slackTokenXyz123"
TEAMS_PATH = "/webhookb2/teams-token-4c1e?sig=teamsSig987"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_bodies_have_the_documented_shape_and_no_secret(
    tmp_path: Path,
    smtp_tls_server: Mailbox,
    webhook_receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    hook = webhook_receiver
    dead = f"http://127.0.0.1:{free_port()}/dead/deadToken555"
    secrets = [PASSWORD, SLACK_PATH, TEAMS_PATH, "slackTokenXyz123", "teamsSig987", dead]
    webhooks = [
        {"url": hook.url("/generic")},
        {"url": hook.url(SLACK_PATH), "format": "slack"},
        {"url": hook.url(TEAMS_PATH), "format": "teams"},
        {"url": dead, "format": "slack", "timeout_seconds": 2},
    ]
    root = tiny_project(
        tmp_path / "p",
        {"people": model("select * from src", publish=True)},
        {"a.csv": "1,ann,10\n"},
        alerting_yaml({"email": email_config(smtp_tls_server), "webhooks": webhooks}),
    )
    (root / "inbox" / "bad.csv").symlink_to("/proc/self/mem")
    project = Project.load(root)
    caplog.set_level(logging.DEBUG)  # every logger, httpx's request lines included
    failed = run_tiny(root)
    sent = after_run(project, failed.to_json())
    assert [d.ok for d in sent] == [True, True, True, True, False]
    assert sent[4].channel == "webhook 4 (slack, 127.0.0.1)"
    assert sent[4].error is not None and "ConnectError" in sent[4].error
    run_id, link = failed.run_id, f"{BASE_URL}/runs/{failed.run_id}"
    by_path = {p.path: p for p in hook.posts}
    assert set(by_path) == {"/generic", SLACK_PATH, TEAMS_PATH}
    assert all(p.content_type == "application/json" for p in hook.posts)

    generic = by_path["/generic"].body
    assert list(generic) == [
        "event", "project", "run_id", "cause", "message", "error", "context", "link", "time"
    ]  # fmt: skip
    assert generic["event"] == "failure" and generic["run_id"] == run_id
    assert generic["link"] == link and TIME.match(generic["time"])
    assert generic["message"] == f"run {run_id} failed at extract src"
    assert generic["context"]["Where"] == "extract src"
    assert generic["context"]["Rows"].startswith("2 files found, 0 new")

    slack = by_path[SLACK_PATH].body
    assert set(slack) == {"text", "blocks"}
    assert slack["text"] == f"t: failure: source:src: run {run_id} failed at extract src"
    blocks = slack["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "actions"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "t: run failed"}
    assert blocks[2]["text"]["text"].startswith("```") and "Input/output error" in str(blocks[2])
    fields = [f["text"] for f in blocks[3]["fields"]]
    assert "*Cause*\nsource:src" in fields and f"*Run*\n{run_id}" in fields
    assert blocks[4]["elements"][0]["url"] == link
    assert blocks[4]["elements"][0]["text"]["text"] == f"Open run {run_id}"

    teams = by_path[TEAMS_PATH].body
    assert teams["type"] == "message" and len(teams["attachments"]) == 1
    attachment = teams["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "t: failure: source:src"
    assert card["body"][0]["color"] == "Attention"
    facts = {
        f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]
    }
    assert facts["Run"] == str(run_id) and facts["Cause"] == "source:src"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": f"Open run {run_id}", "url": link}
    ]

    # Recovery: same shapes, the Teams title green.
    (root / "inbox" / "bad.csv").unlink()
    fixed = run_tiny(root)
    sent = after_run(project, fixed.to_json())
    assert [(d.event, d.ok) for d in sent] == [("recovery", True)] * 4 + [("recovery", False)]
    teams = [p.body for p in hook.posts if p.path == TEAMS_PATH][-1]
    assert teams["attachments"][0]["content"]["body"][0]["color"] == "Good"

    # httpx logged the requests, with the webhook URLs hidden.
    assert "HTTP Request: POST" in caplog.text and "***" in caplog.text
    mails = [m.as_string() for m in smtp_tls_server.messages]
    posts = [json.dumps(p.body) for p in hook.posts]
    errors = [d.error or "" for d in sent]
    for secret in secrets:
        assert secret not in caplog.text
        for text in (*mails, *posts, *errors):
            assert secret not in text
    assert len(smtp_tls_server.messages) == 2


def test_alert_text_never_carries_a_project_secret(tmp_path: Path) -> None:
    """A run error may quote a driver's message with a URL or password: redacted before
    any channel sees it."""
    import datetime as dt

    from headwater.alerts.channels import Channels
    from headwater.alerts.message import Alert
    from headwater.config import ProjectConfig

    config = ProjectConfig.model_validate(
        {
            "name": "shop",
            "warehouse": {"type": "postgres", "url": "postgresql://loader:pw-XYZ@db/x"},
            "alerts": {"webhooks": [{"url": "http://127.0.0.1:9/hook"}]},
        }
    )
    from headwater.observe.logs import secrets_of

    channels = Channels(config.alerts, tmp_path, secrets_of(config))
    alert = Alert(
        event="failure",
        cause="warehouse",
        project="shop",
        message="load failed at postgresql://loader:pw-XYZ@db/x",
        link="http://127.0.0.1:8080/runs/3",
        time=dt.datetime(2026, 11, 22, 12, 0),
        run_id=3,
        error="connection to mysql://root:other-pw@h/db failed; token=abc; pw-XYZ",
        context={"target": "postgresql://loader:pw-XYZ@db/x"},
    )
    clean = channels.redacted(alert)
    text = f"{clean.message} {clean.error} {clean.context}"
    for secret in ("pw-XYZ", "other-pw", "token=abc"):
        assert secret not in text
    assert clean.run_id == 3 and "***" in clean.error
