"""Extract a `sql` source: each table's new rows into the raw zone as one Parquet file.

Per table: the rows with `cursor >= watermark - overlap` (all rows on the
first run, on `--full-refresh TABLE`, or for a table without a cursor) are
written by the source into a local Parquet file, hashed, and landed under a
put-once key `raw/<source>/run=<run id>/<table>.parquet`. A file whose bytes
were landed before (nothing changed since) is skipped, and so is one whose
rows all lie at or below the watermark (read again inside the overlap
window) when the processed table already holds every one of those versions;
a cursor past the watermark is a new version, landed without looking. The
ledger records the landed files in one transaction; only then do the
watermarks move, so a crash never advances a watermark past rows the lake
does not hold.

Transient errors (the database refused or dropped a connection, timed out,
a deadlock) are retried: reading the catalog as one step, then each table on
its own, with a new connection after a failure. A retried table is safe to
repeat: nothing of it reaches the ledger or the watermarks until every table
is done, and if the failed attempt got as far as landing its file (a put
whose answer was lost), the retry finds the same bytes under the same key
and takes them as landed (`lake.raw.land_once`).
"""

from __future__ import annotations

import hashlib
import shutil
from functools import partial
from typing import Protocol

import duckdb

from headwater.lake.raw import land_once
from headwater.lake.tables import scan_sql
from headwater.runs.context import RunContext
from headwater.runs.faults import checkpoint
from headwater.runs.stage_sql import unseen_versions
from headwater.runs.summary import SourceSummary
from headwater.sources.sql import SqlSourceReader, SqlTablePlan
from headwater.state import ledger, watermarks


class BatchAssigner(Protocol):
    def assign(self, size: int) -> int: ...


def newer(value: str, than: str | None) -> bool:
    """Whether watermark `value` is past `than` (numbers as numbers, timestamps as ISO text)."""
    if than is None:
        return True
    if value.lstrip("-").isdigit() and than.lstrip("-").isdigit():
        return int(value) > int(than)
    return value > than


def table_file(table: str) -> str:
    return f"{table}.parquet"


def extract_sql(
    ctx: RunContext, name: str, reader: SqlSourceReader, batches: BatchAssigner
) -> None:
    summary = ctx.summary.sources.setdefault(name, SourceSummary())
    reader.preload()
    try:
        _extract(ctx, name, reader, batches, summary)
    finally:
        reader.close()


def _extract(
    ctx: RunContext,
    name: str,
    reader: SqlSourceReader,
    batches: BatchAssigner,
    summary: SourceSummary,
) -> None:
    plans = ctx.retrier.call(reader.plan, "extract", name)
    ctx.sql_plans[name] = {p.lake_name: p for p in plans}
    summary.files_found = len(plans)
    marks = watermarks.get(ctx.db, name)
    known = ledger.known_hashes(ctx.db, name)
    scratch = ctx.project.tmp_dir / f"run-{ctx.run_id}" / "extract" / name
    scratch.mkdir(parents=True, exist_ok=True)
    entries: list[ledger.LedgerEntry] = []
    moved: dict[str, str] = {}
    conn: duckdb.DuckDBPyConnection | None = None

    def attempt(table: SqlTablePlan) -> tuple[ledger.LedgerEntry | None, str | None]:
        nonlocal conn
        if conn is None:
            conn = reader.connect()
        try:
            return _extract_table(ctx, name, reader, conn, table, marks, known, batches)
        except Exception:
            conn.close()  # it may be broken: the next attempt connects again
            conn = None
            raise

    try:
        with ctx.progress.task(f"extract {name}", len(plans)) as task:
            for table in plans:
                task.advance()
                entry, mark = ctx.retrier.call(
                    partial(attempt, table), "extract", f"{name}.{table.name}"
                )
                if entry is not None:
                    entries.append(entry)
                    if len(entries) == 1:
                        checkpoint("extract.after_first_put")
                if mark is not None and newer(mark, marks.get(table.name)):
                    moved[table.name] = mark
    finally:
        if conn is not None:
            conn.close()
        shutil.rmtree(scratch, ignore_errors=True)
    ledger.record_landed(ctx.db, entries)
    checkpoint("extract.after_ledger")
    for table_name, value in moved.items():
        watermarks.put(ctx.db, name, table_name, value)
    summary.files_new = len(entries)
    summary.bytes_new = sum(e.size for e in entries)


def _extract_table(
    ctx: RunContext,
    name: str,
    reader: SqlSourceReader,
    conn: duckdb.DuckDBPyConnection,
    table: SqlTablePlan,
    marks: dict[str, str],
    known: dict[str, str],
    batches: BatchAssigner,
) -> tuple[ledger.LedgerEntry | None, str | None]:
    summary = ctx.summary.sources[name]
    full = table.name in ctx.full_refresh or table.lake_name in ctx.full_refresh
    since = None if full or table.cursor is None else marks.get(table.name)
    out = ctx.project.tmp_dir / f"run-{ctx.run_id}" / "extract" / name / table_file(table.name)
    got = reader.extract(conn, table, since, out)
    if got.rows == 0:
        summary.files_unchanged += 1
        return None, None
    if since is not None and not (got.max_cursor and newer(got.max_cursor, since)):
        # Every row is at or below the watermark: rows read again inside the overlap window
        # are not news, so land only if some version is missing from the processed table.
        # (A cursor past the watermark is a version no extract has seen: no need to look.)
        extracted = scan_sql([str(out)])
        fresh = ctx.engine.scalar_int(
            f"SELECT count(*) FROM {extracted} r{unseen_versions(ctx, table, extracted)}"
        )
        if fresh == 0:
            summary.files_unchanged += 1
            return None, got.max_cursor
    data = out.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha in known:
        summary.files_unchanged += 1  # the same rows as an earlier extract: nothing new
        return None, got.max_cursor
    raw = land_once(ctx.store, name, ctx.run_id, table_file(table.name), None, sha, data)
    known[sha] = table_file(table.name)  # only once landed: a retried attempt lands it again
    entry = ledger.LedgerEntry(
        source=name,
        content_hash=sha,
        name=table_file(table.name),
        size=raw.size,
        raw_key=raw.key,
        batch=batches.assign(raw.size),
        status=ledger.LANDED,
    )
    return entry, got.max_cursor
