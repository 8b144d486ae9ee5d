"""One alert's content, and its four renderings: email, generic JSON, Slack, Teams.

An `Alert` is built once (by `runs.py` for run outcomes, `staleness.py` for
missed deadlines) and rendered per channel. Every rendering starts with the
same first line, `<project>: <event>: <cause>`, and carries the error, its
context (where it failed, rows), the run id and the link to the run page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

# Slack and Teams cut long texts; an error is shown up to this many characters.
MAX_ERROR = 2500
SLACK_HEADER = 150  # Slack's limit for a header block

EVENT_WORDS = {
    "failure": "run failed",
    "check": "check failed",
    "stale": "source is late",
    "recovery": "recovered",
}


@dataclass(frozen=True)
class Alert:
    """What happened, independent of how it is sent."""

    event: str  # failure | check | stale | recovery
    cause: str  # e.g. source:inbox, model:orders, check:orders/not_null(id), stale:inbox:*_leeds_*
    project: str
    message: str  # one sentence: what happened
    link: str
    time: dt.datetime  # naive UTC
    run_id: int | None = None
    error: str | None = None
    context: dict[str, str] = field(default_factory=dict)  # label -> value, in order

    @property
    def headline(self) -> str:
        """The first line (and email subject) of every rendering."""
        return f"{self.project}: {self.event}: {self.cause}"

    @property
    def time_text(self) -> str:
        return self.time.replace(microsecond=0).isoformat() + "Z"


def _clip(text: str, limit: int = MAX_ERROR) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def email_text(alert: Alert) -> str:
    lines = [alert.headline, "", alert.message, ""]
    if alert.error:
        lines += ["Error:", *(f"  {line}" for line in alert.error.splitlines()), ""]
    facts = list(alert.context.items())
    if alert.run_id is not None:
        facts.insert(0, ("Run", str(alert.run_id)))
    facts += [("Link", alert.link), ("Time", alert.time_text)]
    width = max(len(label) for label, _ in facts)
    lines += [f"{label + ':':<{width + 1}} {value}" for label, value in facts]
    lines.append("")
    return "\n".join(lines)


def email_message(alert: Alert, sender: str, to: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "[headwater] " + " ".join(alert.headline.split())  # one line
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["X-Headwater-Event"] = alert.event
    message.set_content(email_text(alert))
    return message


def json_body(alert: Alert) -> dict[str, Any]:
    """The generic webhook body."""
    return {
        "event": alert.event,
        "project": alert.project,
        "run_id": alert.run_id,
        "cause": alert.cause,
        "message": alert.message,
        "error": alert.error,
        "context": dict(alert.context),
        "link": alert.link,
        "time": alert.time_text,
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(alert: Alert) -> list[tuple[str, str]]:
    facts = [("Cause", alert.cause)]
    if alert.run_id is not None:
        facts.append(("Run", str(alert.run_id)))
    facts += list(alert.context.items())
    facts.append(("Time", alert.time_text))
    return facts


def slack_body(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook body: `text` (the notification line) and `blocks`."""
    header = f"{alert.project}: {EVENT_WORDS.get(alert.event, alert.event)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(header, SLACK_HEADER)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(alert.message)}},
    ]
    if alert.error:
        code = _slack_escape(_clip(alert.error)).replace("```", "'''")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{code}```"}})
    fields = [
        {"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(_clip(value, 1900))}"}
        for name, value in _facts(alert)[:10]
    ]
    blocks.append({"type": "section", "fields": fields})
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": _link_title(alert)},
                    "url": alert.link,
                }
            ],
        }
    )
    return {"text": f"{alert.headline}: {alert.message}", "blocks": blocks}


def teams_body(alert: Alert) -> dict[str, Any]:
    """A Teams message with one Adaptive Card (Workflows and incoming webhooks take it)."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": alert.headline,
            "weight": "Bolder",
            "size": "Medium",
            "color": "Good" if alert.event == "recovery" else "Attention",
            "wrap": True,
        },
        {"type": "TextBlock", "text": alert.message, "wrap": True},
    ]
    if alert.error:
        body.append(
            {"type": "TextBlock", "text": _clip(alert.error), "fontType": "Monospace", "wrap": True}
        )
    body.append({"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in _facts(alert)]})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": _link_title(alert), "url": alert.link}],
    }
    return {
        "type": "message",
        "summary": alert.headline,
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _link_title(alert: Alert) -> str:
    if alert.run_id is not None:
        return f"Open run {alert.run_id}"
    return "Open freshness" if alert.link.endswith("/freshness") else "Open headwater"


WEBHOOK_BODIES = {"json": json_body, "slack": slack_body, "teams": teams_body}
