"""The scheduler in the web app: its state on the runs page, "Run now", and `/api/schedule`.

`headwater serve` runs the scheduler in its own process (unless `--no-schedule`); the app
finds it in `app.state.scheduler`. Without one, the status says so and "Run now" answers
409. "Run now" is a POST that must carry htmx's `HX-Request` header: a page on another
site cannot send it without a CORS preflight, which this server never grants.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import escape

from headwater.serve.web import project_of

router = APIRouter()


def _scheduler(request: Request) -> Any:
    return getattr(request.app.state, "scheduler", None)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)


@router.get("/api/schedule", summary="The scheduler's state: running, pending, next cron times")
def schedule_status(request: Request) -> JSONResponse:
    service = _scheduler(request)
    if service is None:
        return JSONResponse({"scheduler": False, "pipelines": []})
    return JSONResponse({"scheduler": True, "pipelines": service.scheduler.status()})


@router.get("/schedule/status", include_in_schema=False)
def schedule_fragment(request: Request) -> HTMLResponse:
    service = _scheduler(request)
    if service is None:
        return HTMLResponse(
            '<p class="note">No scheduler in this process (<code>headwater serve '
            "--no-schedule</code>, or no <code>schedule.triggers</code>): runs start from "
            "<code>headwater run</code> or <code>headwater schedule</code>.</p>"
        )
    name = project_of(request).config.name
    rows = [p for p in service.scheduler.status() if p["pipeline"] == name]
    parts = []
    for p in rows:
        running = p["running"]
        state = (
            f"running ({escape(running['trigger'])}, {running['seconds']} s)" if running else "idle"
        )
        pending = f"; next run queued: {escape(', '.join(p['pending']))}" if p["pending"] else ""
        cron = f"; next cron {escape(p['next_cron'][0])}" if p["next_cron"] else ""
        parts.append(f"<span>Scheduler: {state}{pending}{cron}</span>")
    button = (
        '<button hx-post="/runs/trigger" hx-target="#trigger-result" hx-swap="innerHTML">'
        'Run now</button> <span id="trigger-result"></span>'
    )
    return HTMLResponse(f'<p class="note">{"".join(parts)} {button}</p>')


@router.post("/runs/trigger", include_in_schema=False)
def trigger_run(request: Request, hx_request: str | None = Header(default=None)) -> Response:
    if hx_request != "true":
        return _error(
            403, "POST /runs/trigger needs the HX-Request header (use the Run now button)"
        )
    service = _scheduler(request)
    if service is None:
        return _error(409, "no scheduler runs in this process: use `headwater run`")
    service.scheduler.fire(project_of(request).config.name, "manual")
    return HTMLResponse("run requested", status_code=202)
