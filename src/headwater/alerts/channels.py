"""Sending: email over SMTP (STARTTLS, implicit TLS or plain; AUTH) and webhooks over HTTP.

A delivery never raises: whatever goes wrong (connection refused, timeout, a
TLS or AUTH failure, an HTTP error status) becomes a `Delivery` with `ok=False`
and a warning in the log. Neither carries a secret: the SMTP password and the
webhook URLs (which are credentials: whoever has a Slack webhook URL can post)
are replaced by `***` in every message.
"""

from __future__ import annotations

import dataclasses
import logging
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from headwater import urls
from headwater.alerts.message import WEBHOOK_BODIES, Alert, email_message
from headwater.config_schedule import AlertsConfig, EmailChannel, WebhookChannel
from headwater.observe.logs import Redactor, secrets_of
from headwater.project import Project

log = logging.getLogger("headwater.alerts")


@dataclass(frozen=True)
class Delivery:
    """One attempt to send one alert on one channel."""

    channel: str  # "email" or "webhook <n> (<format>, <host>)"
    event: str
    cause: str
    ok: bool
    error: str | None = None


def webhook_label(index: int, channel: WebhookChannel) -> str:
    """How a webhook is named in logs and results: never its URL."""
    try:
        host = urlsplit(channel.url.get_secret_value()).hostname or "?"
    except ValueError:
        host = "?"
    return f"webhook {index + 1} ({channel.format}, {host})"


class Channels:
    """The channels of one project's `alerts` section, ready to send."""

    def __init__(
        self, config: AlertsConfig, root: Path, project_secrets: Iterable[str] = ()
    ) -> None:
        self.config = config
        self.root = root
        self.secrets = _secrets(config)
        _HTTPX_FILTER.learn(self.secrets)
        # Every secret of the project (database URLs, the PII key...): an alert quotes run
        # errors, which may quote a driver's message.
        self.redactor = Redactor([*self.secrets, *project_secrets])

    @classmethod
    def of(cls, project: Project) -> Channels | None:
        """The project's channels, or None when it configures none."""
        config = project.config.alerts
        if config.email is None and not config.webhooks:
            return None
        return cls(config, project.root, secrets_of(project.config))

    def wants(self, event: str) -> bool:
        return event in self.config.on

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def send(self, alert: Alert) -> list[Delivery]:
        """The alert on every channel: the email, then each webhook."""
        alert = self.redacted(alert)
        out: list[Delivery] = []
        email = self.config.email
        if email is not None:
            out.append(self.send_email(email_message(alert, email.sender, email.to), alert))
        for index, hook in enumerate(self.config.webhooks):
            body = WEBHOOK_BODIES[hook.format](alert)
            out.append(self._attempt(webhook_label(index, hook), alert, self._post, hook, body))
        return out

    def redacted(self, alert: Alert) -> Alert:
        """The alert with no secret value and no password of a URL left in its text."""
        clean = self.redactor.redact
        return dataclasses.replace(
            alert,
            message=clean(alert.message),
            error=None if alert.error is None else clean(alert.error),
            context={k: clean(v) for k, v in alert.context.items()},
        )

    def send_email(self, message: EmailMessage, alert: Alert) -> Delivery:
        """One email (an alert, or the daily summary) through the configured server."""
        return self._attempt("email", alert, self._smtp, message)

    def _attempt(self, label: str, alert: Alert, action: Any, *args: Any) -> Delivery:
        try:
            action(*args)
        except (
            OSError,  # refused, unreachable, timed out, TLS (ssl.SSLError), a missing ca_file
            smtplib.SMTPException,
            httpx.HTTPError,
            httpx.InvalidURL,
            ValueError,  # a malformed address or URL
            RefusedError,
        ) as exc:
            reason = self.scrub(_describe(exc))
            log.warning(
                "alert %s %s: sending by %s failed: %s", alert.event, alert.cause, label, reason
            )
            return Delivery(label, alert.event, alert.cause, ok=False, error=reason)
        log.info("alert %s %s: sent by %s", alert.event, alert.cause, label)
        return Delivery(label, alert.event, alert.cause, ok=True)

    def _smtp(self, message: EmailMessage) -> None:
        channel = self.config.email
        assert channel is not None
        client = self._connect(channel)
        try:
            if channel.username:
                password = channel.password.get_secret_value() if channel.password else ""
                client.login(channel.username, password)
            client.send_message(message)
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()

    def _connect(self, channel: EmailChannel) -> smtplib.SMTP:
        timeout = channel.timeout_seconds
        if channel.security == "ssl":
            return smtplib.SMTP_SSL(
                channel.host, channel.port, timeout=timeout, context=self._tls(channel)
            )
        client = smtplib.SMTP(channel.host, channel.port, timeout=timeout)
        try:
            if channel.security == "starttls":
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise RefusedError(
                        f"SMTP server {channel.host}:{channel.port} does not offer STARTTLS "
                        "(alerts.email.security is starttls)"
                    )
                client.starttls(context=self._tls(channel))
                client.ehlo()
        except BaseException:
            client.close()
            raise
        return client

    def _tls(self, channel: EmailChannel) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if channel.ca_file:
            path = Path(channel.ca_file).expanduser()
            context.load_verify_locations(
                cafile=str(path if path.is_absolute() else self.root / path)
            )
        return context

    def _post(self, hook: WebhookChannel, body: dict[str, Any]) -> None:
        response = httpx.post(hook.url.get_secret_value(), json=body, timeout=hook.timeout_seconds)
        if response.status_code >= 300:
            text = response.text.strip().replace("\n", " ")[:200]
            raise RefusedError(f"HTTP {response.status_code}" + (f": {text}" if text else ""))


class _Redact(logging.Filter):
    """On httpx's logger, which logs each request's URL at INFO: webhook URLs as ***."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def learn(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({*self.secrets, *secrets}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


_HTTPX_FILTER = _Redact()
logging.getLogger("httpx").addFilter(_HTTPX_FILTER)


class RefusedError(Exception):
    """A server answered but refused (internal: becomes a failed `Delivery`)."""


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = (
            exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        )
        text = f"SMTP {exc.smtp_code} {detail}".strip()
    elif isinstance(exc, TimeoutError | httpx.TimeoutException):
        text = f"timed out ({text})"
    elif isinstance(exc, ssl.SSLError):
        text = f"TLS: {exc.reason or text}"
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, RefusedError) else text


def _secrets(config: AlertsConfig) -> list[str]:
    found: list[str] = []
    if config.email is not None and config.email.password is not None:
        found.append(config.email.password.get_secret_value())
    for hook in config.webhooks:
        url = hook.url.get_secret_value()
        found += [url, *urls.url_secrets(url), *_url_tail(url)]
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def _url_tail(url: str) -> Iterable[str]:
    """The path and query of a webhook URL: the token part (Slack, Teams, Discord)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return [tail] if len(tail) > 1 else []
