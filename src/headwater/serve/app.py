"""`headwater serve`: one FastAPI process for dashboards, run monitoring, the lake browser,
the SQL console, Prometheus metrics and a JSON API.

Pages are rendered on the server (Jinja2) and made interactive with htmx; charts are
Vega-Lite. Every asset is vendored under `static/` (no CDN). Each area is one module with
its own `router`; this module only assembles them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from headwater.errors import HeadwaterError
from headwater.lake.store import DUCKDB_SETTINGS
from headwater.project import Project
from headwater.serve import (
    api,
    auth,
    console,
    dashboards_web,
    lake_web,
    metrics,
    pages,
    schedule_web,
)
from headwater.serve.dashboards import load_dashboards
from headwater.serve.web import STATIC_DIR, templates

if TYPE_CHECKING:
    from headwater.schedule.service import Service

__all__ = ["LOOPBACK_HOSTS", "create_app"]


LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def create_app(
    project: Project,
    *,
    token: str | None = None,
    allowed_hosts: list[str] | None = None,
    scheduler: Service | None = None,
) -> FastAPI:
    """The whole web application for one project.

    With `token`, every route but `/health` and `/login` needs it (`Authorization: Bearer
    <token>` or the login cookie). With `allowed_hosts`, requests naming another Host are
    refused: `headwater serve` on 127.0.0.1 without a token allows only loopback names, so a
    web page cannot reach the server through DNS rebinding. With `scheduler`, the app starts
    it when it starts serving and stops it when it stops.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if scheduler is not None:
            await run_in_threadpool(scheduler.start)
        try:
            yield
        finally:
            if scheduler is not None:
                await run_in_threadpool(scheduler.stop)

    app = FastAPI(
        lifespan=lifespan,
        title=f"headwater: {project.config.name}",
        description="Runs, tables, dashboards and SQL over a headwater project.",
        version="1",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; /openapi.json stays
        redoc_url=None,
    )
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.state.project = project
    app.state.token = token
    app.state.scheduler = scheduler
    auth.install(app, token)
    app.mount("/static", StaticFiles(directory=Path(STATIC_DIR)), name="static")
    for module in (pages, dashboards_web, console, lake_web, api, metrics, schedule_web):
        app.include_router(module.router)
    warm_up(project)
    return app


def warm_up(project: Project) -> None:
    """Pay one-time costs at startup instead of in the first request: DuckDB's first query
    with parameters (it imports its Python converters), parsing the dashboards, compiling
    the page templates. Problems are left for the pages to report."""
    conn = duckdb.connect(config=DUCKDB_SETTINGS)
    try:
        conn.execute("SELECT $s::VARCHAR, $d::DATE", {"s": "x", "d": dt.date(2000, 1, 1)})
        conn.fetchall()
    finally:
        conn.close()
    with contextlib.suppress(HeadwaterError):
        load_dashboards(project)
    for name in ("dashboard.html", "panel.html", "runs.html"):
        templates.get_template(name)
