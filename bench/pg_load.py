"""Benchmark of the `postgres` warehouse target: lake Parquet -> PostgreSQL table.

Generates N rows (bigint id, integer, numeric(10,2), ~20-character text,
timestamp with microseconds, boolean, some NULLs, plus the lake's `_batch`)
as one Parquet file with DuckDB, exports the same rows to CSV, and times, in
the same run, against a scratch database `hw_bench_pg` (dropped at the end):

- headwater: `PostgresWarehouse.load` of the Parquet file into a new table
  (binary COPY through DuckDB's postgres extension), in a child process (its
  peak RSS is measured too);
- the floor: `psql -c "\\copy t FROM 'file.csv' WITH (FORMAT csv)"` of the CSV
  into an empty table of the same types (only the psql process is timed);
- the common way: psycopg `cursor.executemany("INSERT ...")` of a sample of the
  rows in one transaction, extrapolated to all rows.

Every loaded table is checked against DuckDB's aggregates of the Parquet file.
Results are printed as a markdown table and written to bench/out/pg_load.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import psycopg

from benchkit import best_of, log, verdict
from benchkit import environment as base_environment

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
RESULTS = OUT / "pg_load.json"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "hw_bench_pg"
BENCH_URL = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
TABLE = "events"
COLUMNS_DDL = (
    "id bigint, quantity integer, amount numeric(10,2), customer text, "
    "created_at timestamp without time zone, paid boolean"
)
TABLES = (TABLE, "floor_events", "common_events", "_headwater_loads")
COLUMNS = "id, quantity, amount, customer, created_at, paid"
RESULT_PREFIX = "PG-LOAD-RESULT "

TARGET_VS_FLOOR = 0.7  # headwater rows/s over floor rows/s, at least
TARGET_VS_COMMON = 20.0  # headwater rows/s over executemany rows/s, at least

T = TypeVar("T")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    rows: int
    parquet: Path
    csv: Path
    parquet_bytes: int
    csv_bytes: int


# Deterministic, realistic-looking values from the row number; ~2% NULL text, ~14% NULL flags.
GENERATE = """
SELECT i::BIGINT AS id,
       (hash(i) % 1000)::INTEGER AS quantity,
       ((hash(i * 3) % 10000000) / 100)::DECIMAL(10,2) AS amount,
       CASE WHEN i % 50 = 0 THEN NULL
            WHEN i % 997 = 0 THEN ''
            ELSE 'customer ' || lpad((hash(i * 7) % 100000000000)::VARCHAR, 11, '0') END AS customer,
       TIMESTAMP '2024-01-01' + to_microseconds((hash(i * 11) % 31536000000000)::BIGINT)
           AS created_at,
       CASE WHEN i % 7 = 0 THEN NULL ELSE hash(i * 13) % 3 = 0 END AS paid,
       1::BIGINT AS _batch
FROM range({rows}) t(i)
"""


def ensure_dataset(rows: int) -> Dataset:
    """bench/out/pg_load/<N>/events.parquet and events.csv, made once and reused."""
    root = OUT / "pg_load" / str(rows)
    parquet, csv, marker = root / "events.parquet", root / "events.csv", root / "generated.json"
    params = {"rows": rows, "sql": GENERATE, "duckdb": duckdb.__version__}
    fresh = marker.is_file() and json.loads(marker.read_text()) == params
    if not (fresh and parquet.is_file() and csv.is_file()):
        root.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        log(f"generating {rows:,} rows into {parquet.relative_to(REPO)} and its CSV ...")
        start = time.perf_counter()
        conn = duckdb.connect()
        try:
            conn.execute(
                f"COPY ({GENERATE.format(rows=rows)}) TO '{parquet}' (FORMAT parquet)"
            ).fetchall()
            conn.execute(
                f"COPY (SELECT {COLUMNS} FROM read_parquet('{parquet}')) TO '{csv}' "
                "(FORMAT csv, HEADER false)"
            ).fetchall()
        finally:
            conn.close()
        marker.write_text(json.dumps(params))
        log(f"  done in {time.perf_counter() - start:.1f} s")
    data = Dataset(rows, parquet, csv, parquet.stat().st_size, csv.stat().st_size)
    log(
        f"data: {rows:,} rows, {data.parquet_bytes / 1e6:,.0f} MB of Parquet, "
        f"{data.csv_bytes / 1e6:,.0f} MB of CSV"
    )
    return data


def expected_aggregates(data: Dataset) -> tuple[Any, ...]:
    conn = duckdb.connect()
    try:
        row = conn.execute(f"SELECT {AGGREGATES} FROM read_parquet('{data.parquet}')").fetchone()
    finally:
        conn.close()
    assert row is not None
    return tuple(row)


AGGREGATES = (
    "count(*), sum(id), sum(quantity), sum(amount), count(customer), "
    "count(*) FILTER (WHERE customer = ''), sum(length(customer)), count(paid), "
    "count(*) FILTER (WHERE paid), min(created_at), max(created_at), "
    "sum(epoch_us(created_at) % 1000003)"
)
PG_AGGREGATES = AGGREGATES.replace(
    "epoch_us(created_at)", "(extract(epoch FROM created_at) * 1000000)::bigint"
)


def loaded_aggregates(table: str) -> tuple[Any, ...]:
    with psycopg.connect(BENCH_URL) as conn:
        row = conn.execute(f"SELECT {PG_AGGREGATES} FROM {table}").fetchone()
    assert row is not None
    return tuple(row)


# --------------------------------------------------------------------------- database


def pg_admin(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def pg_bench(*statements: str) -> None:
    with psycopg.connect(BENCH_URL, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def fresh_table(table: str, create: bool) -> None:
    """Drop every table of the benchmark, create `table` empty if asked, flush dirty pages.

    Dropping the tables of the other steps keeps autovacuum (which analyzes and
    vacuums a table after a large insert) from competing with the next step.
    """
    pg_bench(f"DROP TABLE IF EXISTS {', '.join(TABLES)}")
    if create:
        pg_bench(f"CREATE TABLE {table} ({COLUMNS_DDL})")
    pg_bench("CHECKPOINT")  # each try starts with no dirty pages from the one before


@dataclass(frozen=True)
class StepResult:
    seconds: float
    cpu_seconds: float  # client process CPU (the server's work is not counted)
    rows: int
    checks_ok: bool
    peak_rss_bytes: int = 0

    @property
    def rps(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# --------------------------------------------------------------------------- steps


def child_load(parquet: str) -> int:
    """In a child process: one headwater load, timed; prints a JSON line for the parent."""
    from headwater.warehouse.base import LoadItem
    from headwater.warehouse.postgres import PostgresWarehouse

    target = PostgresWarehouse(BENCH_URL)
    load = LoadItem(TABLE, [parquet], "replace", [], None, 1, 1)
    start, cpu = time.perf_counter(), time.process_time()
    [result] = target.load([load], 1, lambda: None)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    payload = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rows": result.rows_loaded,
        "peak_rss_bytes": peak,
    }
    print(RESULT_PREFIX + json.dumps(payload), flush=True)
    return 0


def run_headwater(data: Dataset, expected: tuple[Any, ...]) -> StepResult:
    fresh_table(TABLE, create=False)
    proc = subprocess.run(
        [sys.executable, __file__, "--child-load", str(data.parquet)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"headwater load failed:\n{proc.stdout}")
    payload = json.loads(lines[-1][len(RESULT_PREFIX) :])
    rss = int(payload["peak_rss_bytes"])
    ok = loaded_aggregates(TABLE) == expected
    result = StepResult(payload["seconds"], payload["cpu_seconds"], payload["rows"], ok, rss)
    log(
        f"  loaded {result.rows:,} rows in {result.seconds:.2f} s "
        f"({'matches' if ok else 'DOES NOT match'} the Parquet file), "
        f"peak RSS {rss / 2**20:,.0f} MiB"
    )
    return result


def run_floor(data: Dataset, expected: tuple[Any, ...]) -> StepResult:
    table = "floor_events"
    fresh_table(table, create=True)
    copy = f"\\copy {table} FROM '{data.csv}' WITH (FORMAT csv)"
    command = ["psql", "-X", "-q", BENCH_URL, "-c", copy]
    start = time.perf_counter()
    before = os.times()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    ok = loaded_aggregates(table) == expected
    log(f"  copied {data.rows:,} rows in {seconds:.2f} s ({'matches' if ok else 'DOES NOT match'})")
    return StepResult(seconds, cpu, data.rows, ok)


def run_common(data: Dataset, sample: int) -> StepResult:
    table = "common_events"
    fresh_table(table, create=True)
    conn = duckdb.connect()
    try:
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM read_parquet('{data.parquet}') LIMIT {sample}"
        ).fetchall()
    finally:
        conn.close()
    sql = f"INSERT INTO {table} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
    start, cpu = time.perf_counter(), time.process_time()
    with psycopg.connect(BENCH_URL) as pg:
        with pg.cursor() as cur:
            cur.executemany(sql, rows)
        pg.commit()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    with psycopg.connect(BENCH_URL) as pg:
        count = pg.execute(f"SELECT count(*) FROM {table}").fetchone()
    ok = count is not None and count[0] == len(rows)
    log(f"  inserted {len(rows):,} rows in {seconds:.2f} s")
    return StepResult(seconds, cpu_seconds, len(rows), ok)


# --------------------------------------------------------------------------- report


def environment() -> dict[str, Any]:
    with psycopg.connect(ADMIN_URL) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return base_environment(
        {"psycopg": psycopg.__version__, "postgresql": version[0] if version else None}
    )


def run(args: argparse.Namespace) -> int:
    data = ensure_dataset(args.rows)
    expected = expected_aggregates(data)
    pg_admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    pg_admin(f"CREATE DATABASE {DATABASE}")
    try:
        log(f"\nfloor: psql \\copy of the CSV (best of {args.repeat})")
        floor = best_of(args.repeat, lambda: run_floor(data, expected), lambda r: r.seconds)
        log(f"\nheadwater: PostgresWarehouse.load of the Parquet file (best of {args.repeat})")
        hw = best_of(args.repeat, lambda: run_headwater(data, expected), lambda r: r.seconds)
        common: StepResult | None = None
        if args.common_rows > 0:
            sample = min(args.common_rows, data.rows)
            log(f"\ncommon way: psycopg executemany INSERT of {sample:,} rows")
            common = best_of(args.repeat, lambda: run_common(data, sample), lambda r: r.seconds)
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")

    vs_floor = hw.rps / floor.rps if floor.rps else 0.0
    vs_common = hw.rps / common.rps if common and common.rps else None
    lines = [
        "",
        f"## PostgreSQL load benchmark: {data.rows:,} rows ({data.parquet_bytes / 1e6:,.0f} MB "
        f"Parquet, {data.csv_bytes / 1e6:,.0f} MB CSV), {os.cpu_count()} CPUs, "
        f"best of {args.repeat}",
        "",
        "| step | rows | seconds | client CPU s | rows/s | note |",
        "|---|---:|---:|---:|---:|---|",
        f"| headwater | {hw.rows:,} | {hw.seconds:.2f} | {hw.cpu_seconds:.2f} | {hw.rps:,.0f} | "
        f"PostgresWarehouse.load (binary COPY), new table; "
        f"peak RSS {hw.peak_rss_bytes / 2**20:,.0f} MiB; "
        f"table {'matches' if hw.checks_ok else 'DOES NOT match'} the Parquet file |",
        f"| floor | {floor.rows:,} | {floor.seconds:.2f} | {floor.cpu_seconds:.2f} | "
        f"{floor.rps:,.0f} | psql \\copy of the CSV into an empty table; "
        f"table {'matches' if floor.checks_ok else 'DOES NOT match'} |",
    ]
    if common is not None:
        full = data.rows / common.rps if common.rps else float("inf")
        lines.append(
            f"| common way | {common.rows:,} | {common.seconds:.2f} | {common.cpu_seconds:.2f} | "
            f"{common.rps:,.0f} | psycopg executemany INSERT (pipelined by psycopg 3), one "
            f"transaction; sample of "
            f"{common.rows:,} rows, **extrapolated**: ~{full:,.0f} s for {data.rows:,} rows |"
        )
    lines += [
        "",
        "| ratio | value | target | verdict |",
        "|---|---:|---:|---|",
        f"| headwater rows/s / floor rows/s | {vs_floor:.2f}x | >= {TARGET_VS_FLOOR:g}x | "
        f"{verdict(vs_floor >= TARGET_VS_FLOOR)} |",
    ]
    if vs_common is not None and common is not None:
        ceiling = floor.rps / common.rps if common.rps else 0.0
        lines += [
            f"| headwater rows/s / common way rows/s | {vs_common:.1f}x | "
            f">= {TARGET_VS_COMMON:g}x | {verdict(vs_common >= TARGET_VS_COMMON)} |",
            f"| floor rows/s / common way rows/s (what a CSV COPY reaches) | "
            f"{ceiling:.1f}x | | for reference |",
        ]
    ok = hw.checks_ok and floor.checks_ok and (common is None or common.checks_ok)
    lines.append(f"| every loaded table checked | {ok} | True | {verdict(ok)} |")
    log("\n".join(lines))

    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                **environment(),
                "repeat": args.repeat,
                "rows": data.rows,
                "headwater": asdict(hw) | {"rows_per_second": round(hw.rps)},
                "floor": asdict(floor) | {"rows_per_second": round(floor.rps)},
                "common": None
                if common is None
                else asdict(common) | {"rows_per_second": round(common.rps), "extrapolated": True},
                "ratios": {
                    "headwater_over_floor": round(vs_floor, 3),
                    "target_vs_floor_min": TARGET_VS_FLOOR,
                    "headwater_over_common": None if vs_common is None else round(vs_common, 2),
                    "target_vs_common_min": TARGET_VS_COMMON,
                },
            },
            indent=2,
        )
        + "\n"
    )
    log(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the postgres warehouse target against psql \\copy and executemany.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows to generate and load")
    parser.add_argument(
        "--common-rows",
        type=int,
        default=50_000,
        help="rows the executemany step inserts (it is slow; its rate is extrapolated); 0 skips it",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each timed step K times, keep the best"
    )
    parser.add_argument("--child-load", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_load is not None:
        return child_load(args.child_load)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
