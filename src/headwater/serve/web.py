"""Shared pieces of the web layer: the Jinja2 environment, the project of a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from headwater.project import Project

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))


def project_of(request: Request) -> Project:
    project: Project = request.app.state.project
    return project


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Any:
    """A page: `name` under serve/templates, with the project in the context."""
    base = {"project": project_of(request), "nav": NAV}
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


# The navigation bar: (label, path). Each area adds its page here.
NAV: list[tuple[str, str]] = [
    ("Dashboards", "/dashboards"),
    ("Runs", "/runs"),
    ("Freshness", "/freshness"),
    ("Checks", "/checks"),
    ("Lake", "/lake"),
    ("SQL", "/sql"),
]
