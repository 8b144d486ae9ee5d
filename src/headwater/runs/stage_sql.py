"""Stage a `sql` source: landed table extracts into their processed tables.

Each landed file holds one table's rows since its watermark. Rows are
appended to the processed table `<prefix><table>` with `_batch`, `_file` and
`_file_hash`, keeping one row per version: a row whose (key, cursor) is
already in the table (extracted again inside the overlap window, or by a
full refresh) is dropped here, so downstream models see each version once.
A table without a cursor is extracted whole each time; its processed table
is replaced by the latest extract.
"""

from __future__ import annotations

from typing import Literal

from headwater.errors import SourceError
from headwater.lake.tables import scan_sql
from headwater.runs.context import RunContext
from headwater.runs.faults import checkpoint
from headwater.runs.summary import SourceSummary
from headwater.sources.sql import SqlSourceReader, SqlTablePlan
from headwater.sql import literal, quote_ident
from headwater.state import ledger


def _plans(ctx: RunContext, name: str) -> dict[str, SqlTablePlan]:
    """The source's table plans (read from the catalog again for a batch of an earlier run)."""
    if name not in ctx.sql_plans:
        reader = ctx.sql_sources[name]
        assert isinstance(reader, SqlSourceReader)
        ctx.sql_plans[name] = {p.lake_name: p for p in reader.plan()}
    return ctx.sql_plans[name]


def processed_table(ctx: RunContext, name: str, entry: ledger.LedgerEntry) -> str:
    """The processed table a landed extract of sql source `name` feeds: `<prefix><table>`."""
    prefix = ctx.project.config.sources[name].prefix  # type: ignore[union-attr]
    return prefix + entry.name.removesuffix(".parquet")


def stage_sql_batch(
    ctx: RunContext, name: str, batch: int, entries: list[ledger.LedgerEntry]
) -> None:
    summary = ctx.summary.sources.setdefault(name, SourceSummary())
    plans = _plans(ctx, name)
    stats: dict[str, ledger.FileStats] = {}
    for entry in entries:
        table_name = processed_table(ctx, name, entry)
        plan = plans.get(table_name)
        if plan is None:
            raise SourceError(
                f"source {name!r}: landed file {entry.name} is for table {table_name!r}, which "
                "the source no longer extracts (check tables/include/exclude)"
            )
        if batch in ctx.tables.committed_batches(table_name):
            rows = ctx.engine.scalar_int(
                f"SELECT count(*) FROM {scan_sql(ctx.tables.data_files(table_name, batch - 1))} "
                f"WHERE _batch = {batch}"
            )
        else:
            rows = _stage_table(ctx, name, batch, entry, plan)
        stats[entry.content_hash] = ledger.FileStats(rows, 0, 0, 0)
        summary.rows_read += rows
        summary.files_read += 1
    ledger.set_status(ctx.db, name, [e.content_hash for e in entries], ledger.STAGED, stats)


def unseen_versions(ctx: RunContext, plan: SqlTablePlan, raw: str) -> str:
    """A WHERE clause keeping the rows of `raw` (alias `r`) whose (key, cursor) the
    processed table does not hold yet; empty when there is nothing to compare with."""
    if plan.cursor is None or not plan.key or not ctx.tables.exists(plan.lake_name):
        return ""
    files = ctx.tables.data_files(plan.lake_name)
    if not files:
        return ""
    version = [*plan.key, plan.cursor]
    match = " AND ".join(
        f"e.{quote_ident(c)} IS NOT DISTINCT FROM r.{quote_ident(c)}" for c in version
    )
    cursor = quote_ident(plan.cursor)
    # The oldest cursor value of the new rows, as a constant: row groups of the table
    # holding only older versions are skipped from their Parquet statistics.
    [(lowest, kind)] = ctx.engine.execute(
        f"SELECT min({cursor})::VARCHAR, typeof(min({cursor})) FROM {raw}"
    )
    if lowest is None:
        return ""
    return (
        f" WHERE NOT EXISTS (SELECT 1 FROM {scan_sql(files)} e WHERE {match} "
        f"AND e.{cursor} >= CAST({literal(str(lowest))} AS {kind}))"
    )


def _stage_table(
    ctx: RunContext, source: str, batch: int, entry: ledger.LedgerEntry, plan: SqlTablePlan
) -> int:
    raw = scan_sql([ctx.store.uri(entry.raw_key)])
    lineage = (
        f"{batch}::BIGINT AS _batch, {literal(entry.name)} AS _file, "
        f"{literal(entry.content_hash)} AS _file_hash"
    )
    body = f"SELECT {lineage}, r.* FROM {raw} r"
    mode: Literal["append", "replace"] = "append"
    if plan.cursor is None:
        mode = "replace"
    else:
        body += unseen_versions(ctx, plan, raw)
    path = ctx.store.writable_uri(ctx.tables.new_file_key(plan.lake_name, batch, ctx.run_id))
    rows = ctx.engine.write_parquet(body, path, f"source {source}, table {plan.name}")
    checkpoint("stage.after_parquet")
    ctx.tables.commit(plan.lake_name, [path], mode=mode, batch=batch, run_id=ctx.run_id)
    checkpoint("stage.after_commit")
    return rows
