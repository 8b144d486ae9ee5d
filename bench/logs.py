"""Benchmark of log parsing: multi-line CarePlus-style log files -> the processed zone.

Generates N log records (default 10,000,000) in the multi-line format of the
careplus spec (six `key=value` lines then `---`; level typos, negative
response times, emoji) into ``bench/out/logs-<N>/inbox``, with DuckDB (no
Python loop per record), then times in the same process:

- headwater: ``run()`` end to end on a fresh project whose ``headwater.yaml``
  declares the format (separator, one pattern, pairs, a timestamp type):
  extract (hash, raw zone) -> parse -> Parquet -> Iceberg commit, checked
  against the generator's count;
- the common way: a line-by-line Python parser (``for line in file``,
  ``re.match`` for the first line of a record, ``re.findall`` for the
  pairs, one dict per record, ``pyarrow`` Parquet per file), on all files or
  an even sample (``--baseline-files``), extrapolated.

Prints a markdown table with records/s and the ratio (target: 10x) and
writes bench/out/logs.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchkit import REPO, best_of, environment, log, print_profile, verdict
from headwater.project import Project
from headwater.runs.pipeline import run as run_pipeline
from headwater.serve.query import connect

OUT = REPO / "bench" / "out"
RESULTS = OUT / "logs.json"
MARKER = "generated.json"
GENERATOR_VERSION = 1
TARGET_VS_BASELINE = 10.0
DEFAULT_RECORDS = 10_000_000
DEFAULT_PER_FILE = 100_000

PROJECT_YAML = """\
name: logbench
sources:
  support_logs:
    kind: files
    path: inbox
    glob: "*.log"
    format: log
    log:
      separator: '^---$'
      patterns:
        - regex: '^(?P<logged_at>\\S+ \\S+) \\[(?P<level>[^\\]]*)\\] (?P<component>\\S+) - '
          line: 1
      pairs: true
      fields:
        logged_at: {type: timestamp, format: '%Y-%m-%d %H:%M:%S'}
"""
MODEL_SQL = "select count(*) as records from support_logs\n"


# --------------------------------------------------------------------------- data

LEVELS = ["INFO"] * 40 + ["DEBUG"] * 32 + ["WARNING"] * 8 + ["ERROR"] * 2
LEVELS += ["INF0", "DEBG", "warnING", "EROR"]
AGENTS = ["curl/7.68.0", "PostmanRuntime/7.32.2", "Mobile-Safari/537.36", "Python-urllib/3.9"]
AGENTS += ["Mozilla/5.0 (Windows NT 10.0; Win64; x64)"]
DEBUG = ["ℹ️ Logged for monitoring", "⚠️ Slow response noted", "🔥 Error trace captured"]
DEBUG += ["Cache miss", "Retry scheduled"]
SERVICES = ["GenericService", "TicketService", "AuthService", "NotifyService"]


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _file_sql(day: int, first: int, count: int) -> str:
    """One file's records as strings (each ending in a newline but the file's last)."""
    spacing = 86_400 / count
    return f"""
    WITH r AS (
      SELECT i, hash(i, 7) AS h, hash(i, 11) AS g
      FROM range({first}, {first + count}) t(i)
    ), f AS (
      SELECT i,
        strftime(TIMESTAMP '2025-07-01' + INTERVAL {day} DAY
                 + to_seconds(floor((i - {first}) * {spacing})::BIGINT), '%Y-%m-%d %H:%M:%S') AS ts,
        {_sql_list(LEVELS)}[1 + (h % {len(LEVELS)})::INT] AS level,
        {_sql_list(SERVICES)}[1 + ((h >> 8) % {len(SERVICES)})::INT] AS service,
        'TCK' || lpad(((h >> 12) % 100000)::VARCHAR, 5, '0') AS ticket,
        ((g % 223) + 1)::VARCHAR || '.' || ((g >> 8) % 256)::VARCHAR || '.'
          || ((g >> 16) % 256)::VARCHAR || '.' || ((g >> 24) % 256)::VARCHAR AS ip,
        CASE WHEN (g >> 32) % 100 < 7 THEN -1 - ((g >> 40) % 500)::INT
             ELSE ((g >> 40) % 2500)::INT END AS rt,
        printf('%.2f', ((h >> 20) % 10000) / 100.0) AS cpu,
        {_sql_list(AGENTS)}[1 + ((h >> 36) % {len(AGENTS)})::INT] AS agent,
        {_sql_list(DEBUG)}[1 + ((g >> 48) % {len(DEBUG)})::INT] AS debug
      FROM r
    )
    SELECT ts || ' [' || level || '] careplus.support.' || service || ' - TicketID=' || ticket
      || ' SessionID=sess_' || ticket || chr(10)
      || 'IP=' || ip || ' | ResponseTime=' || rt || 'ms | CPU=' || cpu
      || '% | EventType=generic_event | Error=' || (level = 'ERROR')::VARCHAR || chr(10)
      || 'UserAgent="' || agent || '"' || chr(10)
      || 'Message=" event for ' || ticket || '"' || chr(10)
      || 'Debug="' || debug || '"' || chr(10)
      || 'TraceID=None' || chr(10) || '---'
      || CASE WHEN i < {first + count - 1} THEN chr(10) ELSE '' END AS record
    FROM f ORDER BY i
    """


def generate(inbox: Path, records: int, per_file: int) -> tuple[int, int]:
    """Write the log files; returns (files, bytes). One DuckDB query per file."""
    inbox.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect()
    files = written = 0
    try:
        first = 0
        while first < records:
            count = min(per_file, records - first)
            table = conn.execute(_file_sql(files, first, count)).to_arrow_table()
            column = table.column("record").combine_chunks().cast(pa.large_string())
            offsets = column.buffers()[1]
            data = column.buffers()[2]
            bounds = np.frombuffer(offsets, dtype=np.int64)[
                column.offset : column.offset + len(column) + 1
            ]
            body = memoryview(data)[int(bounds[0]) : int(bounds[-1])]
            day = f"{files:04d}"
            path = inbox / f"support_logs_{day}.log"
            path.write_bytes(body)
            written += len(body)
            files += 1
            first += count
    finally:
        conn.close()
    return files, written


@dataclass(frozen=True)
class Dataset:
    root: Path
    records: int
    files: int
    bytes: int

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"


def ensure_dataset(records: int, per_file: int) -> Dataset:
    root = OUT / f"logs-{records}"
    params = {"records": records, "per_file": per_file, "version": GENERATOR_VERSION}
    marker = root / MARKER
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        recorded = {}
    on_disk = len(list((root / "inbox").glob("*.log")))
    if recorded.get("params") == params and on_disk == recorded.get("files"):
        log(f"reusing {root / 'inbox'}: {on_disk:,} files, {recorded['bytes'] / 1e6:,.0f} MB")
        return Dataset(root, records, on_disk, int(recorded["bytes"]))
    shutil.rmtree(root / "inbox", ignore_errors=True)
    log(f"generating {records:,} records, {per_file:,} a file, into {root / 'inbox'} ...")
    start = time.perf_counter()
    files, size = generate(root / "inbox", records, per_file)
    seconds = time.perf_counter() - start
    marker.write_text(json.dumps({"params": params, "files": files, "bytes": size}) + "\n")
    log(f"  {files:,} files, {size / 1e6:,.0f} MB in {seconds:.1f} s")
    return Dataset(root, records, files, size)


# --------------------------------------------------------------------------- headwater


@dataclass(frozen=True)
class Result:
    seconds: float
    cpu_seconds: float  # process CPU time, all threads
    records: int
    files: int
    ok: bool
    note: str = ""

    @property
    def rps(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def fresh_project(data: Dataset, batch_mb: int | None = None) -> Path:
    root = data.root
    shutil.rmtree(root / ".headwater", ignore_errors=True)
    shutil.rmtree(root / "models", ignore_errors=True)
    (root / "models").mkdir()
    (root / "models" / "log_count.sql").write_text(MODEL_SQL)
    engine = "" if batch_mb is None else f"engine:\n  batch_mb: {batch_mb}\n"
    (root / "headwater.yaml").write_text(PROJECT_YAML + engine)
    return root


def run_headwater(
    data: Dataset, profile_to: Path | None = None, batch_mb: int | None = None
) -> Result:
    root = fresh_project(data, batch_mb)
    profiler = cProfile.Profile() if profile_to else None
    start, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    try:
        summary = run_pipeline(Project.load(root))
    finally:
        if profiler is not None:
            profiler.disable()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    if profiler is not None and profile_to is not None:
        profiler.dump_stats(str(profile_to))
    with connect(Project.load(root), lake=True) as conn:
        row = conn.execute("SELECT count(*), count(logged_at) FROM support_logs").fetchone()
    stored, stamped = (int(row[0]), int(row[1])) if row else (0, 0)
    source = summary.sources["support_logs"]
    ok = summary.ok and stored == data.records == stamped and source.rows_quarantined == 0
    log(
        f"  run {summary.status} in {seconds:.2f} s ({cpu_seconds:.2f} CPU s): processed table "
        f"holds {stored:,} records (generator: {data.records:,}), {source.rows_quarantined:,} "
        "quarantined"
    )
    if summary.error:
        log(f"  error: {summary.error}")
    return Result(seconds, cpu_seconds, stored, data.files, ok, "headwater run(), end to end")


# --------------------------------------------------------------------------- the common way

FIRST_LINE = re.compile(r"^(\S+ \S+) \[([^\]]*)\] (\S+) - (.*)$")
PAIR = re.compile(r'(\w+)=("[^"]*"|[^\s|]*)')


def common_way(files: Sequence[Path], out: Path) -> Result:
    """Line by line: regex for a record's first line, findall for pairs, a dict per record,
    Parquet per file with pyarrow."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start, cpu = time.perf_counter(), time.process_time()
    total = 0
    for path in files:
        rows: list[dict[str, Any]] = []
        record: dict[str, Any] = {}
        with path.open(encoding="utf-8") as handle:
            for raw in handle:
                line = raw.rstrip("\r\n")
                if line == "---":
                    rows.append(record)
                    record = {}
                    continue
                if not record:
                    match = FIRST_LINE.match(line)
                    if match:
                        record["logged_at"], record["level"], record["component"], line = (
                            match.groups()
                        )
                        record["logged_at"] = _timestamp(record["logged_at"])
                for key, value in PAIR.findall(line):
                    record[key] = value.strip('"')
        if record:
            rows.append(record)
        pq.write_table(pa.Table.from_pylist(rows), out / f"{path.stem}.parquet")
        total += len(rows)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    log(f"  {total:,} records from {len(files)} files in {seconds:.2f} s")
    return Result(seconds, cpu_seconds, total, len(files), True, "line-by-line Python regex")


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


def sample(files: list[Path], count: int) -> list[Path]:
    if count <= 0 or count >= len(files):
        return files
    return [files[i * len(files) // count] for i in range(count)]


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Log parsing: headwater run vs a line-by-line Python parser.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="records to generate")
    parser.add_argument("--per-file", type=int, default=DEFAULT_PER_FILE, help="records a file")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side; fastest kept")
    parser.add_argument(
        "--baseline-files",
        type=int,
        default=0,
        help="files the common way parses (spread evenly; 0: all), extrapolated to all",
    )
    parser.add_argument("--profile", action="store_true", help="profile one more headwater run")
    parser.add_argument(
        "--batch-mb", type=int, default=None, help="engine.batch_mb of the project (default: its)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data = ensure_dataset(args.records, args.per_file)
    log(f"\nheadwater: run() on a fresh project (best of {args.repeat})")
    hw = best_of(
        args.repeat, lambda: run_headwater(data, batch_mb=args.batch_mb), lambda r: r.seconds
    )
    files = sample(sorted(data.inbox.glob("*.log")), args.baseline_files)
    log(f"\nthe common way: line-by-line Python on {len(files)} of {data.files} files")
    base = best_of(
        args.repeat, lambda: common_way(files, data.root / "common-way"), lambda r: r.seconds
    )
    if args.profile:
        prof = data.root / "headwater.prof"
        log("\nprofiling one more headwater run (not timed) ...")
        run_headwater(data, prof, args.batch_mb)
        print_profile(prof, "profile of the headwater run")
    ratio = hw.rps / base.rps if base.rps else float("inf")
    extrapolated = data.records / base.rps if base.rps else float("inf")
    note = (
        "" if len(files) == data.files else f"; {len(files)} files, ~{extrapolated:,.0f} s for all"
    )
    lines = [
        "",
        f"## log parsing: {data.records:,} records, {data.files:,} files, "
        f"{data.bytes / 1e6:,.0f} MB, best of {args.repeat}",
        "",
        "| step | records | seconds | CPU seconds | records/s | note |",
        "|---|---:|---:|---:|---:|---|",
        f"| headwater | {hw.records:,} | {hw.seconds:.2f} | {hw.cpu_seconds:.2f} | "
        f"{hw.rps:,.0f} | {hw.note}; {'all records stored' if hw.ok else 'CHECK FAILED'} |",
        f"| common way | {base.records:,} | {base.seconds:.2f} | {base.cpu_seconds:.2f} | "
        f"{base.rps:,.0f} | {base.note}{note} |",
        "",
        "| ratio | value | target | verdict |",
        "|---|---:|---:|---|",
        f"| headwater records/s / common way records/s | {ratio:.1f}x | "
        f">= {TARGET_VS_BASELINE:g}x | {verdict(ratio >= TARGET_VS_BASELINE)} |",
    ]
    log("\n".join(lines))
    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                **environment({"records": data.records, "files": data.files, "bytes": data.bytes}),
                "repeat": args.repeat,
                "headwater": asdict(hw) | {"records_per_second": round(hw.rps)},
                "common_way": asdict(base) | {"records_per_second": round(base.rps)},
                "ratio": round(ratio, 2),
                "target": TARGET_VS_BASELINE,
                "pass": ratio >= TARGET_VS_BASELINE,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    log(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0 if hw.ok else 1


if __name__ == "__main__":
    sys.exit(main())
