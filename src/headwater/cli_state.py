"""`headwater state show|set|reset`: the watermarks of incremental sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from headwater.errors import ConfigError, HeadwaterError

state_app = typer.Typer(
    name="state",
    help="Show, set or reset the watermarks of incremental (sql) sources.",
    no_args_is_help=True,
)

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Project folder (holds headwater.yaml).")
]
SourceArg = Annotated[str, typer.Argument(help="A sql source of the project.")]


def _open(project: Path, source: str | None) -> object:
    from headwater.config import SqlSource
    from headwater.project import Project
    from headwater.state.db import StateDB

    proj = Project.load(project)
    if source is not None:
        cfg = proj.config.sources.get(source)
        if not isinstance(cfg, SqlSource):
            sql = [n for n, c in proj.config.sources.items() if isinstance(c, SqlSource)]
            raise ConfigError(
                f"{source!r} is not a sql source of this project (sql sources: "
                f"{', '.join(sql) or 'none'})"
            )
    return StateDB.open(proj.state_url)


@state_app.command("show")
def show(
    project: ProjectOpt = Path(),
    source: Annotated[str | None, typer.Argument(help="Only this source.")] = None,
) -> None:
    """Print every watermark: source, table, value, when it last moved."""
    from headwater.cli import _fail, out
    from headwater.state import watermarks
    from headwater.state.db import StateDB

    try:
        db = _open(project, source)
        assert isinstance(db, StateDB)
        try:
            marks = watermarks.get_all(db, source)
        finally:
            db.dispose()
    except HeadwaterError as exc:
        raise _fail(exc) from None
    table = Table("source", "table", "watermark", "updated at (UTC)")
    for m in marks:
        table.add_row(m.source, m.table, m.value, f"{m.updated_at:%Y-%m-%d %H:%M:%S}")
    out.print(table if marks else "no watermarks yet (no sql source has run)")


@state_app.command("set")
def set_(
    source: SourceArg,
    table: Annotated[str, typer.Argument(help="The source table.")],
    value: Annotated[str, typer.Argument(help="New watermark: a timestamp or a number.")],
    project: ProjectOpt = Path(),
) -> None:
    """Set a table's watermark: the next run extracts rows from there (minus the overlap)."""
    from headwater.cli import _fail, out
    from headwater.state import watermarks
    from headwater.state.db import StateDB

    try:
        db = _open(project, source)
        assert isinstance(db, StateDB)
        try:
            watermarks.put(db, source, table, value)
        finally:
            db.dispose()
    except HeadwaterError as exc:
        raise _fail(exc) from None
    out.print(f"{source}.{table}: watermark set to {value}", highlight=False)


@state_app.command("reset")
def reset(
    source: SourceArg,
    table: Annotated[str | None, typer.Argument(help="Only this table.")] = None,
    project: ProjectOpt = Path(),
) -> None:
    """Forget watermarks: the next run extracts the table (or every table) in full."""
    from headwater.cli import _fail, out
    from headwater.state import watermarks
    from headwater.state.db import StateDB

    try:
        db = _open(project, source)
        assert isinstance(db, StateDB)
        try:
            count = watermarks.reset(db, source, table)
        finally:
            db.dispose()
    except HeadwaterError as exc:
        raise _fail(exc) from None
    what = f"{source}.{table}" if table else source
    out.print(f"{what}: {count} watermark(s) reset", highlight=False)
