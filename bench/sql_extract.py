"""Benchmark of the `sql` source: a PostgreSQL table extracted to the raw zone.

Fills a scratch database `hw_bench_sql` with the totesys simulator until
`sales_order` holds about N rows (dropped at the end unless --keep-db), and
times, in the same run, on the same table:

- headwater: `run()` of a totesys project whose source extracts `sales_order`
  alone (model `fact_sales_order`, DuckDB warehouse). The headline figure is
  the run's extract step (catalog, DuckDB's postgres scanner writing Parquet,
  hash, landing in the raw zone, ledger, watermark) from the state database's
  `hw_steps`; the whole run is reported beside it. The extract step is also
  timed alone: `SqlSourceReader.plan()`, `.connect()`, `.extract()`.
- the floor: the driver alone writing Parquet. ConnectorX into Arrow, then
  `pyarrow.parquet.write_table` (one connection, and partitioned on the key);
  psycopg's binary `COPY ... TO STDOUT` into a file is a second reference line
  (the raw driver, no Parquet).
- the common way: `pandas.read_sql` over a SQLAlchemy engine, then
  `DataFrame.to_parquet`; on the whole table if that is projected to take
  under 120 s, else on a sample, extrapolated.
- incremental: after each full run, 1% of the rows change (`units_sold + 1`,
  `last_updated` now) and the project runs again; its time is compared with
  the full run's, and the lake and the warehouse must gain exactly the
  changed versions. The changed rows get their old values back before the
  next try (then `VACUUM FULL` and `VACUUM (FREEZE, ANALYZE)`), so every try
  starts from the same table as the first one after the fill. This is
  measured twice: first as the totesys schema comes (no index on
  `last_updated`: PostgreSQL reads the whole table to find the changed rows),
  then after `CREATE INDEX ON sales_order (last_updated)`, the index
  docs/sources/sql.md recommends for a cursor column. Both are printed.

Results are printed as markdown tables and written to bench/out/sql_extract.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import connectorx
import duckdb
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from benchkit import environment as base_environment
from benchkit import log, verdict
from benchkit import print_profile as print_profile_
from headwater.config import SqlSource
from headwater.lake.tables import Tables, scan_sql
from headwater.project import Project
from headwater.runs import extract as extract_stage
from headwater.runs.pipeline import run as run_pipeline
from headwater.runs.summary import RunSummary
from headwater.sources.sql import SqlSourceReader
from headwater.templates import init_project
from headwater.templates.totesys import simulator
from headwater.templates.totesys.simulator import SALES_PER_DAY
from headwater.templates.totesys.source_db import create_schema

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
WORK = OUT / "sql_extract"
RESULTS = OUT / "sql_extract.json"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "hw_bench_sql"
BENCH_URL = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
TABLE = "sales_order"
KEY = "sales_order_id"
CURSOR = "last_updated"
INDEX = f"hw_bench_{TABLE}_{CURSOR}"  # the index on the cursor, made for the second half
ORIGINAL = "hw_bench_original"  # the changed rows' values before the change, to put back
SOURCE = "totesys"
MODEL = "fact_sales_order"
SELECT = f"SELECT * FROM {TABLE}"

SEED = 1
START = dt.date(2023, 1, 2)  # a Monday
DAYS = 365
CHANGED_SHARE = 0.01
COMMON_SAMPLE = 100_000  # rows of the probe that decides whether the common way runs whole
COMMON_MAX_SECONDS = 120.0

TARGET_VS_FLOOR = 0.7  # headwater extract rows/s over the floor's, at least
TARGET_VS_COMMON = 5.0  # headwater extract rows/s over the common way's, at least
TARGET_INCREMENTAL = 0.05  # incremental run seconds over full run seconds, below

T = TypeVar("T")


# --------------------------------------------------------------------------- timing


def _postmaster_pid() -> int | None:
    """The PostgreSQL server's main process, if it runs on this machine and /proc shows it."""
    try:
        with psycopg.connect(BENCH_URL) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return _stat(int(row[0]))[0]
    except (OSError, psycopg.Error, IndexError, ValueError):
        return None


def _stat(pid: int) -> tuple[int, int]:
    """(parent pid, CPU ticks of the process and of its reaped children) from /proc."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), sum(int(x) for x in fields[11:15])


class ServerClock:
    """CPU seconds of the local PostgreSQL server: the postmaster with its reaped children
    (backends that exited) plus the live backends. Counts every database on the server."""

    def __init__(self) -> None:
        self.postmaster = _postmaster_pid()
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> float | None:
        if self.postmaster is None:
            return None
        ticks = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                pid = int(entry.name)
                parent, used = _stat(pid)
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile: its time is in the postmaster's children
            if pid == self.postmaster or parent == self.postmaster:
                ticks += used
        return ticks / self.tick


@dataclass
class Span:
    seconds: float
    cpu_seconds: float  # this process, all threads
    server_cpu_seconds: float | None  # the PostgreSQL server, all processes


def timed(clock: ServerClock, fn: Callable[[], T]) -> tuple[T, Span]:
    server = clock.read()
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    after = clock.read()
    used = None if server is None or after is None else after - server
    return value, Span(seconds, cpu_seconds, used)


@dataclass
class StepResult:
    step: str
    rows: int
    seconds: float
    cpu_seconds: float
    server_cpu_seconds: float | None
    note: str
    ok: bool
    extrapolated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def best_of(repeat: int, step: Callable[[], StepResult]) -> StepResult:
    best: StepResult | None = None
    for i in range(repeat):
        pg_checkpoint()
        result = step()
        if repeat > 1:
            log(f"  try {i + 1}/{repeat}: {result.seconds:.2f} s")
        if best is None or result.seconds < best.seconds:
            best = result
    assert best is not None
    return best


# --------------------------------------------------------------------------- database


def pg_admin(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def pg_bench(sql: str) -> Any:
    with psycopg.connect(BENCH_URL, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else cur.rowcount


def pg_checkpoint() -> None:
    pg_bench("CHECKPOINT")  # no dirty pages left by the step before


def source_rows() -> int:
    return int(pg_bench(f"SELECT count(*) FROM {TABLE}")[0][0])


def source_units() -> int:
    return int(pg_bench(f"SELECT sum(units_sold) FROM {TABLE}")[0][0])


def _db_params(rows: int) -> dict[str, Any]:
    weekdays = sum((START + dt.timedelta(days=i)).weekday() < 5 for i in range(DAYS))
    return {
        "rows": rows,
        "seed": SEED,
        "start": START.isoformat(),
        "days": DAYS,
        "scale": rows / (SALES_PER_DAY * weekdays),
        "simulator": Path(simulator.__file__).stat().st_size,
    }


def _db_comment() -> str | None:
    with psycopg.connect(ADMIN_URL) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [DATABASE],
        ).fetchone()
    return None if row is None else row[0]


def prepare_database(rows: int, keep: bool) -> int:
    """Create and fill `hw_bench_sql` (or, with --keep-db, reuse a matching one)."""
    params = _db_params(rows)
    marker = json.dumps(params, sort_keys=True)
    if keep and _db_comment() == marker:
        count = source_rows()
        log(f"reusing database {DATABASE}: {TABLE} holds {count:,} rows")
        return count
    pg_admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    pg_admin(f"CREATE DATABASE {DATABASE}")
    log(
        f"filling {DATABASE} with the totesys simulator: seed {SEED}, {DAYS} days from "
        f"{START}, scale {params['scale']:.1f} ..."
    )
    start = time.perf_counter()
    create_schema(BENCH_URL)
    counts = simulator.simulate(BENCH_URL, seed=SEED, start=START, days=DAYS, scale=params["scale"])
    log(
        f"  {sum(counts.values()):,} rows in {time.perf_counter() - start:.1f} s "
        f"({', '.join(f'{t} {n:,}' for t, n in counts.items() if n >= 1000)})"
    )
    start = time.perf_counter()
    with psycopg.connect(BENCH_URL, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE, FREEZE)")  # hint bits set: the first reader pays no more
    pg_checkpoint()
    log(f"  VACUUM (ANALYZE, FREEZE) and CHECKPOINT in {time.perf_counter() - start:.1f} s")
    pg_admin(f"COMMENT ON DATABASE {DATABASE} IS '{marker}'")
    count = source_rows()
    if abs(count - rows) > max(0.01 * rows, 100):
        raise SystemExit(f"{TABLE} holds {count:,} rows, expected about {rows:,}")
    return count


def table_bytes() -> int:
    return int(pg_bench(f"SELECT pg_table_size('{TABLE}')")[0][0])


def restore_rows() -> int:
    """Put back the values the last `change_rows` changed, then rewrite the table as the
    fill left it (`VACUUM FULL`, then `VACUUM (FREEZE, ANALYZE)`): every try starts from the
    same rows in full pages, so the next change appends its new row versions at the end of
    the table, as on the first try after the fill. (A plain VACUUM would leave a free slot
    in nearly every page: the next change would scatter its rows over the whole table.)"""
    with psycopg.connect(BENCH_URL, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {ORIGINAL} ({KEY} integer PRIMARY KEY, "
            f"{CURSOR} timestamp(3) NOT NULL, units_sold integer NOT NULL)"
        )
        with conn.transaction():
            restored = conn.execute(
                f"UPDATE {TABLE} t SET {CURSOR} = o.{CURSOR}, units_sold = o.units_sold "
                f"FROM {ORIGINAL} o WHERE t.{KEY} = o.{KEY}"
            ).rowcount
            conn.execute(f"DELETE FROM {ORIGINAL}")
        if restored:
            conn.execute(f"VACUUM FULL {TABLE}")
            conn.execute(f"VACUUM (FREEZE, ANALYZE) {TABLE}")
    return restored


def drop_index() -> None:
    pg_bench(f"DROP INDEX IF EXISTS {INDEX}")


def create_index() -> tuple[float, int]:
    """`CREATE INDEX ON sales_order (last_updated)`: its seconds and bytes."""
    drop_index()
    start = time.perf_counter()
    pg_bench(f"CREATE INDEX {INDEX} ON {TABLE} ({CURSOR})")
    seconds = time.perf_counter() - start
    pg_bench(f"ANALYZE {TABLE}")
    return seconds, int(pg_bench(f"SELECT pg_relation_size('{INDEX}')")[0][0])


# --------------------------------------------------------------------------- references


def parquet_rows(path: Path) -> int:
    return int(pq.ParquetFile(path).metadata.num_rows)


def run_connectorx(clock: ServerClock, rows: int, partitions: int) -> StepResult:
    out = WORK / f"floor_connectorx_{partitions}.parquet"
    out.unlink(missing_ok=True)

    def work() -> int:
        if partitions > 1:
            table: pa.Table = connectorx.read_sql(
                BENCH_URL, SELECT, return_type="arrow", partition_on=KEY, partition_num=partitions
            )
        else:
            table = connectorx.read_sql(BENCH_URL, SELECT, return_type="arrow")
        pq.write_table(table, out, compression="zstd")
        return int(table.num_rows)

    got, span = timed(clock, work)
    ok = got == rows and parquet_rows(out) == rows
    how = "one connection" if partitions == 1 else f"{partitions} connections on {KEY} ranges"
    log(f"  {got:,} rows in {span.seconds:.2f} s ({how})")
    return StepResult(
        f"floor: ConnectorX, {partitions} part.",
        got,
        span.seconds,
        span.cpu_seconds,
        span.server_cpu_seconds,
        f"connectorx.read_sql(arrow, {how}) + pyarrow write_table(zstd); "
        f"{out.stat().st_size / 1e6:,.0f} MB",
        ok,
        extra={"partitions": partitions, "bytes": out.stat().st_size},
    )


def run_copy_binary(clock: ServerClock, rows: int) -> StepResult:
    out = WORK / "floor_copy.bin"

    def work() -> int:
        size = 0
        sql = f"COPY ({SELECT}) TO STDOUT (FORMAT binary)"
        with (
            psycopg.connect(BENCH_URL) as conn,
            out.open("wb") as f,
            conn.cursor().copy(sql) as copy,
        ):
            for chunk in copy:
                size += f.write(chunk)
        return size

    size, span = timed(clock, work)
    log(f"  {size / 1e6:,.0f} MB in {span.seconds:.2f} s")
    return StepResult(
        "reference: COPY binary",
        rows,
        span.seconds,
        span.cpu_seconds,
        span.server_cpu_seconds,
        f"psycopg COPY (SELECT *) TO STDOUT (FORMAT binary) into a file, no Parquet; "
        f"{size / 1e6:,.0f} MB",
        size > 0,
        extra={"bytes": size},
    )


def run_pandas(clock: ServerClock, limit: int | None, rows: int) -> StepResult:
    out = WORK / "common_pandas.parquet"
    sql = SELECT if limit is None else f"{SELECT} ORDER BY {KEY} LIMIT {limit}"
    engine = sa.create_engine(BENCH_URL.replace("postgresql://", "postgresql+psycopg://"))

    def work() -> int:
        frame = pd.read_sql(sql, engine)
        frame.to_parquet(out)
        return len(frame)

    try:
        got, span = timed(clock, work)
    finally:
        engine.dispose()
    expected = rows if limit is None else min(limit, rows)
    ok = got == expected and parquet_rows(out) == expected
    log(f"  {got:,} rows in {span.seconds:.2f} s")
    note = "pandas.read_sql(SQLAlchemy + psycopg) + DataFrame.to_parquet() (defaults)"
    if limit is not None:
        note += (
            f"; sample of {got:,} rows, **extrapolated**: ~{span.seconds * rows / got:,.0f} s "
            f"for {rows:,} rows"
        )
    return StepResult(
        "common way: pandas",
        got,
        span.seconds,
        span.cpu_seconds,
        span.server_cpu_seconds,
        note,
        ok,
        extrapolated=limit is not None,
    )


# --------------------------------------------------------------------------- headwater


def fresh_project(root: Path) -> Project:
    """The totesys template, its source cut down to `sales_order` and its one model."""
    shutil.rmtree(root, ignore_errors=True)
    init_project(root, "totesys")
    shutil.rmtree(root / "dashboards", ignore_errors=True)
    for model in (root / "models").glob("*.sql"):
        if model.stem != MODEL:
            model.unlink()
    config = root / "headwater.yaml"
    text = config.read_text()
    line = "    exclude: ['_prisma_*']"
    assert line in text, "the totesys template changed: update bench/sql_extract.py"
    config.write_text(text.replace(line, f"    tables: [{TABLE}]"))
    (root / ".env").write_text(f"TOTESYS_DB_URL={BENCH_URL}\nHEADWATER_PII_SECRET=bench\n")
    return Project.load(root)


def run_extract_alone(clock: ServerClock, rows: int) -> StepResult:
    project = fresh_project(WORK / "extract_alone")
    config = project.config.sources[SOURCE]
    assert isinstance(config, SqlSource)
    out = WORK / "extract_alone.parquet"
    out.unlink(missing_ok=True)

    def work() -> int:
        reader = SqlSourceReader(SOURCE, config, project.root)
        [plan] = reader.plan()
        conn = reader.connect()
        try:
            return int(reader.extract(conn, plan, None, out).rows)
        finally:
            conn.close()

    got, span = timed(clock, work)
    ok = got == rows and parquet_rows(out) == rows
    log(f"  {got:,} rows in {span.seconds:.2f} s")
    return StepResult(
        "headwater: extract alone",
        got,
        span.seconds,
        span.cpu_seconds,
        span.server_cpu_seconds,
        "SqlSourceReader plan() + connect() + extract() to one Parquet file (DuckDB "
        f"postgres scanner, zstd); {out.stat().st_size / 1e6:,.0f} MB",
        ok,
        extra={"bytes": out.stat().st_size},
    )


def run_steps(project: Project, run_id: int) -> list[dict[str, Any]]:
    """The run's steps from the state database, with their seconds."""
    engine = sa.create_engine(project.state_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT stage, name, batch, status, started_at, finished_at, rows_in, "
                    "rows_out FROM hw_steps WHERE run_id = :run ORDER BY step_id"
                ),
                {"run": run_id},
            ).all()
    finally:
        engine.dispose()
    steps = []
    for stage, name, batch, status, started_at, finished_at, rows_in, rows_out in rows:
        started = dt.datetime.fromisoformat(str(started_at))
        finished = dt.datetime.fromisoformat(str(finished_at))
        steps.append(
            {
                "stage": stage,
                "name": name,
                "batch": batch,
                "status": status,
                "seconds": (finished - started).total_seconds(),
                "rows_in": rows_in,
                "rows_out": rows_out,
            }
        )
    return steps


class ExtractTimer:
    """Wraps `extract_sql` as the pipeline calls it, to time the run's extract step with
    its CPU seconds (the state database's hw_steps has its wall time only)."""

    def __init__(self, clock: ServerClock) -> None:
        self.clock = clock
        self.spans: list[Span] = []

    def __enter__(self) -> ExtractTimer:
        original = self.original = getattr(extract_stage, "extract_sql")  # noqa: B009

        def timed_extract_sql(*args: Any, **kwargs: Any) -> None:
            _, span = timed(self.clock, lambda: original(*args, **kwargs))
            self.spans.append(span)

        setattr(extract_stage, "extract_sql", timed_extract_sql)  # noqa: B010
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(extract_stage, "extract_sql", self.original)  # noqa: B010


@dataclass
class RunResult:
    span: Span
    extract_span: Span  # extract_sql inside the run, timed by ExtractTimer
    status: str
    error: str | None
    rows_staged: int  # rows the run extracted, landed and staged
    lake_rows: int  # rows of the processed table `sales_order`
    fact_rows: int  # rows of the warehouse table `fact_sales_order`
    latest_units: int  # sum(units_sold) over the latest version of each order
    steps: list[dict[str, Any]]

    @property
    def extract_seconds(self) -> float:
        """The extract step's wall time, from hw_steps."""
        return self.step_seconds("extract")

    @property
    def rest_seconds(self) -> float:
        """The run's time outside its extract, stage, model and load steps."""
        steps = ("extract", "stage", "model", "load")
        return self.span.seconds - sum(s["seconds"] for s in self.steps if s["stage"] in steps)

    def step_seconds(self, stage: str, name: str | None = None) -> float:
        return sum(
            float(s["seconds"])
            for s in self.steps
            if s["stage"] == stage and (name is None or s["name"] == name)
        )


def lake_rows(project: Project) -> int:
    tables = Tables.open(project.state_url, project.open_store())
    try:
        files = tables.data_files(TABLE) if tables.exists(TABLE) else []
    finally:
        tables.close()
    if not files:
        return 0
    conn = duckdb.connect()
    try:
        row = conn.execute(f"SELECT count(*) FROM {scan_sql(files)}").fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def warehouse_figures(project: Project) -> tuple[int, int]:
    conn = duckdb.connect(str(project.home / "warehouse.duckdb"), read_only=True)
    try:
        row = conn.execute(
            f"SELECT count(*), (SELECT sum(units_sold) FROM (SELECT units_sold, row_number() "
            f"OVER (PARTITION BY sales_order_id ORDER BY last_updated_date DESC, "
            f"last_updated_time DESC) AS n FROM {MODEL}) WHERE n = 1) FROM {MODEL}"
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return int(row[0]), int(row[1] or 0)


def headwater_run(clock: ServerClock, root: Path, profile_to: Path | None = None) -> RunResult:
    profiler = cProfile.Profile() if profile_to is not None else None

    def work() -> RunSummary:
        if profiler is not None:
            profiler.enable()
        try:
            return run_pipeline(Project.load(root))
        finally:
            if profiler is not None:
                profiler.disable()

    with ExtractTimer(clock) as timer:
        summary, span = timed(clock, work)
    [extract_span] = timer.spans
    if profiler is not None and profile_to is not None:
        profiler.dump_stats(str(profile_to))
    project = Project.load(root)
    facts, units = warehouse_figures(project) if summary.ok else (0, 0)
    return RunResult(
        span=span,
        extract_span=extract_span,
        status=summary.status,
        error=summary.error,
        rows_staged=summary.sources[SOURCE].rows_read,
        lake_rows=lake_rows(project),
        fact_rows=facts,
        latest_units=units,
        steps=run_steps(project, summary.run_id),
    )


def change_rows(try_number: int) -> int:
    """Change 1% of the orders (a different 1% each try): a new version of each. Their
    values before the change are kept in `hw_bench_original` for `restore_rows`."""
    every = round(1 / CHANGED_SHARE)
    where = f"{KEY} % {every} = {try_number % every}"
    with psycopg.connect(BENCH_URL) as conn:  # one transaction
        conn.execute(
            f"INSERT INTO {ORIGINAL} SELECT {KEY}, {CURSOR}, units_sold FROM {TABLE} "
            f"WHERE {where} ON CONFLICT DO NOTHING"
        )
        changed = conn.execute(
            f"UPDATE {TABLE} SET units_sold = units_sold + 1, {CURSOR} = localtimestamp "
            f"WHERE {where}"
        ).rowcount
    return int(changed)


@dataclass
class Pair:
    full: RunResult
    incremental: RunResult
    rows: int
    changed: int
    full_ok: bool
    incremental_ok: bool


def run_pair(clock: ServerClock, try_number: int, profile: bool = False) -> Pair:
    """A full run on a fresh project, 1% of the rows changed, an incremental run."""
    restore_rows()
    root = WORK / "project"
    fresh_project(root)
    rows, units = source_rows(), source_units()
    pg_checkpoint()
    full = headwater_run(clock, root, WORK / "full.prof" if profile else None)
    full_ok = (
        full.status == "success"
        and full.rows_staged == rows
        and full.lake_rows == rows
        and full.fact_rows == rows
        and full.latest_units == units
    )
    log(
        f"  full run: {full.span.seconds:.2f} s (extract {full.extract_seconds:.2f} s), "
        f"{full.status}; lake {full.lake_rows:,}, {MODEL} {full.fact_rows:,} rows "
        f"({'as expected' if full_ok else f'EXPECTED {rows:,}'})"
    )
    changed = change_rows(try_number)
    units = source_units()
    pg_checkpoint()
    incremental = headwater_run(clock, root, WORK / "incremental.prof" if profile else None)
    incremental_ok = (
        incremental.status == "success"
        and incremental.rows_staged == changed
        and incremental.lake_rows == rows + changed
        and incremental.fact_rows == rows + changed
        and incremental.latest_units == units
    )
    log(
        f"  {changed:,} rows changed; incremental run: {incremental.span.seconds:.2f} s "
        f"(extract {incremental.extract_seconds:.2f} s), {incremental.status}; "
        f"{incremental.rows_staged:,} rows staged, lake {incremental.lake_rows:,}, "
        f"{MODEL} {incremental.fact_rows:,} rows "
        f"({'as expected' if incremental_ok else f'EXPECTED {rows + changed:,}'})"
    )
    if full.error or incremental.error:
        log(f"  errors: {full.error or ''} {incremental.error or ''}")
    return Pair(full, incremental, rows, changed, full_ok, incremental_ok)


def run_pairs(clock: ServerClock, first_try: int, repeat: int) -> list[Pair]:
    pairs = []
    for i in range(repeat):
        pairs.append(run_pair(clock, first_try + i))
        if repeat > 1:
            log(f"  try {i + 1}/{repeat} done")
    return pairs


@dataclass
class Half:
    """The incremental runs of one half of the benchmark: without, then with the index."""

    label: str
    what: str
    pairs: list[Pair]
    rows: list[StepResult] = field(default_factory=list)
    run_fraction: float = 0.0
    extract_fraction: float = 0.0

    @property
    def run_best(self) -> RunResult:
        return min((p.incremental for p in self.pairs), key=lambda r: r.span.seconds)

    @property
    def extract_best(self) -> RunResult:
        return min((p.incremental for p in self.pairs), key=lambda r: r.extract_span.seconds)


# --------------------------------------------------------------------------- report


def cpu_cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def row_line(r: StepResult) -> str:
    return (
        f"| {r.step} | {r.rows:,} | {r.seconds:.2f} | {r.cpu_seconds:.2f} | "
        f"{cpu_cell(r.server_cpu_seconds)} | {r.rps:,.0f} | {r.note} |"
    )


def run_row(name: str, rows: int, span: Span, note: str) -> StepResult:
    return StepResult(
        name, rows, span.seconds, span.cpu_seconds, span.server_cpu_seconds, note, True
    )


def step_dict(r: StepResult) -> dict[str, Any]:
    return asdict(r) | {"rows_per_second": round(r.rps)}


def run_dict(r: RunResult) -> dict[str, Any]:
    out = asdict(r)
    out["extract_seconds"] = r.extract_seconds
    return out


def pair_dict(p: Pair) -> dict[str, Any]:
    return {
        "full": run_dict(p.full),
        "incremental": run_dict(p.incremental),
        "changed": p.changed,
        "full_ok": p.full_ok,
        "incremental_ok": p.incremental_ok,
    }


def environment() -> dict[str, Any]:
    with psycopg.connect(ADMIN_URL) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return base_environment(
        {
            "connectorx": connectorx.__version__,
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
            "psycopg": psycopg.__version__,
            "postgresql": version[0] if version else None,
        }
    )


def print_profile(path: Path, top: int = 30) -> None:
    print_profile_(path, "profile", top)


def measure(args: argparse.Namespace) -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    repeat = args.repeat
    rows = prepare_database(args.rows, args.keep_db)
    restore_rows()  # a reused database: as the fill left it, without the index
    drop_index()
    size = table_bytes()
    clock = ServerClock()
    log(f"{TABLE}: {rows:,} rows, {size / 1e6:,.0f} MB in PostgreSQL")
    cpus = os.cpu_count() or 1

    log(f"\nfloor: ConnectorX -> Arrow -> Parquet, one connection (best of {repeat})")
    cx1 = best_of(repeat, lambda: run_connectorx(clock, rows, 1))
    log(f"\nfloor: ConnectorX -> Arrow -> Parquet, {cpus} connections (best of {repeat})")
    cxn = best_of(repeat, lambda: run_connectorx(clock, rows, max(2, cpus)))
    floor = cx1 if cx1.seconds <= cxn.seconds else cxn
    floor.note = "**the floor** (the faster ConnectorX line): " + floor.note
    log(f"\nreference: psycopg COPY binary to a file (best of {repeat})")
    copy = best_of(repeat, lambda: run_copy_binary(clock, rows))

    log(f"\nheadwater: SqlSourceReader extract alone (best of {repeat})")
    alone = best_of(repeat, lambda: run_extract_alone(clock, rows))

    common: StepResult | None = None
    if not args.skip_common:
        log(f"\ncommon way: pandas.read_sql + to_parquet, probe of {COMMON_SAMPLE:,} rows")
        pg_checkpoint()
        probe = run_pandas(clock, COMMON_SAMPLE, rows)
        projected = probe.seconds * rows / probe.rows
        if projected < COMMON_MAX_SECONDS:
            log(f"  projected {projected:,.0f} s for all rows: whole table (best of {repeat})")
            common = best_of(repeat, lambda: run_pandas(clock, None, rows))
        else:
            log(f"  projected {projected:,.0f} s: sample only (best of {repeat})")
            common = best_of(repeat, lambda: run_pandas(clock, COMMON_SAMPLE, rows))

    log(
        f"\nheadwater: run() full, then {CHANGED_SHARE:.0%} changed and run() again, no index on "
        f"{TABLE}.{CURSOR} (best of {repeat})"
    )
    plain = run_pairs(clock, 0, repeat)
    log(f"\nCREATE INDEX ON {TABLE} ({CURSOR}) ...")
    index_seconds, index_bytes = create_index()
    log(f"  {index_bytes / 1e6:,.0f} MB in {index_seconds:.2f} s")
    log(
        f"\nheadwater: run() full, then {CHANGED_SHARE:.0%} changed and run() again, with the "
        f"index (best of {repeat})"
    )
    indexed = run_pairs(clock, repeat, repeat)
    pairs = plain + indexed
    checks_ok = all(p.full_ok and p.incremental_ok for p in pairs)
    if args.profile:
        log("\nprofiling one more full and incremental run (with the index) with cProfile ...")
        pair = run_pair(clock, 2 * repeat, profile=True)
        checks_ok = checks_ok and pair.full_ok and pair.incremental_ok
    restore_rows()
    drop_index()

    # The full run does not use the index (parallel page-range scans): best of both halves.
    full = min((p.full for p in pairs), key=lambda r: r.span.seconds)
    full_x = min((p.full for p in pairs), key=lambda r: r.extract_span.seconds)
    changed = pairs[0].changed
    extract_row = run_row(
        "headwater: run's extract step",
        rows,
        full_x.extract_span,
        f"extract_sql inside run() (hw_steps: {full_x.extract_seconds:.2f} s): catalog, "
        "DuckDB postgres scanner -> Parquet, sha256, raw zone, ledger, watermark",
    )
    full_row = run_row(
        "headwater: whole run()",
        rows,
        full.span,
        f"fresh project: extract, stage into Iceberg, model {MODEL}, DuckDB warehouse",
    )
    halves = [
        Half("no index", f"no index on {CURSOR}", plain),
        Half("index", f"index on {CURSOR}", indexed),
    ]
    for half in halves:
        half.rows = [
            run_row(
                f"headwater: incremental extract step, {half.label}",
                half.extract_best.rows_staged,
                half.extract_best.extract_span,
                f"after {CHANGED_SHARE:.0%} of the rows changed, {half.what}; rows = new versions",
            ),
            run_row(
                f"headwater: incremental run(), {half.label}",
                half.run_best.rows_staged,
                half.run_best.span,
                f"after {CHANGED_SHARE:.0%} of the rows changed, {half.what}; rows = new "
                "versions staged, in the lake and in the warehouse",
            ),
        ]
        half.run_fraction = half.run_best.span.seconds / full.span.seconds
        half.extract_fraction = half.rows[0].seconds / extract_row.seconds
    plain_half, index_half = halves
    steps_table = [
        (
            "extract",
            full.extract_seconds,
            plain_half.run_best.extract_seconds,
            index_half.run_best.extract_seconds,
        ),
        *(
            (
                label,
                full.step_seconds(stage),
                plain_half.run_best.step_seconds(stage),
                index_half.run_best.step_seconds(stage),
            )
            for label, stage in (
                ("stage", "stage"),
                (f"model {MODEL}", "model"),
                ("load (warehouse)", "load"),
            )
        ),
        (
            "rest (plan, lock, state, catalog)",
            full.rest_seconds,
            plain_half.run_best.rest_seconds,
            index_half.run_best.rest_seconds,
        ),
        (
            "whole run",
            full.span.seconds,
            plain_half.run_best.span.seconds,
            index_half.run_best.span.seconds,
        ),
    ]
    vs_floor = extract_row.rps / floor.rps if floor.rps else 0.0
    alone_vs_floor = alone.rps / floor.rps if floor.rps else 0.0
    vs_common = extract_row.rps / common.rps if common and common.rps else None
    references_ok = cx1.ok and cxn.ok and copy.ok and alone.ok and (common is None or common.ok)

    lines = [
        "",
        f"## sql source extract benchmark: {TABLE}, {rows:,} rows ({size / 1e6:,.0f} MB in "
        f"PostgreSQL), {cpus} CPUs, best of {repeat}",
        "",
        "| step | rows | seconds | CPU s | server CPU s | rows/s | note |",
        "|---|---:|---:|---:|---:|---:|---|",
        row_line(extract_row),
        row_line(alone),
        row_line(full_row),
        *(row_line(r) for half in halves for r in half.rows),
        row_line(cx1),
        row_line(cxn),
        row_line(copy),
    ]
    if common is not None:
        lines.append(row_line(common))
    lines += [
        "",
        f"Index on {TABLE} ({CURSOR}): {index_bytes / 1e6:,.0f} MB, built in "
        f"{index_seconds:.2f} s. The full run is the best of all {len(pairs)} (it does not use "
        "the index).",
        "",
        "| run step (hw_steps) | full run s | incremental s, no index | incremental s, index |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {a:.2f} | {b:.2f} | {c:.2f} |" for name, a, b, c in steps_table),
        "",
        "| ratio | value | target | verdict |",
        "|---|---:|---:|---|",
        f"| run's extract step rows/s / floor rows/s ({floor.step}) | {vs_floor:.2f}x | "
        f">= {TARGET_VS_FLOOR:g}x | {verdict(vs_floor >= TARGET_VS_FLOOR)} |",
        f"| extract alone rows/s / floor rows/s | {alone_vs_floor:.2f}x | | for reference |",
    ]
    if vs_common is not None and common is not None:
        lines.append(
            f"| run's extract step rows/s / common way rows/s"
            f"{' (extrapolated)' if common.extrapolated else ''} | {vs_common:.1f}x | "
            f">= {TARGET_VS_COMMON:g}x | {verdict(vs_common >= TARGET_VS_COMMON)} |"
        )
    for half in halves:
        lines += [
            f"| incremental run s / full run s, {half.what} | {half.run_fraction:.1%} | "
            f"< {TARGET_INCREMENTAL:.0%} | {verdict(half.run_fraction < TARGET_INCREMENTAL)} |",
            f"| incremental extract step s / full extract step s, {half.what} | "
            f"{half.extract_fraction:.1%} | < {TARGET_INCREMENTAL:.0%} | "
            f"{verdict(half.extract_fraction < TARGET_INCREMENTAL)} |",
        ]
    lines.append(
        f"| every run and output checked | {checks_ok and references_ok} | True | "
        f"{verdict(checks_ok and references_ok)} |"
    )
    log("\n".join(lines))
    if args.profile:
        print_profile(WORK / "full.prof")
        print_profile(WORK / "incremental.prof")

    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                **environment(),
                "repeat": repeat,
                "rows": rows,
                "table_bytes": size,
                "changed": changed,
                "index": {"seconds": round(index_seconds, 3), "bytes": index_bytes},
                "steps": {
                    "headwater_extract_step": step_dict(extract_row),
                    "headwater_extract_alone": step_dict(alone),
                    "headwater_run": step_dict(full_row),
                    "headwater_incremental_extract_step": step_dict(plain_half.rows[0]),
                    "headwater_incremental_run": step_dict(plain_half.rows[1]),
                    "headwater_incremental_extract_step_index": step_dict(index_half.rows[0]),
                    "headwater_incremental_run_index": step_dict(index_half.rows[1]),
                    "floor_connectorx_1": step_dict(cx1),
                    "floor_connectorx_n": step_dict(cxn),
                    "copy_binary": step_dict(copy),
                    "common_pandas": None if common is None else step_dict(common),
                },
                "floor": floor.step,
                "runs": [pair_dict(p) for p in plain],
                "runs_index": [pair_dict(p) for p in indexed],
                "ratios": {
                    "extract_over_floor": round(vs_floor, 3),
                    "target_vs_floor_min": TARGET_VS_FLOOR,
                    "extract_alone_over_floor": round(alone_vs_floor, 3),
                    "extract_over_common": None if vs_common is None else round(vs_common, 2),
                    "target_vs_common_min": TARGET_VS_COMMON,
                    "incremental_run_fraction": round(plain_half.run_fraction, 4),
                    "incremental_extract_fraction": round(plain_half.extract_fraction, 4),
                    "incremental_run_fraction_index": round(index_half.run_fraction, 4),
                    "incremental_extract_fraction_index": round(index_half.extract_fraction, 4),
                    "target_incremental_max": TARGET_INCREMENTAL,
                },
                "checks_ok": checks_ok and references_ok,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    log(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0 if checks_ok and references_ok else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the sql source's extract from PostgreSQL against ConnectorX "
        "and pandas.read_sql, and its incremental run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of sales_order")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each timed step K times, keep the best"
    )
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help=f"keep {DATABASE} at the end, and reuse it when it was made for the same --rows",
    )
    parser.add_argument("--skip-common", action="store_true", help="skip the pandas step")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the timed runs, one more full and incremental run under cProfile",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.rows < 1000:
        parser.error("--rows must be at least 1000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return measure(args)
    finally:
        if not args.keep_db:
            pg_admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
