"""`headwater schedule`: the scheduler without the web UI, for servers."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from headwater.config_schedule import runs_unattended
from headwater.errors import ConfigError, HeadwaterError


def schedule(
    project: Annotated[
        list[Path] | None,
        typer.Option(
            "--project",
            "-p",
            help="Project folder (repeatable: one scheduler for several projects).",
        ),
    ] = None,
    grace: Annotated[
        float,
        typer.Option(help="On stop, seconds a running run may take to finish before it is killed."),
    ] = 60.0,
) -> None:
    """Run projects on their triggers (cron, file arrival, after another project) until stopped."""
    from headwater.cli import _fail, out
    from headwater.project import Project

    try:
        projects = [Project.load(p) for p in project or [Path()]]
        names = [p.config.name for p in projects]
        if len(set(names)) != len(names):
            raise ConfigError(f"two projects have the same name: {', '.join(names)}")
        idle = [
            p.config.name
            for p in projects
            if not runs_unattended(p.config.schedule, p.config.alerts)
        ]
        if len(idle) == len(projects):
            raise ConfigError(
                f"{', '.join(idle)}: no schedule.triggers (nor alerts.staleness or "
                "alerts.daily_summary) in headwater.yaml: nothing to do (see docs/schedule.md)"
            )
    except HeadwaterError as exc:
        raise _fail(exc) from None
    from headwater.schedule.service import Service

    service = Service(projects)
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.start()
    out.print(f"scheduling {', '.join(names)} (Ctrl-C or SIGTERM stops)")
    # Wake up now and then: a signal the kernel hands to another thread runs its Python
    # handler only when the main thread runs bytecode, which a wait without a timeout
    # never does (the scheduler would then sleep through SIGTERM).
    while not stopping.wait(0.5):
        pass
    out.print(f"stopping: a running run has {grace:g} s to finish")
    service.stop(grace)
