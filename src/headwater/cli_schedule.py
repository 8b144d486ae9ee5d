"""`headwater schedule`: the scheduler without the web UI, for servers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def schedule(
    project: Annotated[
        list[Path] | None,
        typer.Option(
            "--project",
            "-p",
            help="Project folder (repeatable: one scheduler for several projects).",
        ),
    ] = None,
) -> None:
    """Run projects on their triggers (cron, file arrival, after another project) until stopped."""
    raise typer.Exit(1)
