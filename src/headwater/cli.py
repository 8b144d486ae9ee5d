"""The `headwater` command. Commands only parse arguments and call down; output is drawn here.

Exit codes: 0 success; 1 the run (or command) failed; 2 configuration error
(nothing was touched).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from headwater import __version__
from headwater.errors import ConfigError, HeadwaterError

app = typer.Typer(
    name="headwater",
    help="Sources -> immutable lake -> SQL models with quality checks -> warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
# Piped output (CI logs, `make demo`) gets room for tables instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 120)

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Project folder (holds headwater.yaml).")
]


def _fail(exc: HeadwaterError) -> typer.Exit:
    label = "configuration error" if isinstance(exc, ConfigError) else "error"
    err.print(f"[bold red]{label}:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        out.print(f"headwater {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what happens, to stderr.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    template: Annotated[
        str, typer.Option("--template", "-t", help="Template to start from.")
    ] = "cafe",
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that is not empty.")
    ] = False,
    lake: Annotated[
        str | None,
        typer.Option("--lake", help="Lake URL: a local folder or s3://bucket/prefix."),
    ] = None,
    warehouse: Annotated[
        str | None,
        typer.Option(
            "--warehouse",
            help="Warehouse: a DuckDB file path, postgresql://... or redshift://...",
        ),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="State database: sqlite:///path or postgresql://..."),
    ] = None,
) -> None:
    """Create a project folder from a template: headwater.yaml, models/, dashboards/, inbox/."""
    from headwater.templates import init_project
    from headwater.templates.settings import Servers, apply_servers

    env = directory / ".env"
    try:
        written = init_project(directory, template, force=force)
        if not env.exists():
            import secrets

            env.write_text(f"HEADWATER_PII_SECRET={secrets.token_urlsafe(32)}\n", encoding="utf-8")
            env.chmod(0o600)
        changes = apply_servers(directory, Servers(lake=lake, warehouse=warehouse, state=state))
    except HeadwaterError as exc:
        raise _fail(exc) from None
    out.print(
        f"created project [bold]{directory}[/] from template [bold]{template}[/] "
        f"({len(written)} files)"
    )
    out.print(f"  a random PII secret was written to {env} (keep it; it is git-ignored)")
    for change in changes:
        out.print(f"  {change}", highlight=False)
    out.print(f"  next: put files in {directory / 'inbox'}, then `headwater run -p {directory}`")


class _RichTasks:
    """The run's progress protocol drawn with Rich on stderr."""

    def __init__(self, progress: RichProgress) -> None:
        self.progress = progress

    def task(self, description: str, total: int | None) -> _RichTask:
        return _RichTask(self.progress, description, total)

    def note(self, message: str) -> None:
        self.progress.console.print(message)


class _RichTask:
    def __init__(self, progress: RichProgress, description: str, total: int | None) -> None:
        self.progress = progress
        self.id = progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        self.progress.advance(self.id, amount)

    def __enter__(self) -> _RichTask:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = self.progress.tasks[self.id] if self.id < len(self.progress.tasks) else None
        if task is not None and task.total is None:
            self.progress.update(self.id, total=1, completed=1)


def _progress(quiet: bool) -> RichProgress:
    return RichProgress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=False,
    )


@app.command()
def run(
    project: ProjectOpt = Path(),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run summary as JSON on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    full_refresh: Annotated[
        list[str] | None,
        typer.Option(
            "--full-refresh",
            help="Extract this sql-source table whole, ignoring its watermark (repeatable).",
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Extract only this source (repeatable); pending batches of others still run.",
        ),
    ] = None,
) -> None:
    """Run the pipeline once: extract -> raw zone -> models -> checks -> warehouse."""
    from headwater.project import Project
    from headwater.runs.pipeline import run as run_pipeline

    proj = None
    try:
        proj = Project.load(project)
        _log_to_file(proj)
        with _progress(quiet) as progress:
            summary = run_pipeline(
                proj,
                trigger="manual",
                progress=_RichTasks(progress),
                full_refresh=frozenset(full_refresh or ()),
                sources=frozenset(source) if source else None,
            )
    except HeadwaterError as exc:
        kind = "config_error" if isinstance(exc, ConfigError) else "failed"
        if as_json:
            print(json.dumps({"status": kind, "error": str(exc)}))
        if proj is not None:
            _alert(proj, {"status": kind, "error": str(exc), "transient": exc.transient})
        raise _fail(exc) from None
    except Exception as exc:  # a bug: say so in the machine-readable output too
        if as_json:
            print(json.dumps({"status": "internal_error", "error": repr(exc)}))
        raise
    data = summary.to_json()
    _alert(proj, data)
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        _print_summary(data)
    if not summary.ok:
        err.print(
            f"[bold red]run {summary.run_id} failed:[/] {escape(str(summary.error))}",
            highlight=False,
        )
        raise typer.Exit(1)


def _log_to_file(proj: Any) -> None:
    """The project's JSON-lines log file (`logging.*`); the terminal keeps its own output."""
    from headwater.observe import logs

    logs.configure_project(proj, terminal=logging.getLogger().getEffectiveLevel() <= logging.INFO)


def _alert(proj: Any, data: dict[str, Any]) -> None:
    """Alerts for this run's outcome (`alerts.*`); they never change the exit code."""
    from headwater import alerts

    for delivery in alerts.after_run(proj, data):
        if not delivery.ok:
            why = escape(str(delivery.error))
            err.print(f"[yellow]alert not sent[/] ({delivery.channel}): {why}", highlight=False)


def _print_summary(data: dict[str, Any]) -> None:
    out.print(f"run {data['run_id']} [bold]{data['status']}[/] in {data['duration_seconds']}s")
    if data.get("only_sources") is not None:
        out.print(f"  extracted only: {', '.join(data['only_sources'])}", highlight=False)
    for a in data.get("attempts", []):
        then = f", waited {a['waited_seconds']}s" if a["waited_seconds"] else ""
        out.print(
            f"  {a['step']} {a['name']}: attempt {a['attempt']} failed{then}: {a['error']}",
            highlight=False,
            markup=False,
        )
    for name, s in data["sources"].items():
        out.print(
            f"  source {name}: {s['files_found']} files found, {s['files_new']} new, "
            f"{s['files_unchanged']} loaded before, {s['files_duplicate']} duplicate content; "
            f"{s['rows_read']:,} rows read, "
            f"{s['rows_loaded']:,} loaded, {s['rows_quarantined']:,} quarantined"
        )
        for reason, n in sorted(s["quarantined_by_reason"].items()):
            out.print(f"    quarantined {n:,}: {reason}")
    for name, m in data["models"].items():
        line = f"  model {name} [{m['materialized']}]: {m['status']}"
        if m["rows_written"]:
            line += f", {m['rows_written']:,} rows"
        if m["rows_quarantined"]:
            line += f", {m['rows_quarantined']:,} quarantined"
        warned = [c for c in m["checks"] if c["failed"] and c["severity"] == "warn"]
        for c in warned:
            line += f"; warning {c['name']}: {c['failed']} rows"
        if m["error"]:
            line += f" ({m['error']})"
        out.print(line, highlight=False, markup=False)
    wh = data["warehouse"]
    out.print(f"  warehouse {wh['target']} {wh['location']}: {wh['status']}", highlight=False)
    for table, t in wh["tables"].items():
        out.print(
            f"    {table}: +{t['rows_loaded']:,} rows ({t['mode']}), "
            f"{t['rows_in_table']:,} in table"
        )


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SQL query (DuckDB dialect).")],
    project: ProjectOpt = Path(),
    lake: Annotated[
        bool,
        typer.Option("--lake", help="Query the lake's processed zone instead of the warehouse."),
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Output: table, csv or json.")
    ] = "table",
    explain: Annotated[
        bool,
        typer.Option("--explain", help="With --lake: print the files and bytes it would scan."),
    ] = False,
    max_scan: Annotated[
        str | None,
        typer.Option("--max-scan", help="With --lake: refuse to scan more (500MB, 10GB)."),
    ] = None,
) -> None:
    """Run read-only SQL over the warehouse (default) or the lake (--lake)."""
    from headwater.project import Project
    from headwater.serve.query import connect_warehouse, lake_query, run_query
    from headwater.serve.scan import parse_size

    if fmt not in ("table", "csv", "json"):
        raise _fail(ConfigError(f"--format: got {fmt!r}, expected table, csv or json"))
    try:
        if (explain or max_scan is not None) and not lake:
            raise ConfigError("--explain and --max-scan plan reads of the lake: add --lake")
        limit = None if max_scan is None else parse_size(max_scan)
        proj = Project.load(project)
        if not lake:
            with connect_warehouse(proj) as conn:
                _print_result(run_query(conn, sql), fmt)
            return
        with lake_query(proj, sql) as planned:
            if explain:
                _print_plan(planned.plan, fmt)
                return
            if limit is not None:
                planned.check_scan(limit)
            planned.build()
            _print_result(run_query(planned.conn, sql), fmt)
    except HeadwaterError as exc:
        raise _fail(exc) from None


def _print_plan(plan: Any, fmt: str) -> None:
    """`--explain`: per relation, the files and bytes to scan of the files it has."""
    from headwater.serve.scan import human

    if fmt == "json":
        sys.stdout.write(json.dumps(plan.to_dict(), indent=1) + "\n")
        return
    if fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["relation", "kind", "file", "bytes"])
        for r in plan.relations:
            writer.writerows([r.name, r.kind, f.uri, f.size] for f in r.files)
        return
    table = Table("relation", "kind", "files", "bytes", "pruned by", show_lines=False)
    for r in plan.relations:
        table.add_row(
            escape(r.name),
            r.kind,
            "?" if r.unknown else f"{len(r.files):,} of {r.total_files:,}",
            "?" if r.unknown else f"{human(r.bytes)} of {human(r.total_bytes)}",
            escape(r.unknown or r.pruned_by or ""),
        )
    out.print(table)
    total = sum(r.total_files for r in plan.relations)
    out.print(
        f"scan: {plan.files:,} of {total:,} files, {human(plan.bytes)} ({plan.bytes:,} bytes)"
    )
    for note in plan.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    for r in plan.relations:
        for f in r.files[:20]:
            line = f"  {r.name}: {f.uri} ({f.size:,} bytes)"
            out.print(line, highlight=False, markup=False, soft_wrap=True)
        if len(r.files) > 20:
            out.print(f"  {r.name}: {len(r.files) - 20:,} more files (-f csv lists them all)")


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _print_result(reader: Any, fmt: str) -> None:
    import pyarrow.csv as pacsv

    if fmt == "csv":
        with pacsv.CSVWriter(sys.stdout.buffer, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        sys.stdout.flush()
        return
    if fmt == "json":
        sys.stdout.write("[")
        first = True
        for batch in reader:
            for row in batch.to_pylist():
                sys.stdout.write(("" if first else ",\n ") + json.dumps(row, default=_json_value))
                first = False
        sys.stdout.write("]\n")
        return
    table = Table(*reader.schema.names, show_lines=False)
    shown = 0
    limit = 1000
    total = 0
    for batch in reader:
        total += batch.num_rows
        for row in batch.to_pylist():
            if shown < limit:
                table.add_row(*("NULL" if v is None else str(v) for v in row.values()))
                shown += 1
    out.print(table)
    out.print(
        f"{total:,} row{'s' if total != 1 else ''}"
        + (f" (first {limit} shown)" if total > limit else "")
    )


@app.command()
def status(
    project: ProjectOpt = Path(),
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    limit: Annotated[int, typer.Option(help="How many recent runs to show.")] = 10,
) -> None:
    """Last runs (rows in/out/quarantined) and freshness per source."""
    from headwater.observe.status import status_report
    from headwater.project import Project

    try:
        report = status_report(Project.load(project), limit)
    except HeadwaterError as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    runs = Table(
        "run",
        "status",
        "started",
        "seconds",
        "new files",
        "rows read",
        "loaded",
        "quarantined",
        "error",
    )
    for r in report["runs"]:
        runs.add_row(
            str(r["run_id"]),
            r["status"],
            str(r["started_at"] or "")[:19].replace("T", " "),
            str(r["duration_seconds"]),
            str(r["files_new"]),
            f"{r['rows_read']:,}",
            f"{r['rows_loaded']:,}",
            f"{r['rows_quarantined']:,}",
            (r["error"] or "")[:60],
        )
    out.print(runs if report["runs"] else "no runs yet")
    fresh = Table("source", "files", "last file landed", "age")
    for name, f in report["sources"].items():
        age = f["age_seconds"]
        fresh.add_row(
            name, str(f["files"]), str(f["last_file_landed_at"]), "-" if age is None else _age(age)
        )
    out.print(fresh)


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


@app.command()
def check(project: ProjectOpt = Path()) -> None:
    """Validate the project file, models and dashboards, print the DAG; run nothing."""
    from headwater.project import Project
    from headwater.runs.plan import plan
    from headwater.serve.dashboards import validate_dashboards

    try:
        the_plan = plan(Project.load(project))
        problems = validate_dashboards(the_plan.project)  # a bad file is a ConfigError
    except HeadwaterError as exc:
        raise _fail(exc) from None
    for problem in problems:
        err.print(f"[bold red]dashboard:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)
    out.print(
        f"project [bold]{the_plan.project.config.name}[/]: configuration, models and "
        "dashboards are valid"
    )
    for line in the_plan.dag.lines():
        out.print(f"  {line}", highlight=False, markup=False)
    from headwater.config_schedule import describe

    config = the_plan.project.config
    for line in describe(config.schedule, config.alerts):
        out.print(f"  {line}", highlight=False, markup=False)


from headwater.cli_generate import generate  # noqa: E402  (uses the helpers above)
from headwater.cli_schedule import schedule  # noqa: E402
from headwater.cli_serve import report, serve  # noqa: E402
from headwater.cli_state import state_app  # noqa: E402

app.command()(generate)
app.command()(serve)
app.command()(report)
app.command()(schedule)
app.add_typer(state_app)


def main() -> None:
    app()
