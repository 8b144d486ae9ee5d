"""Deadlines and the daily summary, driven by an injected clock through `alerts.tick`.

Files reach the ledger through real runs (or `ledger.record_landed`, which a run
calls) at the real time; the injected clock is placed around it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.alerts import Delivery, daily, staleness, tick
from headwater.alerts.clock import at_local, latest
from headwater.project import Project
from headwater.state import ledger
from headwater.state.db import StateDB, alerts, utcnow
from headwater.templates.cafe.generator import generate
from tests.conftest import new_project, run_project
from tests.fixtures.receivers import (
    BASE_URL,
    Mailbox,
    Receiver,
    alerting_yaml,
    body_of,
    email_config,
)
from tests.fixtures.tiny import drop, model, run_tiny, tiny_project

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


def outcome(sent: list[Delivery]) -> list[tuple[str, str, str, bool]]:
    return [(d.channel, d.event, d.cause, d.ok) for d in sent]


def stale_project(root: Path, config: dict[str, Any], files: dict[str, str]) -> Project:
    tiny_project(
        root, {"people": model("select * from src", publish=True)}, files, alerting_yaml(config)
    )
    return Project.load(root)


def restarted(project: Project) -> Project:
    """The project as a new process sees it: loaded again, no memory of earlier checks."""
    staleness._MET.clear()
    daily._DONE.clear()
    return Project.load(project.root)


def test_missing_branch_file_is_stale_at_the_deadline(
    tmp_path: Path, smtp_server: Mailbox, webhook_receiver: Receiver
) -> None:
    # A deadline a few minutes ahead of the real clock, so files landed now are before it.
    deadline = (utcnow() + 3 * MINUTE).replace(second=0, microsecond=0)
    rule = {
        "source": "src",
        "deadline": f"{deadline:%H:%M}",
        "expect": ["chesterfield_*", "leeds_*"],
    }
    config = {
        "email": email_config(smtp_server),
        "webhooks": [{"url": webhook_receiver.url(), "format": "json"}],
        "staleness": [rule],
    }
    project = stale_project(tmp_path / "p", config, {"chesterfield_1.csv": "1,ann,10\n"})
    assert run_tiny(project.root).ok  # only one of the two branches delivered

    assert tick(project, deadline - 10 * MINUTE) == []
    assert tick(project, deadline - dt.timedelta(seconds=1)) == []
    sent = tick(project, deadline)
    hook = "webhook 1 (json, 127.0.0.1)"
    assert outcome(sent) == [
        ("email", "stale", "stale:src:leeds_*", True),
        (hook, "stale", "stale:src:leeds_*", True),
    ]
    mail = smtp_server.messages[0]
    assert mail["Subject"] == "[headwater] t: stale: stale:src:leeds_*"
    text = body_of(mail)
    due = f"{deadline:%Y-%m-%d %H:%M} UTC"
    assert f"source src: no file matching 'leeds_*' landed by the deadline {due}" in text
    assert "Newest file:  chesterfield_1.csv, landed" in text
    body = webhook_receiver.posts[0].body
    assert (body["event"], body["run_id"]) == ("stale", None)
    assert body["link"] == f"{BASE_URL}/freshness"
    assert body["context"]["Pattern"] == "leeds_*" and body["context"]["Deadline"] == due

    # Ticking on, or after a restart, sends nothing more.
    for later in (deadline, deadline + dt.timedelta(seconds=2), deadline + 30 * MINUTE):
        assert tick(project, later) == []
    assert tick(restarted(project), deadline + 31 * MINUTE) == []
    assert len(smtp_server.messages) == 1 and len(webhook_receiver.posts) == 1

    # The late branch delivers: one recovery per channel, then quiet.
    drop(project.root, {"leeds_1.csv": "2,bob,20\n"})
    assert run_tiny(project.root).ok
    sent = tick(project, deadline + 40 * MINUTE)
    assert outcome(sent) == [
        ("email", "recovery", "stale:src:leeds_*", True),
        (hook, "recovery", "stale:src:leeds_*", True),
    ]
    assert "source src delivered leeds_1.csv (matching 'leeds_*')" in body_of(
        smtp_server.messages[1]
    )
    assert tick(project, deadline + 41 * MINUTE) == []
    assert tick(restarted(project), deadline + 42 * MINUTE) == []

    # The next day both files are from the day before: both branches are late.
    sent = tick(project, deadline + DAY)
    assert sorted({d.cause for d in sent}) == ["stale:src:chesterfield_*", "stale:src:leeds_*"]
    assert len(sent) == 4 and all(d.ok for d in sent)


def test_late_file_counts_once_and_an_open_alert_repeats_daily(
    tmp_path: Path, smtp_server: Mailbox
) -> None:
    # A deadline that passed half an hour ago: a file landing now is late for it.
    deadline = (utcnow() - 30 * MINUTE).replace(second=0, microsecond=0)
    rule = {"source": "src", "deadline": f"{deadline:%H:%M}", "expect": ["leeds_*"]}
    project = stale_project(
        tmp_path / "p", {"email": email_config(smtp_server), "staleness": [rule]}, {}
    )
    assert tick(project, deadline - MINUTE) == []
    assert [d.event for d in tick(project, deadline)] == ["stale"]
    db = StateDB.open(project.state_url)
    try:
        entry = ledger.LedgerEntry("src", "ab" * 32, "leeds_7.csv", 9, "raw/k", 1, "landed")
        ledger.record_landed(db, [entry])
        assert [d.event for d in tick(project, utcnow() + dt.timedelta(seconds=1))] == ["recovery"]
        # The late file closed yesterday's alert; it does not count for today's deadline.
        assert [d.event for d in tick(project, deadline + DAY)] == ["stale"]
        assert tick(project, deadline + DAY + 60 * MINUTE) == []
        # Still missing at the next deadline: sent again (the quiet period has passed).
        assert [d.event for d in tick(project, deadline + 2 * DAY)] == ["stale"]
        with db.engine.connect() as conn:
            found = conn.execute(
                sa.select(alerts.c.status, alerts.c.sent, alerts.c.suppressed).order_by(
                    alerts.c.alert_id
                )
            ).all()
    finally:
        db.dispose()
    assert [tuple(r) for r in found] == [("closed", 1, 0), ("open", 2, 0)]
    assert len(smtp_server.messages) == 4


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Winter (GMT = UTC): 02:00 London is 02:00 UTC.
        (dt.datetime(2026, 1, 10, 2, 0), dt.datetime(2026, 1, 10, 2, 0)),
        (dt.datetime(2026, 1, 10, 1, 59), dt.datetime(2026, 1, 9, 2, 0)),
        # Summer (BST = UTC+1): 02:00 London is 01:00 UTC.
        (dt.datetime(2026, 7, 10, 1, 30), dt.datetime(2026, 7, 10, 1, 0)),
        # Clocks go forward at 01:00 UTC on 29 March 2026: 02:00 local then is 02:00 BST.
        (dt.datetime(2026, 3, 29, 1, 0), dt.datetime(2026, 3, 29, 1, 0)),
        (dt.datetime(2026, 3, 29, 0, 59), dt.datetime(2026, 3, 28, 2, 0)),
    ],
)
def test_deadlines_are_local_wall_clock_times(now: dt.datetime, expected: dt.datetime) -> None:
    assert latest("02:00", "Europe/London", now)[0] == expected


def test_spring_forward_gap_falls_an_hour_later() -> None:
    # 01:30 does not exist in London on 29 March 2026; it is taken as 02:30 BST (01:30 UTC).
    assert at_local(dt.date(2026, 3, 29), "01:30", "Europe/London") == dt.datetime(
        2026, 3, 29, 1, 30
    )


def test_daily_summary_once_a_day_with_the_dashboard_attached(
    tmp_path: Path, smtp_server: Mailbox
) -> None:
    root = new_project(tmp_path / "cafe")
    generate(root / "inbox", branches=2, days=1, seed=3, per_day=30)
    at = (utcnow() + 5 * MINUTE).replace(second=0, microsecond=0)
    summary = {"at": f"{at:%H:%M}", "dashboards": ["sales", "missing"], "to": ["boss@example.org"]}
    config = {"email": email_config(smtp_server), "daily_summary": summary}
    text = (root / "headwater.yaml").read_text()
    (root / "headwater.yaml").write_text(text + alerting_yaml(config, base=""))
    assert run_project(root).ok
    project = Project.load(root)

    assert tick(project, at - 10 * MINUTE) == []
    sent = tick(project, at)
    assert outcome(sent) == [("email", "summary", f"daily_summary:{at:%Y-%m-%d}", True)]
    assert tick(project, at + MINUTE) == []
    assert tick(restarted(project), at + 60 * MINUTE) == []
    [mail] = smtp_server.messages
    assert mail["Subject"] == f"[headwater] cafe: daily summary {at:%Y-%m-%d}"
    assert mail["X-Envelope-To"] == "boss@example.org"
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "sales.png"
    png = attachment.get_content()
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000
    body = body_of(mail)
    assert "Runs: 1 (1 success)" in body
    assert "branch_files: 2 files, last landed" in body
    assert "Open alerts: 0" in body
    assert "sales: attached as sales.png" in body
    assert "missing: not drawn: no dashboard 'missing'" in body
    # Due again the next day (the dashboard list emptied to keep this test short).
    (root / "headwater.yaml").write_text(
        text + alerting_yaml({**config, "daily_summary": {**summary, "dashboards": []}}, base="")
    )
    sent = tick(Project.load(root), at + DAY)
    assert outcome(sent) == [("email", "summary", f"daily_summary:{at + DAY:%Y-%m-%d}", True)]
    assert len(smtp_server.messages) == 2
    assert "Runs: 0" in body_of(smtp_server.messages[1])
