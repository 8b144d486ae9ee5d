"""The alert book: one `hw_alerts` row per cause for as long as it stays open.

A cause opens with its first occurrence (a failed run, a failed check, a
missed deadline) and closes when it clears. While it is open, each further
occurrence updates the row: sent again once `quiet_minutes` have passed since
the last send, otherwise counted in `suppressed`. The decision is taken
before sending and written after, so a process that dies in between sends the
alert again rather than never.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from headwater.state.db import StateDB, alerts

OPEN, CLOSED = "open", "closed"


@dataclass(frozen=True)
class Entry:
    """One row of `hw_alerts`."""

    alert_id: int
    kind: str
    cause: str
    status: str
    opened_at: dt.datetime
    last_sent_at: dt.datetime | None
    last_seen_at: dt.datetime | None
    sent: int
    suppressed: int
    closed_at: dt.datetime | None
    run_id: int | None
    message: str | None


def _entry(row: sa.Row[tuple[object, ...]]) -> Entry:
    m = row._mapping
    return Entry(
        alert_id=int(m["alert_id"]),
        kind=str(m["kind"]),
        cause=str(m["cause"]),
        status=str(m["status"]),
        opened_at=m["opened_at"],
        last_sent_at=m["last_sent_at"],
        last_seen_at=m["last_seen_at"],
        sent=int(m["sent"] or 0),
        suppressed=int(m["suppressed"] or 0),
        closed_at=m["closed_at"],
        run_id=None if m["run_id"] is None else int(m["run_id"]),
        message=m["message"],
    )


def open_entries(db: StateDB, kinds: Iterable[str]) -> dict[str, Entry]:
    """Open causes of these kinds, by cause."""
    query = sa.select(alerts).where(alerts.c.status == OPEN, alerts.c.kind.in_(list(kinds)))
    with db.engine.connect() as conn:
        return {e.cause: e for e in map(_entry, conn.execute(query.order_by(alerts.c.alert_id)))}


def latest_entries(db: StateDB, causes: Iterable[str]) -> dict[str, Entry]:
    """The newest row (open or closed) of each of these causes that has one."""
    causes = list(causes)
    if not causes:
        return {}
    query = sa.select(alerts).where(alerts.c.cause.in_(causes)).order_by(alerts.c.alert_id)
    with db.engine.connect() as conn:
        return {e.cause: e for e in map(_entry, conn.execute(query))}


def is_due(entry: Entry | None, now: dt.datetime, quiet_minutes: float) -> bool:
    """Whether an occurrence of this cause is sent (else it is suppressed)."""
    if entry is None or entry.last_sent_at is None:
        return True
    return now - entry.last_sent_at >= dt.timedelta(minutes=quiet_minutes)


def record(
    db: StateDB,
    entry: Entry | None,
    *,
    kind: str,
    cause: str,
    now: dt.datetime,
    delivered: bool | None,
    run_id: int | None = None,
    message: str | None = None,
) -> None:
    """Write one occurrence: `delivered` True (sent), False (every channel failed) or None
    (suppressed by the quiet period). A new cause opens a row; an open one is updated."""
    sent = 1 if delivered else 0
    suppressed = 1 if delivered is None else 0
    with db.engine.begin() as conn:
        if entry is None:
            conn.execute(
                alerts.insert().values(
                    kind=kind,
                    cause=cause,
                    status=OPEN,
                    opened_at=now,
                    last_sent_at=now if delivered else None,
                    last_seen_at=now,
                    sent=sent,
                    suppressed=suppressed,
                    run_id=run_id,
                    message=message,
                )
            )
            return
        values: dict[str, object] = {
            "last_seen_at": now,
            "sent": alerts.c.sent + sent,
            "suppressed": alerts.c.suppressed + suppressed,
            "message": message,
        }
        if delivered:
            values["last_sent_at"] = now
        if run_id is not None:
            values["run_id"] = run_id
        conn.execute(alerts.update().where(alerts.c.alert_id == entry.alert_id).values(**values))


def close(db: StateDB, entry: Entry, now: dt.datetime) -> bool:
    """Close an open cause; False when another process closed it first."""
    with db.engine.begin() as conn:
        result = conn.execute(
            alerts.update()
            .where(alerts.c.alert_id == entry.alert_id, alerts.c.status == OPEN)
            .values(status=CLOSED, closed_at=now)
        )
        return result.rowcount == 1
