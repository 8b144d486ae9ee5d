"""`headwater serve` and `headwater report`: the web application and dashboard images."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from headwater.config_schedule import runs_unattended
from headwater.errors import ConfigError, HeadwaterError

TOKEN_ENV = "HEADWATER_SERVE_TOKEN"  # noqa: S105  (the variable's name, not a secret)

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Project folder (holds headwater.yaml).")
]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    project: ProjectOpt = Path(),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule/--no-schedule",
            help="Run the project's schedule.triggers (and alert deadlines) in this process.",
        ),
    ] = True,
) -> None:
    """Serve dashboards, runs, the lake browser and the SQL console over HTTP; run the
    project on its triggers."""
    from headwater.cli import _fail, out
    from headwater.project import Project

    try:
        proj = Project.load(project)
        token = os.environ.get(TOKEN_ENV) or None
        if not _loopback(host) and token is None:
            raise ConfigError(
                f"--host {host} is reachable from other machines: set {TOKEN_ENV} to an access "
                "token (UI login and 'Authorization: Bearer'), or bind to 127.0.0.1"
            )
    except HeadwaterError as exc:
        raise _fail(exc) from None
    import uvicorn

    from headwater.serve.app import LOOPBACK_HOSTS, create_app

    service = None
    if schedule and runs_unattended(proj.config.schedule, proj.config.alerts):
        from headwater.schedule.service import Service

        service = Service([proj])
    # Without a token (loopback only), refuse other Host names: no DNS rebinding.
    app = create_app(
        proj, token=token, allowed_hosts=None if token else LOOPBACK_HOSTS, scheduler=service
    )
    triggers = len(proj.config.schedule.triggers) if service else 0
    scheduled = f", {triggers} trigger(s) scheduled" if triggers else ""
    out.print(f"serving {proj.config.name} on http://{host}:{port}/{scheduled} (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def report(
    dashboard: Annotated[
        str, typer.Option("--dashboard", "-d", help="Dashboard name (its file stem).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .png or .pdf.")],
    project: ProjectOpt = Path(),
    width: Annotated[int, typer.Option(help="Page width in pixels.")] = 1400,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every panel to draw.")] = 60.0,
) -> None:
    """Render a dashboard to a PNG or PDF (headless Chromium), for email or slides."""
    from headwater.cli import _fail
    from headwater.cli import out as console
    from headwater.project import Project

    try:
        proj = Project.load(project)
        from headwater.serve.report import render_report

        written = render_report(proj, dashboard, out, width=width, timeout=timeout)
    except HeadwaterError as exc:
        raise _fail(exc) from None
    console.print(f"wrote {written} ({written.stat().st_size:,} bytes)")
