"""Operations pages of `headwater serve`: home, runs, a run, freshness, check history.

Server-rendered (Jinja2, autoescaped); the runs table refreshes itself every 5 seconds with
htmx (`GET /runs/table` returns just the table). The data comes from `api.py`, so a page
and its JSON counterpart always agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from headwater.serve import api
from headwater.serve.web import NAV, project_of, render, templates
from headwater.state.db import redact

router = APIRouter(include_in_schema=False)

RUNS_PAGE = 50
REFRESH_SECONDS = 5
StatusFilter = Literal["running", "success", "failed", "abandoned"] | None


# ------------------------------------------------------------------ filters


def fmt_time(value: object) -> str:
    if not isinstance(value, dt.datetime):
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def fmt_seconds(value: object) -> str:
    """A duration for people: 0.42 s, 12.3 s, 4 min 05 s, 3 h 20 min, 2 d 04 h."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def fmt_int(value: object) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return ""
    return f"{value:,}"


def first_line(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    return text.splitlines()[0] if text else ""


templates.env.filters.update(
    hw_time=fmt_time, hw_seconds=fmt_seconds, hw_int=fmt_int, hw_first_line=first_line
)


def page(request: Request, name: str, context: dict[str, Any]) -> Response:
    response: Response = render(request, name, context)
    return response


def render_block(request: Request, name: str, block: str, context: dict[str, Any]) -> Response:
    """One block of a page (an htmx fragment), rendered with the page's context."""
    template = templates.env.get_template(name)
    full = {"request": request, "project": project_of(request), "nav": NAV, **context}
    return HTMLResponse("".join(template.blocks[block](template.new_context(full))))


# -------------------------------------------------------------------- pages


@router.get("/")
def index(request: Request) -> Response:
    project = project_of(request)
    secrets = api.Secrets.of(project)
    with api.open_state(project) as db:
        runs = [] if db is None else api.list_runs(db, secrets, limit=5)
        fresh = api.freshness_report(db, project)
        last_success = (
            None
            if db is None
            else next(iter(api.list_runs(db, secrets, limit=1, status="success")), None)
        )
    warehouse = project.config.warehouse
    return page(
        request,
        "index.html",
        {
            "state_missing": db is None,
            "runs": runs,
            "fresh": fresh,
            "overdue": [f for f in fresh if f.overdue],
            "last_success": last_success,
            "state_url": secrets.text(redact(project.state_url)),
            "warehouse_target": warehouse.type,
            "warehouse_path": project.warehouse_path if warehouse.type == "duckdb" else None,
            "lake_scheme": project.lake_url.split("://", 1)[0],
        },
    )


def _runs_context(
    request: Request, status: StatusFilter, before: int | None, limit: int
) -> dict[str, Any]:
    project = project_of(request)
    with api.open_state(project) as db:
        runs = (
            []
            if db is None
            else api.list_runs(
                db, api.Secrets.of(project), limit=limit, status=status, before=before
            )
        )
    query = urlencode({k: v for k, v in (("status", status), ("before", before)) if v is not None})
    return {
        "state_missing": db is None,
        "runs": runs,
        "status": status,
        "before": before,
        "older": runs[-1].run_id if len(runs) == limit else None,
        "query": query,
        "refresh": REFRESH_SECONDS,
        "statuses": api.RUN_STATUSES,
    }


Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/runs")
def runs_page(
    request: Request,
    status: StatusFilter = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Limit = RUNS_PAGE,
) -> Response:
    return page(request, "runs.html", _runs_context(request, status, before, limit))


@router.get("/runs/table")
def runs_table(
    request: Request,
    status: StatusFilter = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Limit = RUNS_PAGE,
) -> Response:
    """The runs table alone: what htmx swaps in every few seconds."""
    return render_block(
        request, "runs.html", "runs_table", _runs_context(request, status, before, limit)
    )


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: int) -> Response:
    project = project_of(request)
    with api.open_state(project) as db:
        run = None if db is None else api.get_run(db, api.Secrets.of(project), run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    failed_steps = [s for s in run.steps if s.status in ("failed", "abandoned")]
    failed_models = {name: m for name, m in run.models.items() if m.status in ("failed", "skipped")}
    reasons = sorted(
        (
            (source, reason, count)
            for source, rows in run.sources.items()
            for reason, count in rows.quarantined_by_reason.items()
        ),
        key=lambda item: (item[0], -item[2], item[1]),
    )
    return page(
        request,
        "run.html",
        {
            "run": run,
            "failed_steps": failed_steps,
            "failed_models": failed_models,
            "reasons": reasons,
            "refresh": REFRESH_SECONDS if run.status == "running" else None,
        },
    )


@router.get("/freshness")
def freshness_page(request: Request) -> Response:
    project = project_of(request)
    with api.open_state(project) as db:
        fresh = api.freshness_report(db, project)
    return page(
        request,
        "freshness.html",
        {
            "state_missing": db is None,
            "fresh": fresh,
            "min_overdue": api.MIN_OVERDUE_AFTER.total_seconds(),
            "unknown_overdue": api.UNKNOWN_OVERDUE_AFTER.total_seconds(),
            "intervals": api.INTERVALS_KEPT,
        },
    )


@router.get("/checks")
def checks_page(
    request: Request,
    model: str | None = None,
    failing: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    project = project_of(request)
    with api.open_state(project) as db:
        rows = [] if db is None else api.check_history(db, api.Secrets.of(project), limit=limit)
    models = sorted({str(r["model"]) for r in rows})
    rows = [r for r in rows if (not model or r["model"] == model) and (r["failed"] or not failing)]
    return page(
        request,
        "checks.html",
        {
            "state_missing": db is None,
            "rows": rows,
            "model": model or None,
            "models": models,
            "failing": failing,
            "limit": limit,
        },
    )
