"""What the scheduler calls every few seconds: staleness deadlines and the daily summary."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.exc import SQLAlchemyError

from headwater.alerts import daily, staleness
from headwater.alerts.channels import Channels, Delivery
from headwater.alerts.notify import as_utc
from headwater.errors import HeadwaterError
from headwater.project import Project
from headwater.state.db import StateDB

log = logging.getLogger("headwater.alerts")


def tick(project: Project, now: dt.datetime, db: StateDB | None = None) -> list[Delivery]:
    """Act on deadlines and the daily summary as of `now` (naive UTC, or aware).

    Idempotent: what was sent is in the state database, so any number of calls at
    the same or later times, from this process or after a restart, sends each
    alert once. Never raises for a delivery or state problem (logged instead).
    A caller that ticks often passes its open state database `db`; without one, a
    connection is opened and closed for the call.
    """
    channels = Channels.of(project)
    config = project.config.alerts
    if channels is None:
        return []
    rules = config.staleness if channels.wants("stale") else []
    if not rules and config.daily_summary is None:
        return []
    now = as_utc(now)
    owned = db is None
    try:
        db = db or StateDB.open(project.state_url)
    except HeadwaterError as exc:
        log.warning("alerts: state database unavailable: %s", exc)
        return []
    out: list[Delivery] = []
    try:
        if rules:
            out += staleness.check(db, channels, project.config.name, list(rules), now)
        if config.daily_summary is not None:
            out += daily.check(db, channels, project, config.daily_summary, now)
    except (HeadwaterError, SQLAlchemyError) as exc:
        log.warning("alerts: deadlines not checked: %s", exc)
    finally:
        if owned:
            db.dispose()
    return out
