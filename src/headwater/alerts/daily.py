"""The daily summary email: the last day's runs, open alerts, sources, dashboard images.

Sent once per local day at `alerts.daily_summary.at`: the day is claimed in the
state database (`hw_meta`) before anything is drawn or sent, so two processes,
a fast ticker or a restart never send it twice. A dashboard that cannot be
drawn (no browser, a panel error) is named in the email instead of attached.
The dashboards are drawn by `headwater.serve.report` (headless Chromium),
imported only when a summary is due.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

from headwater.alerts import book, clock
from headwater.alerts.channels import Channels, Delivery
from headwater.alerts.message import Alert
from headwater.alerts.notify import link
from headwater.config_schedule import DailySummary
from headwater.errors import HeadwaterError
from headwater.project import Project
from headwater.state.db import StateDB, runs
from headwater.state.ledger import freshness

log = logging.getLogger("headwater.alerts")

DAY_KEY = "alerts_daily_summary"
_DONE: dict[str, dt.date] = {}  # state url -> the day already summarised (saves reads)


def check(
    db: StateDB, channels: Channels, project: Project, config: DailySummary, now: dt.datetime
) -> list[Delivery]:
    slot, day = clock.latest(config.at, config.timezone, now)
    if _DONE.get(db.url) == day or slot <= clock.watch_since(db, now):
        return []
    # Read before claiming: a tick every few seconds should not take a write lock each time.
    if clock.read(db, DAY_KEY) == day.isoformat() or not clock.claim(db, DAY_KEY, day.isoformat()):
        _DONE[db.url] = day
        return []
    _DONE[db.url] = day
    email = channels.config.email
    if email is None:
        log.warning("daily summary for %s not sent: alerts.email is not configured", day)
        return []
    since = clock.at_local(day - dt.timedelta(days=1), config.at, config.timezone)
    name = project.config.name
    subject = f"{name}: daily summary {day.isoformat()}"
    alert = Alert(
        event="summary",
        cause=f"daily_summary:{day.isoformat()}",
        project=name,
        message=subject,
        link=link(channels, "/runs"),
        time=now,
    )
    message = EmailMessage()
    message["Subject"] = f"[headwater] {subject}"
    message["From"] = email.sender
    message["To"] = ", ".join(config.to or email.to)
    message["X-Headwater-Event"] = "summary"
    with tempfile.TemporaryDirectory(prefix="headwater-summary-") as tmp:
        images, problems = _draw(project, config.dashboards, Path(tmp))
        drawn = [dashboard for dashboard, _ in images]
        text = summary_text(db, channels, project, since, now, config.timezone, drawn, problems)
        message.set_content(text)
        for dashboard, path in images:
            message.add_attachment(
                path.read_bytes(), maintype="image", subtype="png", filename=f"{dashboard}.png"
            )
        return [channels.send_email(message, alert)]


def _draw(
    project: Project, dashboards: list[str], folder: Path
) -> tuple[list[tuple[str, Path]], list[str]]:
    if not dashboards:
        return [], []
    from headwater.serve.report import render_report  # the web layer, only when needed

    images: list[tuple[str, Path]] = []
    problems: list[str] = []
    for dashboard in dashboards:
        try:
            images.append(
                (dashboard, render_report(project, dashboard, folder / f"{dashboard}.png"))
            )
        except (HeadwaterError, OSError) as exc:
            log.warning("daily summary: dashboard %s not drawn: %s", dashboard, exc)
            problems.append(f"{dashboard}: not drawn: {exc}")
    return images, problems


def summary_text(
    db: StateDB,
    channels: Channels,
    project: Project,
    since: dt.datetime,
    now: dt.datetime,
    timezone: str,
    drawn: list[str],
    problems: list[str],
) -> str:
    """The body: runs since the previous summary, open alerts, sources, dashboards."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.status, runs.c.trigger, runs.c.error)
            .where(runs.c.started_at > since, runs.c.started_at <= now)
            .order_by(runs.c.run_id)
        ).all()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    lines = [
        f"{project.config.name}: daily summary",
        f"Since {clock.local_text(since, timezone)}, until {clock.local_text(now, timezone)}.",
        "",
        f"Runs: {len(rows)}"
        + (" (" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")" if rows else ""),
    ]
    for row in rows:
        if row.status != "success":
            error = (row.error or "").splitlines()[0][:200] if row.error else ""
            lines.append(
                f"  run {row.run_id} {row.status}: {error}  {link(channels, f'/runs/{row.run_id}')}"
            )
    open_now = book.open_entries(db, ["failure", "check", "stale"])
    lines += ["", f"Open alerts: {len(open_now)}"]
    for entry in open_now.values():
        opened = clock.local_text(entry.opened_at, timezone)
        lines.append(
            f"  {entry.cause} (since {opened}; sent {entry.sent}, suppressed {entry.suppressed})"
        )
    fresh = freshness(db)
    lines += ["", "Sources:"]
    for source in project.config.sources:
        info = fresh.get(source)
        if not info or info["last_landed_at"] is None:
            lines.append(f"  {source}: no file landed yet")
            continue
        landed = info["last_landed_at"]
        assert isinstance(landed, dt.datetime)
        lines.append(
            f"  {source}: {info['files']} files, last landed {clock.local_text(landed, timezone)}"
        )
    if drawn or problems:
        lines += ["", "Dashboards:"]
        lines += [f"  {name}: attached as {name}.png" for name in drawn]
        lines += [f"  {problem}" for problem in problems]
    lines += [
        "",
        f"Runs page: {link(channels, '/runs')}",
        f"Freshness page: {link(channels, '/freshness')}",
        "",
    ]
    return "\n".join(lines)
