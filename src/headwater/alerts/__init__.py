"""Alerts: email and webhooks on run failure, failed `error` checks, late sources, recovery.

Two entry points, both safe to call whatever the configuration (without a
channel they return at once, touching nothing):

- `after_run(project, summary)` after every run (the CLI and the scheduler,
  killed and crashed runs included);
- `tick(project, now)` every few seconds from the scheduler: staleness
  deadlines and the daily summary.

Both return the `Delivery` attempts they made. State (open causes, quiet
periods, what was sent) lives in the state database's `hw_alerts` table.
The reference is docs/alerts.md.
"""

from __future__ import annotations

from headwater.alerts.channels import Delivery
from headwater.alerts.runs import after_run
from headwater.alerts.tick import tick

__all__ = ["Delivery", "after_run", "tick"]
