"""Raise and clear one cause: the quiet period, the send, the book entry, the recovery."""

from __future__ import annotations

import datetime as dt
import logging

from headwater.alerts import book
from headwater.alerts.channels import Channels, Delivery
from headwater.alerts.message import Alert
from headwater.state.db import StateDB

log = logging.getLogger("headwater.alerts")


def as_utc(now: dt.datetime | None) -> dt.datetime:
    """The clock as the state database keeps it: naive UTC (an aware time is converted)."""
    if now is None:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if now.tzinfo is not None:
        return now.astimezone(dt.UTC).replace(tzinfo=None)
    return now


def link(channels: Channels, path: str) -> str:
    return channels.config.base_url.rstrip("/") + path


def occur(
    db: StateDB,
    channels: Channels,
    entry: book.Entry | None,
    alert: Alert,
    kind: str,
) -> list[Delivery]:
    """One occurrence of a cause (`entry` is its open row, if any): sent unless it was
    sent within the quiet period, then written to the book."""
    now = alert.time
    if book.is_due(entry, now, channels.config.quiet_minutes):
        deliveries = channels.send(alert)
        delivered: bool | None = any(d.ok for d in deliveries)
    else:
        deliveries, delivered = [], None
        log.info(
            "alert %s %s: not sent again within the quiet period (%g min)",
            alert.event,
            alert.cause,
            channels.config.quiet_minutes,
        )
    book.record(
        db,
        entry,
        kind=kind,
        cause=alert.cause,
        now=now,
        delivered=delivered,
        run_id=alert.run_id,
        message=alert.message,
    )
    return deliveries


def recover(db: StateDB, channels: Channels, entry: book.Entry, alert: Alert) -> list[Delivery]:
    """Close an open cause; send `alert` (the recovery notice) if `recovery` is wanted."""
    if not book.close(db, entry, alert.time):
        return []  # another process closed it (and sent the notice)
    log.info("alert %s: cleared", entry.cause)
    return channels.send(alert) if channels.wants("recovery") else []


def recovery_alert(
    channels: Channels,
    project: str,
    entry: book.Entry,
    *,
    now: dt.datetime,
    message: str,
    link_path: str,
    run_id: int | None = None,
) -> Alert:
    """The notice that an open cause has cleared."""
    context = {
        "Open since": entry.opened_at.replace(microsecond=0).isoformat() + "Z",
        "Alerts sent": str(entry.sent),
        "Suppressed": str(entry.suppressed),
    }
    if entry.run_id is not None and entry.run_id != run_id:
        context["Last failed run"] = str(entry.run_id)
    return Alert(
        event="recovery",
        cause=entry.cause,
        project=project,
        message=message,
        link=link(channels, link_path),
        time=now,
        run_id=run_id,
        context=context,
    )
