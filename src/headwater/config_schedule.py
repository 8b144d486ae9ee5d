"""Config sections for running unattended: `schedule`, `retries`, `alerts`, `logging`.

```yaml
schedule:
  timeout_minutes: 60
  triggers:
    - cron: "*/15 * * * *"          # five fields, in `timezone`
    - files: inbox                  # a files source: run when files land there
    - after: other_project          # when a run of another scheduled project succeeds
retries: {attempts: 3, initial_seconds: 1, max_seconds: 60}
alerts:
  email: {host: smtp.example.com, sender: hw@example.com, to: [ops@example.com]}
  webhooks: [{url: "${SLACK_WEBHOOK_URL}", format: slack}]
  staleness: [{source: inbox, deadline: "02:00", expect: ["*_chesterfield_*"]}]
```
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, SecretStr, Tag, field_validator, model_validator

from headwater.config_base import Strict

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (expected an IANA name such as 'UTC' or 'Europe/London')"
        ) from None
    return value


def _check_clock(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 23:59)")
    return value


# ------------------------------------------------------------------ triggers


class TriggerBase(Strict):
    sources: list[str] | None = Field(
        default=None,
        description="Extract only these sources in the runs this trigger starts (default all)",
    )


class CronTrigger(TriggerBase):
    cron: str = Field(description="Five-field cron expression: minute hour day month weekday")
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a five-field cron expression (minute hour day month weekday, "
                "for example '*/15 * * * *')"
            )
        return value

    _tz = field_validator("timezone")(_check_timezone)


class FilesTrigger(TriggerBase):
    files: str = Field(description="Name of a files source; a run starts when files land there")
    settle_seconds: float = Field(
        default=0.5, ge=0, description="Quiet time after the last arrival before the run starts"
    )
    max_wait_seconds: float = Field(
        default=10.0, gt=0, description="A steady stream of files still starts a run this often"
    )
    poll_seconds: float = Field(
        default=5.0, gt=0, description="Listing interval for s3:// and the polling fallback"
    )
    events: bool = Field(
        default=True, description="Use filesystem events for local folders (else only poll)"
    )


class AfterTrigger(TriggerBase):
    after: str = Field(
        description="'PROJECT' or 'PROJECT.SOURCE': run when a run of that scheduled project "
        "succeeds (with new data from SOURCE, if named)"
    )


TRIGGER_KINDS = ("cron", "files", "after")


def _trigger_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kinds = [k for k in TRIGGER_KINDS if k in value]
    else:
        kinds = [k for k in TRIGGER_KINDS if getattr(value, k, None) is not None]
    return kinds[0] if len(kinds) == 1 else None


TriggerConfig = Annotated[
    Annotated[CronTrigger, Tag("cron")]
    | Annotated[FilesTrigger, Tag("files")]
    | Annotated[AfterTrigger, Tag("after")],
    Discriminator(
        _trigger_kind,
        custom_error_type="trigger_kind",
        custom_error_message=f"expected a trigger with exactly one of: {', '.join(TRIGGER_KINDS)}",
    ),
]


class ScheduleConfig(Strict):
    triggers: list[TriggerConfig] = []
    timeout_minutes: float = Field(
        default=60, gt=0, description="A scheduled run still going after this long is stopped"
    )


class RetryConfig(Strict):
    """Transient errors (connection refused, timeout, 5xx, deadlock) are retried; others not."""

    attempts: int = Field(default=3, ge=1, le=20, description="Tries per step, the first included")
    initial_seconds: float = Field(default=1.0, ge=0, description="Wait before the first retry")
    max_seconds: float = Field(default=60.0, ge=0, description="Longest wait between tries")
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(
        default=0.5, ge=0, le=1, description="Each wait is shortened by up to this fraction"
    )


# -------------------------------------------------------------------- alerts

AlertEvent = Literal["failure", "check", "stale", "recovery"]


class EmailChannel(Strict):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(description="The From address")
    to: list[str] = Field(min_length=1)
    ca_file: str | None = Field(
        default=None, description="Extra CA certificate (PEM) to trust, for a private SMTP server"
    )
    timeout_seconds: float = Field(default=30, gt=0)


class WebhookChannel(Strict):
    url: SecretStr = Field(description="Where to POST (webhook URLs are secrets)")
    format: Literal["json", "slack", "teams"] = "json"
    timeout_seconds: float = Field(default=10, gt=0)


class StalenessRule(Strict):
    source: str
    deadline: str = Field(description="Daily time HH:MM by which the source must have delivered")
    timezone: str = "UTC"
    expect: list[str] = Field(
        default=["*"],
        min_length=1,
        description="File name patterns: each needs a file landed since the previous deadline",
    )

    _tz = field_validator("timezone")(_check_timezone)
    _clock = field_validator("deadline")(_check_clock)


class DailySummary(Strict):
    at: str = Field(description="Daily time HH:MM of the summary email")
    timezone: str = "UTC"
    dashboards: list[str] = Field(default=[], description="Dashboards attached as PNG images")
    to: list[str] | None = Field(default=None, description="Recipients (default alerts.email.to)")

    _tz = field_validator("timezone")(_check_timezone)
    _clock = field_validator("at")(_check_clock)


class AlertsConfig(Strict):
    email: EmailChannel | None = None
    webhooks: list[WebhookChannel] = []
    on: list[AlertEvent] = ["failure", "check", "stale", "recovery"]
    quiet_minutes: float = Field(
        default=60, ge=0, description="An alert for the same cause is not resent within this"
    )
    base_url: str = Field(
        default="http://127.0.0.1:8080", description="Where `headwater serve` is reached: links"
    )
    staleness: list[StalenessRule] = []
    daily_summary: DailySummary | None = None

    @model_validator(mode="after")
    def _summary_needs_email(self) -> AlertsConfig:
        if self.daily_summary is not None and self.email is None:
            raise ValueError("alerts.daily_summary is sent by email: it needs alerts.email")
        return self


# ------------------------------------------------------------------- logging


class LoggingConfig(Strict):
    file: str = Field(
        default=".headwater/logs/headwater.jsonl",
        description="JSON-lines log (relative to the project folder); empty for none",
    )
    max_mb: int = Field(default=10, ge=1, description="Rotate the file at this size")
    backups: int = Field(default=5, ge=0, description="Rotated files kept")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def runs_unattended(schedule: ScheduleConfig, alerts: AlertsConfig) -> bool:
    """Whether a scheduler has anything to do for a project: triggers to fire, or
    deadlines and a daily summary to watch."""
    return bool(schedule.triggers or alerts.staleness or alerts.daily_summary)


def describe(schedule: ScheduleConfig, alerts: AlertsConfig) -> list[str]:
    """One line per trigger and one for alerts, for `headwater check`."""
    lines = []
    for trigger in schedule.triggers:
        only = f", sources {', '.join(trigger.sources)}" if trigger.sources else ""
        if isinstance(trigger, CronTrigger):
            lines.append(f"trigger: cron {trigger.cron} ({trigger.timezone}{only})")
        elif isinstance(trigger, FilesTrigger):
            how = "events + listing" if trigger.events else "listing"
            lines.append(
                f"trigger: files landing in {trigger.files} ({how} every "
                f"{trigger.poll_seconds:g} s, settle {trigger.settle_seconds:g} s, "
                f"at most {trigger.max_wait_seconds:g} s{only})"
            )
        elif isinstance(trigger, AfterTrigger):
            lines.append(f"trigger: after {trigger.after}{only}")
    if schedule.triggers:
        lines.append(f"timeout: {schedule.timeout_minutes:g} minutes a run")
    channels = [f"email to {', '.join(alerts.email.to)}"] if alerts.email else []
    channels += [f"webhook ({hook.format})" for hook in alerts.webhooks]
    if channels:
        extra = [f"{len(alerts.staleness)} staleness rule(s)"] if alerts.staleness else []
        extra += [f"daily summary at {alerts.daily_summary.at}"] if alerts.daily_summary else []
        lines.append(
            f"alerts: {', '.join(channels)} on {', '.join(alerts.on)}"
            + (f"; {', '.join(extra)}" if extra else "")
        )
    return lines
