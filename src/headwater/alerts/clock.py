"""Daily times (`HH:MM` in a time zone) as naive UTC instants, and what has been watched.

Deadlines and the daily summary are wall-clock times in their own time zone: on
the day clocks change, 02:00 still means 02:00 local time (a time that does not
exist that day, inside the spring-forward gap, falls an hour later).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from headwater.state.db import StateDB, meta

WATCH_KEY = "alerts_watch_since"


def at_local(day: dt.date, clock: str, timezone: str) -> dt.datetime:
    """`clock` (HH:MM) on `day` in `timezone`, as naive UTC."""
    tz = zoneinfo.ZoneInfo(timezone)
    hour, minute = (int(part) for part in clock.split(":"))
    # fold=0: a repeated time (autumn) is its first occurrence; a time inside the
    # spring-forward gap takes the offset before the change, so lands an hour later.
    local = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def latest(clock: str, timezone: str, now: dt.datetime) -> tuple[dt.datetime, dt.date]:
    """The most recent `clock` time at or before `now` (naive UTC), and its local day."""
    tz = zoneinfo.ZoneInfo(timezone)
    today = now.replace(tzinfo=dt.UTC).astimezone(tz).date()
    for back in range(3):
        day = today - dt.timedelta(days=back)
        instant = at_local(day, clock, timezone)
        if instant <= now:
            return instant, day
    raise AssertionError("a daily time always occurred within the last two days")


def local_text(instant: dt.datetime, timezone: str) -> str:
    """A naive UTC instant as `YYYY-MM-DD HH:MM <zone>` local time."""
    local = instant.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(timezone))
    return f"{local:%Y-%m-%d %H:%M} {timezone}"


def watch_since(db: StateDB, now: dt.datetime) -> dt.datetime:
    """When alerting first watched deadlines in this state database (set on first call).

    Deadlines and summaries due before it are not acted on: a new project is not
    late for yesterday, and a first start at 10:00 does not send the 08:00 summary.
    """
    value = read(db, WATCH_KEY)
    if value is not None:
        return dt.datetime.fromisoformat(value)
    try:
        with db.engine.begin() as conn:
            conn.execute(meta.insert().values(key=WATCH_KEY, value=now.isoformat()))
        return now
    except IntegrityError:  # another process wrote it first
        return watch_since(db, now)


def read(db: StateDB, key: str) -> str | None:
    with db.engine.connect() as conn:
        value = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
    return None if value is None else str(value)


def claim(db: StateDB, key: str, value: str) -> bool:
    """Set `key` to `value` unless it already has that value: True for the one caller
    that changed it (so a daily job runs once, across processes and restarts)."""
    with db.engine.begin() as conn:
        changed = conn.execute(
            meta.update().where(meta.c.key == key, meta.c.value != value).values(value=value)
        ).rowcount
        if changed:
            return True
        exists = conn.execute(sa.select(meta.c.key).where(meta.c.key == key)).first()
    if exists is not None:
        return False
    try:
        with db.engine.begin() as conn:
            conn.execute(meta.insert().values(key=key, value=value))
        return True
    except IntegrityError:
        return False
