"""Staleness: a source that has not delivered a file matching each pattern by its deadline.

For a rule and the most recent deadline D at or before now (P the one a day
before), each `expect` pattern needs a file of the source in the ledger that
landed after P (or, if a late file closed this pattern's previous alert, after
that alert closed: a late file counts for one deadline, not two). If none did,
the cause `stale:<source>:<pattern>` opens once for D. While it is open, any
matching file landing closes it (recovery); the next deadline still missing
sends it again (quiet period permitting). Every decision is taken from the
state database, so calling this every few seconds, or after a restart, sends
nothing twice.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass

import sqlalchemy as sa

from headwater.alerts import book, clock
from headwater.alerts.channels import Channels, Delivery
from headwater.alerts.message import Alert
from headwater.alerts.notify import link, occur, recover, recovery_alert
from headwater.config_schedule import StalenessRule
from headwater.state.db import StateDB, alerts, files

# (state url, cause) -> the deadline already found met: no need to look again.
_MET: dict[tuple[str, str], dt.datetime] = {}


@dataclass(frozen=True)
class Landed:
    name: str
    landed_at: dt.datetime


def cause_of(rule: StalenessRule, pattern: str) -> str:
    return f"stale:{rule.source}:{pattern}"


def matches(pattern: str, name: str) -> bool:
    """A pattern matches a file's name relative to its source, or the last part of it."""
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(
        name.rsplit("/", 1)[-1], pattern
    )


def first_match(db: StateDB, source: str, pattern: str, since: dt.datetime) -> Landed | None:
    """The first file of `source` matching `pattern` that landed after `since`."""
    query = (
        sa.select(files.c.name, files.c.landed_at)
        .where(files.c.source == source, files.c.landed_at > since)
        .order_by(files.c.landed_at, files.c.file_id)
    )
    with db.engine.connect() as conn:
        for name, landed_at in conn.execute(query):
            if matches(pattern, name):
                return Landed(str(name), landed_at)
    return None


def _closed_before(db: StateDB, cause: str, before_id: int | None) -> dt.datetime | None:
    """When this cause's latest closed alert (before alert `before_id`) closed."""
    query = sa.select(sa.func.max(alerts.c.closed_at)).where(
        alerts.c.cause == cause, alerts.c.status == book.CLOSED
    )
    if before_id is not None:
        query = query.where(alerts.c.alert_id < before_id)
    with db.engine.connect() as conn:
        value: dt.datetime | None = conn.execute(query).scalar()
        return value


def _window(rule: StalenessRule, deadline_day: dt.date) -> dt.datetime:
    return clock.at_local(deadline_day - dt.timedelta(days=1), rule.deadline, rule.timezone)


def check(
    db: StateDB, channels: Channels, project: str, rules: list[StalenessRule], now: dt.datetime
) -> list[Delivery]:
    watched = clock.watch_since(db, now)
    open_now = book.open_entries(db, ["stale"])
    out: list[Delivery] = []
    configured: set[str] = set()
    for rule in rules:
        deadline, day = clock.latest(rule.deadline, rule.timezone, now)
        for pattern in rule.expect:
            cause = cause_of(rule, pattern)
            configured.add(cause)
            entry = open_now.get(cause)
            if entry is not None:
                out += _open_case(
                    db, channels, project, rule, pattern, entry, deadline, watched, now
                )
            elif deadline > watched:
                out += _new_case(db, channels, project, rule, pattern, deadline, day, now)
    for cause, entry in open_now.items():
        if cause not in configured:  # the rule or pattern was removed: forget it quietly
            book.close(db, entry, now)
    return out


def _new_case(
    db: StateDB,
    channels: Channels,
    project: str,
    rule: StalenessRule,
    pattern: str,
    deadline: dt.datetime,
    day: dt.date,
    now: dt.datetime,
) -> list[Delivery]:
    cause = cause_of(rule, pattern)
    key = (db.url, cause)
    if _MET.get(key) == deadline:
        return []
    last = book.latest_entries(db, [cause]).get(cause)
    if last is not None and last.last_seen_at is not None and last.last_seen_at >= deadline:
        return []  # already raised for this deadline (and since cleared)
    since = _window(rule, day)
    if last is not None and last.closed_at is not None:
        since = max(since, last.closed_at)
    if first_match(db, rule.source, pattern, since) is not None:
        _MET[key] = deadline
        return []
    alert = _stale_alert(db, channels, project, rule, pattern, deadline, since, now)
    return occur(db, channels, None, alert, "stale")


def _open_case(
    db: StateDB,
    channels: Channels,
    project: str,
    rule: StalenessRule,
    pattern: str,
    entry: book.Entry,
    deadline: dt.datetime,
    watched: dt.datetime,
    now: dt.datetime,
) -> list[Delivery]:
    _, opened_day = clock.latest(rule.deadline, rule.timezone, entry.opened_at)
    since = _window(rule, opened_day)
    closed = _closed_before(db, entry.cause, entry.alert_id)
    if closed is not None:
        since = max(since, closed)
    found = first_match(db, rule.source, pattern, since)
    if found is not None:
        alert = recovery_alert(
            channels,
            project,
            entry,
            now=now,
            message=f"source {rule.source} delivered {found.name} (matching {pattern!r}), "
            f"landed {found.landed_at.replace(microsecond=0).isoformat()}Z",
            link_path="/freshness",
        )
        return recover(db, channels, entry, alert)
    seen = entry.last_seen_at or entry.opened_at
    if seen < deadline and deadline > watched:  # still missing at a later deadline
        alert = _stale_alert(db, channels, project, rule, pattern, deadline, since, now)
        return occur(db, channels, entry, alert, "stale")
    return []


def _stale_alert(
    db: StateDB,
    channels: Channels,
    project: str,
    rule: StalenessRule,
    pattern: str,
    deadline: dt.datetime,
    since: dt.datetime,
    now: dt.datetime,
) -> Alert:
    due = clock.local_text(deadline, rule.timezone)
    context = {
        "Source": rule.source,
        "Pattern": pattern,
        "Deadline": due,
        "Looked since": clock.local_text(since, rule.timezone),
    }
    newest = _newest(db, rule.source)
    context["Newest file"] = (
        "none landed yet"
        if newest is None
        else f"{newest.name}, landed {clock.local_text(newest.landed_at, rule.timezone)}"
    )
    return Alert(
        event="stale",
        cause=cause_of(rule, pattern),
        project=project,
        message=f"source {rule.source}: no file matching {pattern!r} landed by the deadline {due}",
        link=link(channels, "/freshness"),
        time=now,
        context=context,
    )


def _newest(db: StateDB, source: str) -> Landed | None:
    query = (
        sa.select(files.c.name, files.c.landed_at)
        .where(files.c.source == source)
        .order_by(files.c.landed_at.desc(), files.c.file_id.desc())
        .limit(1)
    )
    with db.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else Landed(str(row[0]), row[1])
