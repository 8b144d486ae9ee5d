"""Logs: JSON lines to a rotating file, readable lines to the terminal, each with its run id.

`configure(project)` installs both handlers on the `headwater` logger. The run id
comes from a context variable set by `bind_run(run_id)` for the length of a run, so
every line a run writes (from any module, in the same thread or context) carries it.
Secrets are removed from every line: each secret value of the project config (`SecretStr`
fields: database URLs, passwords, webhook URLs), the passwords inside those URLs, and
anything that looks like `password=...` or `user:password@` in a URL.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import logging.handlers
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from headwater import urls

if TYPE_CHECKING:
    from headwater.config import ProjectConfig
    from headwater.project import Project

ROOT = "headwater"
RUN_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "headwater_run_id", default=None
)
PROJECT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "headwater_project", default=None
)

_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?=@)", re.IGNORECASE)
_PARAM_PASSWORD = re.compile(
    r"(?P<pre>(?<![A-Za-z0-9])[A-Za-z0-9_-]*(?:password|passwd|pwd|secret|token|api_?key)=)"
    r"[^&\s\"']+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<pre>\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


@contextlib.contextmanager
def bind_run(run_id: int, project: str | None = None) -> Iterator[None]:
    """Tag every log line written inside the block with `run_id` (and the project)."""
    run_token = RUN_ID.set(run_id)
    project_token = PROJECT.set(project) if project is not None else None
    try:
        yield
    finally:
        RUN_ID.reset(run_token)
        if project_token is not None:
            PROJECT.reset(project_token)


def secrets_of(config: BaseModel) -> list[str]:
    """Every secret value in a config tree, with the passwords inside secret URLs."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, SecretStr):
            value = node.get_secret_value()
            if value:
                found.extend([value, *urls.url_secrets(value)])
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name))
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(config)
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class Redactor(logging.Filter):
    """Replaces known secret values and URL passwords in every record's message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = _URL_PASSWORD.sub(r"\g<pre>***", text)
        text = _BEARER.sub(r"\g<pre>***", text)
        return _PARAM_PASSWORD.sub(r"\g<pre>***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())
        record.msg, record.args = message, None
        for key, value in list(record.__dict__.items()):  # `extra=` fields
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(
                "".join(logging.Formatter().formatException(record.exc_info))
            )
            record.exc_info = None
        # A record from a run's child process arrives with its tags already set.
        record.run_id = getattr(record, "run_id", None) or RUN_ID.get()
        record.project = getattr(record, "project", None) or PROJECT.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, run_id, project, message, extras."""

    _SKIP = _STANDARD | {"run_id", "project", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "run_id": getattr(record, "run_id", None),
            "project": getattr(record, "project", None),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._SKIP and not key.startswith("_"):
                data[key] = value
        if record.exc_text:
            data["error"] = record.exc_text
        return json.dumps(data, default=str)


class TerminalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        run_id = getattr(record, "run_id", None)
        project = getattr(record, "project", None)
        tags = " ".join(
            t for t in (project or "", f"run {run_id}" if run_id is not None else "") if t
        )
        stamp = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {f'[{tags}] ' if tags else ''}{record.getMessage()}"
        return f"{line}\n{record.exc_text}" if record.exc_text else line


_HANDLER_MARK = "_headwater_handler"


class _LazyRotatingFile(logging.handlers.RotatingFileHandler):
    """Creates its folder and file at the first line, not before: a command that stops on
    a configuration error has written nothing, not even an empty log."""

    def __init__(self, filename: Path, **kwargs: Any) -> None:
        super().__init__(filename, delay=True, **kwargs)

    def _open(self) -> Any:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def configure(
    log_file: Path | None,
    *,
    level: str = "INFO",
    max_mb: int = 10,
    backups: int = 5,
    secrets: Iterable[str] = (),
    terminal: bool = True,
) -> None:
    """Install the JSON file and terminal handlers on the `headwater` logger (idempotent:
    handlers from an earlier call are replaced, so several projects do not stack them)."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(handler)
        handler.close()
    redactor = Redactor(secrets)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        rotating = _LazyRotatingFile(
            log_file, maxBytes=max_mb * 1024 * 1024, backupCount=backups, encoding="utf-8"
        )
        rotating.setFormatter(JsonFormatter())
        handlers.append(rotating)
    if terminal:
        stream = logging.StreamHandler()
        stream.setFormatter(TerminalFormatter())
        handlers.append(stream)
    for handler in handlers:
        handler.addFilter(redactor)
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def configure_project(
    project: Project, *, terminal: bool, also: Iterable[ProjectConfig] = ()
) -> None:
    """`configure` from the project's `logging` section, redacting its secrets (and those
    of `also`: other projects sharing the process)."""
    settings = project.config.logging
    configure(
        project.path(settings.file) if settings.file else None,
        level=settings.level,
        max_mb=settings.max_mb,
        backups=settings.backups,
        secrets=[s for c in (project.config, *also) for s in secrets_of(c)],
        terminal=terminal,
    )


def reset() -> None:
    """Remove the handlers `configure` installed; records propagate to the root again."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def add_secrets(secrets: Iterable[str]) -> None:
    """Teach the installed handlers more secret values (another project's)."""
    for handler in logging.getLogger(ROOT).handlers:
        for flt in handler.filters:
            if isinstance(flt, Redactor):
                flt.secrets = sorted({*flt.secrets, *secrets}, key=len, reverse=True)
