"""`headwater serve`: one FastAPI process for dashboards, run monitoring, the lake browser,
the SQL console, Prometheus metrics and a JSON API.

Pages are rendered on the server (Jinja2) and made interactive with htmx; charts are
Vega-Lite. Every asset is vendored under `static/` (no CDN). Each area is one module with
its own `router`; this module only assembles them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from headwater.project import Project
from headwater.serve import api, auth, console, dashboards_web, lake_web, metrics, pages
from headwater.serve.web import STATIC_DIR

__all__ = ["LOOPBACK_HOSTS", "create_app"]


LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def create_app(
    project: Project, *, token: str | None = None, allowed_hosts: list[str] | None = None
) -> FastAPI:
    """The whole web application for one project.

    With `token`, every route but `/health` and `/login` needs it (`Authorization: Bearer
    <token>` or the login cookie). With `allowed_hosts`, requests naming another Host are
    refused: `headwater serve` on 127.0.0.1 without a token allows only loopback names, so a
    web page cannot reach the server through DNS rebinding.
    """
    app = FastAPI(
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
    auth.install(app, token)
    app.mount("/static", StaticFiles(directory=Path(STATIC_DIR)), name="static")
    for module in (pages, dashboards_web, console, lake_web, api, metrics):
        app.include_router(module.router)
    return app
