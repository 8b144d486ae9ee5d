"""`headwater generate TEMPLATE`: sample input for a template (files, or a source database)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer

from headwater.errors import ConfigError, HeadwaterError

DEFAULT_START = {"cafe": "2021-08-25", "totesys": "2022-11-03", "careplus": "2025-07-01"}


def generate(
    template: Annotated[
        str,
        typer.Argument(help="Which template's data to generate: cafe, totesys or careplus."),
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="cafe: folder to write files to.")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="totesys, careplus: database URL (postgresql://... or mysql://...)."
        ),
    ] = None,
    logs: Annotated[
        Path | None,
        typer.Option("--logs", help="careplus: folder to write daily log files to."),
    ] = None,
    rows: Annotated[
        int | None,
        typer.Option(
            "--rows",
            help="careplus: ticket rows to add (--db; default 810) or log records in all "
            "(--logs; default 85 a day).",
        ),
    ] = None,
    from_dump: Annotated[
        Path | None,
        typer.Option(
            "--from-dump",
            help="careplus --db: load the course's dump (.sql or .csv) instead of generating.",
        ),
    ] = None,
    branches: Annotated[
        int, typer.Option(help="cafe: number of branches (one file per branch per day).")
    ] = 10,
    days: Annotated[int, typer.Option(help="Number of consecutive days.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 1,
    start: Annotated[
        str | None,
        typer.Option(
            help="First day, YYYY-MM-DD (cafe: 2021-08-25, totesys: 2022-11-03, "
            "careplus: 2025-07-01)."
        ),
    ] = None,
    per_day: Annotated[
        int, typer.Option("--per-day", help="cafe: mean transactions per branch per day.")
    ] = 300,
    scale: Annotated[
        float, typer.Option(help="totesys: orders per weekday as a multiple of 22 + 9.")
    ] = 1.0,
    drop: Annotated[
        bool,
        typer.Option(
            "--drop",
            help="totesys: drop and recreate the 11 tables first; careplus: support_tickets.",
        ),
    ] = False,
    change_batch: Annotated[
        bool,
        typer.Option(
            "--change-batch", help="totesys: replay a dimension change (like 2024-11-20) now."
        ),
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="totesys: keep adding orders and paying invoices until interrupted."
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="totesys --live: seconds between ticks.")
    ] = 10.0,
) -> None:
    """Generate sample input for a template: cafe files, a totesys source database, or
    careplus tickets (a database table) and log files."""
    from headwater.cli import _fail

    try:
        first = dt.date.fromisoformat(start or DEFAULT_START.get(template, "2021-08-25"))
    except ValueError:
        raise _fail(ConfigError(f"--start: got {start!r}, expected a date YYYY-MM-DD")) from None
    try:
        if template == "cafe":
            if out_dir is None:
                raise ConfigError("generate cafe needs --out DIR (the folder to write files to)")
            _cafe(out_dir, branches, days, seed, first, per_day)
        elif template == "totesys":
            if db is None:
                raise ConfigError(
                    "generate totesys needs --db URL (postgresql://... or mysql://...)"
                )
            _totesys(db, seed, first, days, scale, drop, change_batch, live, interval)
        elif template == "careplus":
            if db is None and logs is None:
                raise ConfigError(
                    "generate careplus needs --db URL (the support_tickets table) "
                    "and/or --logs DIR (daily log files)"
                )
            if from_dump is not None and db is None:
                raise ConfigError("--from-dump needs --db URL (the database to load it into)")
            if db is not None:
                _careplus_db(db, rows, from_dump, days, seed, first, drop)
            if logs is not None:
                _careplus_logs(logs, rows, days, seed, first)
        else:
            raise ConfigError(
                f"no generator for template {template!r} (expected: cafe, totesys, careplus)"
            )
    except HeadwaterError as exc:
        raise _fail(exc) from None


def _cafe(out_dir: Path, branches: int, days: int, seed: int, first: dt.date, per_day: int) -> None:
    from headwater.cli import _progress, out
    from headwater.templates.cafe.generator import generate as generate_cafe

    try:
        with _progress(quiet=False) as progress:
            task = progress.add_task("generate files", total=branches * days)
            result = generate_cafe(
                out_dir,
                branches=branches,
                days=days,
                seed=seed,
                start=first,
                per_day=per_day,
                progress=lambda n: progress.advance(task, n),
            )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out.print(
        f"wrote {result.files} files to {out_dir}: {result.transactions:,} transactions, "
        f"{result.items:,} items, revenue {result.revenue_pence / 100:,.2f}"
    )


def _counts(rows: dict[str, int]) -> str:
    return ", ".join(f"{table} {n:,}" for table, n in rows.items() if n) or "nothing"


def _totesys(
    db: str,
    seed: int,
    first: dt.date,
    days: int,
    scale: float,
    drop: bool,
    change_batch: bool,
    live: bool,
    interval: float,
) -> None:
    from headwater.cli import out
    from headwater.templates.totesys.simulator import apply_change_batch, live_step, simulate
    from headwater.templates.totesys.source_db import create_schema
    from headwater.urls import redact

    create_schema(db, drop=drop)
    if change_batch:
        now = dt.datetime.now().replace(microsecond=0)
        out.print(f"change batch at {now}: {_counts(apply_change_batch(db, at=now))}")
        return
    if days > 0:
        rows = simulate(db, seed=seed, start=first, days=days, scale=scale)
        out.print(f"{redact(db)}: {_counts(rows)}", highlight=False)
    if live:
        out.print(f"live mode on {redact(db)}: a tick every {interval:g}s; Ctrl-C stops")
        tick = 0
        try:
            while True:
                now = dt.datetime.now().replace(microsecond=0)
                rows = live_step(db, now=now, rng_seed=seed * 1_000_003 + tick)
                out.print(f"{now}: {_counts(rows)}", highlight=False)
                tick += 1
                time.sleep(interval)
        except KeyboardInterrupt:
            out.print("live mode stopped")


def _careplus_db(
    db: str,
    rows: int | None,
    from_dump: Path | None,
    days: int,
    seed: int,
    first: dt.date,
    drop: bool,
) -> None:
    from headwater.cli import out
    from headwater.templates.careplus.source_db import create_table, load_rows
    from headwater.templates.careplus.tickets import TABLE, generate_tickets, read_dump
    from headwater.urls import redact

    if from_dump is not None:
        data = read_dump(from_dump)
        what = f"from {from_dump.name}"
    else:
        try:
            data = generate_tickets(
                810 if rows is None else rows, days=days, seed=seed, start=first
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        what = f"generated over {days} days from {first}"
    create_table(db, drop=drop)
    count = load_rows(db, data)
    out.print(f"{redact(db)}: {count:,} rows added to {TABLE} ({what})", highlight=False)


def _careplus_logs(out_dir: Path, rows: int | None, days: int, seed: int, first: dt.date) -> None:
    from headwater.cli import out
    from headwater.templates.careplus.logs import generate_logs

    try:
        result = generate_logs(out_dir, days=days, seed=seed, start=first, records=rows)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out.print(
        f"wrote {result.files} log files to {out_dir}: {result.records:,} records "
        f"({result.duplicates:,} exact duplicates, {result.negative:,} negative response "
        f"times, {result.errors:,} errors)"
    )
