"""Retries with exponential backoff and jitter, for the steps that talk to other systems.

A step (extracting a source or a table, loading the warehouse) is a function
that either succeeds or raises. A `TransientError` (connection refused, timed
out, a server gone away, HTTP 5xx, deadlock, a lock not granted) is tried
again after a wait; any other error fails at once, as does the last allowed
attempt. Retry `n` (1 = the first retry) waits

    min(max_seconds, initial_seconds * multiplier ** (n - 1)) * (1 - jitter * random())

seconds, so with the defaults (1 s, x2, at most 60 s, jitter 0.5) the waits
are in [0.5, 1], [1, 2], [2, 4] ... seconds and never above a minute.

Every failed attempt is reported to `on_failure` (the pipeline adds it to the
run summary's `attempts`) and logged at WARNING. Only steps that are safe to
repeat are retried: see `runs/extract.py`, `runs/extract_sql.py` and
`runs/load.py` for why each is.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from headwater.config_schedule import RetryConfig
from headwater.errors import HeadwaterError, TransientError

log = logging.getLogger("headwater.run")
T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """One failed attempt of a step."""

    step: str  # extract | load
    name: str  # the source (`shop`), the table of a sql source (`shop.item`), the warehouse type
    attempt: int  # 1 for the first try
    error: str
    waited_seconds: float  # the wait before the next attempt; 0 when there was none

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["waited_seconds"] = round(self.waited_seconds, 3)
        return out


def backoff(policy: RetryConfig, retry: int, draw: float) -> float:
    """Seconds to wait before retry number `retry` (1-based), for a random `draw` in [0, 1)."""
    try:
        base = policy.initial_seconds * policy.multiplier ** (retry - 1)
    except OverflowError:
        base = policy.max_seconds
    return min(policy.max_seconds, base) * (1.0 - policy.jitter * draw)


class Retrier:
    """Calls steps, retrying transient failures as `policy` says."""

    def __init__(
        self,
        policy: RetryConfig,
        on_failure: Callable[[Attempt], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.on_failure = on_failure
        self.sleep = sleep
        self.draw = draw

    def call(self, fn: Callable[[], T], step: str, name: str) -> T:
        """`fn()`, tried up to `policy.attempts` times while it raises a `TransientError`."""
        attempts = self.policy.attempts
        number = 1
        while True:
            try:
                return fn()
            except Exception as exc:
                retry = isinstance(exc, TransientError) and number < attempts
                wait = backoff(self.policy, number, self.draw()) if retry else 0.0
                error = str(exc) if isinstance(exc, HeadwaterError) else repr(exc)
                attempt = Attempt(step, name, number, error, wait)
                if self.on_failure is not None:
                    self.on_failure(attempt)
                if retry:
                    outcome = f"retrying in {wait:.2f}s"
                elif isinstance(exc, TransientError):
                    outcome = f"giving up after {number} attempt{'s' if number > 1 else ''}"
                else:
                    outcome = "not retried (not a transient error)"
                log.warning(
                    "%s %s: attempt %d of %d failed, %s: %s",
                    step, name, number, attempts, outcome, error,
                )  # fmt: skip
                if not retry:
                    raise
            self.sleep(wait)
            number += 1
