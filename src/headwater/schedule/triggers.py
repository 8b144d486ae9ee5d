"""When triggers fire: cron due times and the debounce that turns bursts of files into few runs.

Both are plain state machines over a clock value, so tests drive them with any time.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from croniter import croniter


class Clock:
    """The scheduler's time. Tests pass a subclass whose `now()` they move by hand."""

    def now(self) -> dt.datetime:
        """Aware UTC."""
        return dt.datetime.now(dt.UTC)


@dataclass
class CronSchedule:
    """A five-field cron expression in a time zone, and when it is next due."""

    expression: str
    timezone: str = "UTC"
    next_due: dt.datetime | None = None
    fired_wall: dt.datetime | None = None  # local wall-clock time of the last fire

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        local = moment.astimezone(zoneinfo.ZoneInfo(self.timezone))
        nxt = croniter(self.expression, local).get_next(dt.datetime)
        return nxt.astimezone(dt.UTC)

    def due(self, now: dt.datetime) -> bool:
        """True once per scheduled time that has passed. A scheduler whose loop was held
        up over several scheduled times (a machine asleep) fires once, not once per missed
        time; a local time that repeats when clocks go back fires once. A scheduler that
        was not running does not catch up: the first due time is the next after it starts."""
        if self.next_due is None:
            self.next_due = self.next_after(now)
            return False
        if now < self.next_due:
            return False
        zone = zoneinfo.ZoneInfo(self.timezone)
        self.fired_wall = self.next_due.astimezone(zone).replace(tzinfo=None)
        nxt = self.next_after(now)
        # When clocks go back, wall times repeat: a time already fired is not fired again.
        while nxt.astimezone(zone).replace(tzinfo=None) <= self.fired_wall:
            nxt = self.next_after(nxt)
        self.next_due = nxt
        return True


@dataclass
class Debounce:
    """Arrivals open a window; it fires `settle` seconds after the last arrival, or
    `max_wait` seconds after the first, whichever comes first. Times are monotonic seconds."""

    settle: float
    max_wait: float
    first: float | None = None
    last: float | None = None
    names: set[str] = field(default_factory=set)

    def arrived(self, at: float, names: set[str] | None = None) -> None:
        if self.first is None:
            self.first = at
        self.last = at
        self.names |= names or set()

    def ready(self, at: float) -> bool:
        if self.first is None or self.last is None:
            return False
        return at - self.last >= self.settle or at - self.first >= self.max_wait

    def take(self) -> set[str]:
        """Close the window; the names that arrived in it."""
        names, self.names = self.names, set()
        self.first = self.last = None
        return names

    def wake_in(self, at: float) -> float | None:
        """Seconds until `ready` may turn true, None when no window is open."""
        if self.first is None or self.last is None:
            return None
        return max(0.0, min(self.last + self.settle, self.first + self.max_wait) - at)
