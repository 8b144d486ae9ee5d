"""Alerts after runs, against a real SMTP server (aiosmtpd) and a real HTTP receiver.

A failing source sends one failure email and one webhook carrying the run id; the
same failure inside the quiet period sends nothing; the run that fixes it sends one
recovery per channel. Also: failed `error` checks, killed runs, delivery failures
that never fail anything, the `on` filter, and projects without channels.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.alerts import Delivery, after_run, tick
from headwater.project import Project
from headwater.state.db import StateDB, alerts
from headwater.state.runs import start_run, start_step
from tests.fixtures.receivers import (
    BASE_URL,
    OPS,
    PASSWORD,
    PASSWORD_ENV,
    USER,
    Mailbox,
    Receiver,
    alerting_yaml,
    body_of,
    email_config,
    free_port,
)
from tests.fixtures.tiny import model, run_tiny, tiny_project, write_model

PEOPLE = model("select cast(id as integer) as id, nullif(name, '') as name from src", publish=True)
GOOD = {"a.csv": "1,ann,10\n2,bob,20\n"}
T0 = dt.datetime(2026, 3, 2, 9, 0)


def project_with(root: Path, alerts_config: dict[str, Any], **models: str) -> Project:
    tiny_project(root, models or {"people": PEOPLE}, GOOD, alerting_yaml(alerts_config))
    return Project.load(root)


def break_source(root: Path) -> None:
    """A file in the inbox that cannot be read (EIO), so extracting the source fails."""
    (root / "inbox" / "bad.csv").symlink_to("/proc/self/mem")


def rows(project: Project) -> list[dict[str, Any]]:
    db = StateDB.open(project.state_url)
    try:
        with db.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(sa.select(alerts).order_by(alerts.c.alert_id))
            ]
    finally:
        db.dispose()


def outcome(sent: list[Delivery]) -> list[tuple[str, str, str, bool]]:
    return [(d.channel, d.event, d.cause, d.ok) for d in sent]


@pytest.fixture(autouse=True)
def smtp_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


def test_failing_source_alerts_once_then_recovers(
    tmp_path: Path, smtp_tls_server: Mailbox, webhook_receiver: Receiver
) -> None:
    box, hook = smtp_tls_server, webhook_receiver
    project = project_with(
        tmp_path / "p", {"email": email_config(box), "webhooks": [{"url": hook.url()}]}
    )
    break_source(project.root)
    failed = run_tiny(project.root)
    assert not failed.ok
    sent = after_run(project, failed.to_json())
    webhook = "webhook 1 (json, 127.0.0.1)"
    assert outcome(sent) == [
        ("email", "failure", "source:src", True),
        (webhook, "failure", "source:src", True),
    ]
    assert len(box.messages) == 1 and len(hook.posts) == 1
    # The mail went over STARTTLS, after AUTH, to the configured recipient.
    assert box.tls_sessions == 1 and box.logins == [USER]
    mail = box.messages[0]
    assert mail["Subject"] == "[headwater] t: failure: source:src"
    assert mail["X-Envelope-To"] == OPS
    text = body_of(mail)
    run_link = f"{BASE_URL}/runs/{failed.run_id}"
    assert f"run {failed.run_id} failed at extract src" in text
    assert "bad.csv: cannot read: Input/output error" in text
    assert re.search(rf"^Run: +{failed.run_id}$", text, re.MULTILINE) and run_link in text
    body = hook.posts[0].body
    assert body["event"] == "failure" and body["cause"] == "source:src"
    assert body["run_id"] == failed.run_id and body["project"] == "t"
    assert body["link"] == run_link
    assert "Input/output error" in body["error"]
    assert body["context"]["Where"] == "extract src"

    # The same cause again, inside the quiet period: counted, not sent.
    again = run_tiny(project.root)
    assert not again.ok
    assert after_run(project, again.to_json()) == []
    assert len(box.messages) == 1 and len(hook.posts) == 1
    [row] = rows(project)
    assert (row["kind"], row["cause"], row["status"]) == ("failure", "source:src", "open")
    assert (row["sent"], row["suppressed"], row["run_id"]) == (1, 1, again.run_id)

    # Fixed: one recovery per channel, naming the run that fixed it.
    (project.root / "inbox" / "bad.csv").unlink()
    fixed = run_tiny(project.root)
    assert fixed.ok
    sent = after_run(project, fixed.to_json())
    assert outcome(sent) == [
        ("email", "recovery", "source:src", True),
        (webhook, "recovery", "source:src", True),
    ]
    assert len(box.messages) == 2 and len(hook.posts) == 2
    assert box.messages[1]["Subject"] == "[headwater] t: recovery: source:src"
    assert f"{BASE_URL}/runs/{fixed.run_id}" in body_of(box.messages[1])
    assert hook.posts[1].body["event"] == "recovery"
    assert hook.posts[1].body["run_id"] == fixed.run_id
    assert hook.posts[1].body["context"]["Suppressed"] == "1"
    [row] = rows(project)
    assert row["status"] == "closed"

    # Still fine: nothing more.
    assert after_run(project, run_tiny(project.root).to_json()) == []
    assert len(box.messages) == 2 and len(hook.posts) == 2


def test_quiet_period_then_resent(tmp_path: Path, smtp_server: Mailbox) -> None:
    project = project_with(
        tmp_path / "p", {"email": email_config(smtp_server), "quiet_minutes": 30}
    )
    break_source(project.root)
    summary = run_tiny(project.root).to_json()
    sends = [
        len(after_run(project, summary, now=T0 + dt.timedelta(minutes=m)))
        for m in (0, 10, 29, 30, 45, 61)
    ]
    assert sends == [1, 0, 0, 1, 0, 1]
    assert len(smtp_server.messages) == 3 and smtp_server.tls_sessions == 0
    [row] = rows(project)
    assert (row["sent"], row["suppressed"]) == (3, 3)
    assert row["last_sent_at"] == T0 + dt.timedelta(minutes=61)
    # An aware clock is converted to UTC.
    paris = dt.timezone(dt.timedelta(hours=1))
    assert after_run(project, summary, now=dt.datetime(2026, 3, 2, 11, 1, tzinfo=paris)) == []
    assert len(after_run(project, summary, now=dt.datetime(2026, 3, 2, 11, 31, tzinfo=paris))) == 1


def test_error_check_alerts_per_check_and_recovers_when_published(
    tmp_path: Path, smtp_server: Mailbox
) -> None:
    checked = model(
        "select cast(id as integer) as id, nullif(name, '') as name from src",
        publish=True,
        checks=[
            {"not_null": "name", "severity": "error"},
            {"unique": "id", "severity": "error"},
            {"range": {"column": "id", "min": 0, "max": 9}, "severity": "error"},
        ],
    )
    project = project_with(tmp_path / "p", {"email": email_config(smtp_server)}, people=checked)
    (project.root / "inbox" / "b.csv").write_text("3,,30\n3,cy,31\n")
    failed = run_tiny(project.root)
    assert not failed.ok
    sent = after_run(project, failed.to_json())
    # One alert per failed check; no separate failure alert for the same problem.
    assert outcome(sent) == [
        ("email", "check", "check:people/not_null(name)", True),
        ("email", "check", "check:people/unique(id)", True),
    ]
    text = body_of(smtp_server.messages[0])
    assert "error check not_null(name) on model people failed for 1 rows" in text
    assert "the model was not published" in text
    assert f"{BASE_URL}/runs/{failed.run_id}" in text
    # The model is fixed: its pending batch is published, both checks recover.
    write_model(
        project.root,
        "people",
        checked.replace("from src", "from src where name <> '' and name <> 'cy'"),
    )
    fixed = run_tiny(project.root)
    assert fixed.ok, fixed.error
    sent = after_run(project, fixed.to_json())
    assert outcome(sent) == [
        ("email", "recovery", "check:people/not_null(name)", True),
        ("email", "recovery", "check:people/unique(id)", True),
    ]
    assert len(smtp_server.messages) == 4


def test_checks_only_as_failure_when_check_events_are_off(
    tmp_path: Path, smtp_server: Mailbox
) -> None:
    checked = model(
        "select nullif(name, '') as name from src",
        publish=True,
        checks=[{"not_null": "name", "severity": "error"}],
    )
    project = project_with(
        tmp_path / "p",
        {"email": email_config(smtp_server), "on": ["failure"]},
        people=checked,
    )
    (project.root / "inbox" / "b.csv").write_text("3,,30\n")
    failed = run_tiny(project.root)
    assert outcome(after_run(project, failed.to_json())) == [
        ("email", "failure", "model:people", True)
    ]
    (project.root / "inbox" / "b.csv").unlink()
    write_model(project.root, "people", checked.replace("from src", "from src where name <> ''"))
    fixed = run_tiny(project.root)
    assert fixed.ok, fixed.error
    # `recovery` is not in `on`: the cause closes without a message.
    assert after_run(project, fixed.to_json()) == []
    assert [r["status"] for r in rows(project)] == ["closed"]
    assert len(smtp_server.messages) == 1


def test_killed_crashed_and_refused_runs(tmp_path: Path, webhook_receiver: Receiver) -> None:
    project = project_with(tmp_path / "p", {"webhooks": [{"url": webhook_receiver.url()}]})
    db = StateDB.open(project.state_url)
    try:  # a run stopped from outside while extracting: its step is still running
        run_id = start_run(db, "cron")
        start_step(db, run_id, "extract", "src")
    finally:
        db.dispose()
    killed = {"run_id": run_id, "status": "failed", "error": "stopped: over the 60 min timeout"}
    assert outcome(after_run(project, killed))[0][1:] == ("failure", "source:src", True)
    body = webhook_receiver.posts[0].body
    assert body["message"] == f"run {run_id} was stopped during extract src"
    assert body["error"] == killed["error"] and body["context"]["Trigger"] == "cron"
    crashed = {"status": "internal_error", "error": "RuntimeError('boom')"}
    assert outcome(after_run(project, crashed))[0][1:] == ("failure", "run", True)
    assert webhook_receiver.posts[1].body["link"] == f"{BASE_URL}/runs"
    refused = {"status": "config_error", "error": "headwater.yaml: bad"}
    assert outcome(after_run(project, refused))[0][1:] == ("failure", "config", True)
    # A run that could not start (another holds the lock) is not a failure.
    busy = {"status": "failed", "error": "another run is in progress", "transient": True}
    assert after_run(project, busy) == []
    assert len(webhook_receiver.posts) == 3


def test_delivery_failures_never_raise_and_are_retried(
    tmp_path: Path, webhook_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    dead = Mailbox("127.0.0.1", free_port())  # nothing listens there
    webhook_receiver.status = 500
    project = project_with(
        tmp_path / "p",
        {"email": email_config(dead), "webhooks": [{"url": webhook_receiver.url()}]},
    )
    break_source(project.root)
    summary = run_tiny(project.root).to_json()
    with caplog.at_level(logging.WARNING, logger="headwater.alerts"):
        sent = after_run(project, summary, now=T0)
    assert [(d.channel, d.ok) for d in sent] == [
        ("email", False),
        ("webhook 1 (json, 127.0.0.1)", False),
    ]
    assert sent[0].error is not None and "ConnectionRefusedError" in sent[0].error
    assert sent[1].error == "HTTP 500: receiver says no"
    warnings = [r.getMessage() for r in caplog.records if r.name == "headwater.alerts"]
    assert len(warnings) == 2 and "HTTP 500" in warnings[1]
    assert webhook_receiver.url() not in caplog.text
    # Nothing reached anyone, so the next occurrence is sent despite the quiet period.
    webhook_receiver.status = 200
    again = after_run(project, summary, now=T0 + dt.timedelta(minutes=1))
    assert [(d.channel, d.ok) for d in again] == [
        ("email", False),
        ("webhook 1 (json, 127.0.0.1)", True),
    ]
    [row] = rows(project)
    assert (row["sent"], row["suppressed"]) == (1, 0)


def test_tls_problems_are_failed_deliveries(
    tmp_path: Path, smtp_tls_server: Mailbox, smtp_ssl_server: Mailbox
) -> None:
    summary = {"run_id": None, "status": "failed", "error": "x"}
    # Implicit TLS with the right CA and login: delivered.
    ssl_email = email_config(smtp_ssl_server, security="ssl")
    ok = project_with(tmp_path / "ssl", {"email": ssl_email})
    assert outcome(after_run(ok, summary)) == [("email", "failure", "run", True)]
    assert smtp_ssl_server.tls_sessions == 1 and smtp_ssl_server.logins == [USER]
    # Without the CA file the certificate is not trusted.
    untrusted = email_config(smtp_tls_server)
    del untrusted["ca_file"]
    no_ca = project_with(tmp_path / "no_ca", {"email": untrusted})
    [delivery] = after_run(no_ca, summary)
    assert not delivery.ok and delivery.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.error
    # A wrong password is refused by the server.
    wrong = project_with(
        tmp_path / "wrong", {"email": email_config(smtp_tls_server, password="not-it")}
    )
    [delivery] = after_run(wrong, summary)
    assert not delivery.ok and delivery.error is not None and "535" in delivery.error
    assert "not-it" not in delivery.error
    assert smtp_tls_server.messages == []


def test_no_channel_does_nothing(tmp_path: Path) -> None:
    project = project_with(tmp_path / "p", {"staleness": [{"source": "src", "deadline": "02:00"}]})
    state = project.home / "state.db"
    assert not state.exists()
    assert after_run(project, {"run_id": 1, "status": "failed", "error": "x"}) == []
    assert tick(project, T0) == []
    assert not state.exists()  # not even opened
