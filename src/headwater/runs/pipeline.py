"""One run: lock, record, extract, then stage and transform each pending batch, load, record.

`plan()` validates everything a run needs (project file, model files, the
DAG, source folders, the PII secret) without touching any data: a
`ConfigError` from it means nothing was written anywhere.

Batches are processed oldest first. A batch is the set of files one run
landed; a batch left pending by a crashed or failed run is finished by the
next run before newer ones, so models see their input in arrival order.

Steps that talk to other systems (extracting each source, or each table of a
`sql` source, and the warehouse load) are retried on transient errors as
`retries` in the project file says (`runs/retry.py`); every failed attempt is
in the summary's `attempts`. `sources` restricts which sources are extracted;
staging, models and the load run as always, so pending batches of the other
sources are still processed.
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable

from headwater.config import SqlSource
from headwater.errors import ConfigError, HeadwaterError
from headwater.lake.quarantine import QuarantineZone
from headwater.lake.tables import Tables, scan_sql
from headwater.models.engine import Engine
from headwater.observe.logs import bind_run
from headwater.project import Project
from headwater.quality import pii
from headwater.runs import memory
from headwater.runs.context import RunContext, step
from headwater.runs.extract import extract
from headwater.runs.load import load
from headwater.runs.lock import run_lock
from headwater.runs.plan import Plan, plan
from headwater.runs.progress import Progress, Silent
from headwater.runs.retry import Attempt, Retrier
from headwater.runs.stage import Lookahead, sample_batch, stage_batch
from headwater.runs.stage_sql import processed_table, stage_sql_batch
from headwater.runs.summary import RunSummary, SourceSummary
from headwater.runs.transform import transform_batch
from headwater.state import ledger
from headwater.state.db import StateDB, utcnow
from headwater.state.runs import abandon_stale_runs, finish_run, start_run

log = logging.getLogger("headwater.run")


def run(
    project: Project,
    *,
    trigger: str = "manual",
    progress: Progress | None = None,
    full_refresh: frozenset[str] = frozenset(),
    sources: frozenset[str] | None = None,
    retry_sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Run the project once. Config errors raise before anything is touched.

    `full_refresh` names sql-source tables to extract whole, ignoring their watermark.
    `sources` names the sources to extract (None: all of them). `retry_sleep` waits
    between attempts of a retried step (a scheduler may pass one that a shutdown cuts short).
    """
    the_plan = plan(project)
    configured = project.config.sources
    if sources is not None:
        unknown_sources = sorted(sources - set(configured))
        if unknown_sources:
            raise ConfigError(
                f"source to extract {unknown_sources[0]!r}: no source of that name in "
                f"{project.file} (sources: {', '.join(sorted(configured)) or 'none'})"
            )
    sql = [
        c
        for n, c in configured.items()
        if isinstance(c, SqlSource) and (sources is None or n in sources)
    ]
    known = {t for c in sql for t in (*c.tables, *(c.prefix + t for t in c.tables))}
    unknown = sorted(full_refresh - known)
    if unknown and (not sql or not any(c.discovers for c in sql)):
        raise ConfigError(
            f"--full-refresh {unknown[0]}: no sql source "
            + ("" if sources is None else "extracted by this run ")
            + "has a table of that name"
        )
    progress = progress or Silent()
    with run_lock(project.home, project.state_url, project.config.name):
        db = StateDB.open(project.state_url)
        try:
            recovered = abandon_stale_runs(db)
            run_id = start_run(db, trigger)
            with bind_run(run_id, project.config.name):
                summary = RunSummary(
                    run_id=run_id, project=project.config.name, started_at=utcnow()
                )
                summary.recovered_runs = recovered
                summary.only_sources = None if sources is None else sorted(sources)
                retrier = Retrier(
                    project.config.retries, _record_attempt(summary), sleep=retry_sleep
                )
                return _record(the_plan, db, run_id, progress, summary, full_refresh, retrier)
        finally:
            db.dispose()


def _record_attempt(summary: RunSummary) -> Callable[[Attempt], None]:
    def record(attempt: Attempt) -> None:
        summary.attempts.append(attempt.to_json())

    return record


def _record(
    the_plan: Plan,
    db: StateDB,
    run_id: int,
    progress: Progress,
    summary: RunSummary,
    full_refresh: frozenset[str],
    retrier: Retrier,
) -> RunSummary:
    """Run, then record the outcome in the state database (a bug is recorded, then raised)."""
    error: str | None = None
    try:
        ok = _run(the_plan, db, run_id, progress, summary, full_refresh, retrier)
        summary.status = "success" if ok else "failed"
        if not ok:
            error = _first_error(summary)
    except HeadwaterError as exc:
        summary.status, error = "failed", str(exc)
    except Exception as exc:  # a bug: record it, then let it surface
        summary.status, error = "failed", f"internal error: {exc!r}"
        summary.error = error
        summary.finished_at = utcnow()
        finish_run(db, run_id, "failed", summary.to_json(), traceback.format_exc())
        raise
    summary.error = error
    summary.finished_at = utcnow()
    finish_run(db, run_id, summary.status, summary.to_json(), error)
    return summary


def _first_error(summary: RunSummary) -> str:
    for name, model in summary.models.items():
        if model.status == "failed":
            return f"model {name}: {model.error}"
    if summary.warehouse.error:
        return summary.warehouse.error
    return "run failed"


def _run(
    the_plan: Plan,
    db: StateDB,
    run_id: int,
    progress: Progress,
    summary: RunSummary,
    full_refresh: frozenset[str],
    retrier: Retrier,
) -> bool:
    project = the_plan.project
    store = project.open_store()
    tables = Tables.open(project.state_url, store)
    engine = Engine.open(project.config.engine, project.tmp_dir / f"run-{run_id}", store)
    secret = project.config.pii.secret
    if secret is not None:
        pii.install_key(engine.conn, secret.get_secret_value())
    ctx = RunContext(
        project=project,
        db=db,
        store=store,
        tables=tables,
        quarantine=QuarantineZone(store),
        engine=engine,
        sources=the_plan.sources,
        dag=the_plan.dag,
        run_id=run_id,
        progress=progress,
        summary=summary,
        leak_samples={},
        sql_sources=the_plan.sql_sources,
        full_refresh=full_refresh,
        only_sources=None if summary.only_sources is None else frozenset(summary.only_sources),
        retrier=retrier,
    )
    for name in [*the_plan.sources, *the_plan.sql_sources]:
        summary.sources.setdefault(name, SourceSummary())
    try:
        extract(ctx)
        ok = True
        by_batch: dict[int, dict[str, list[ledger.LedgerEntry]]] = {}
        for entry in ledger.pending(db):
            by_batch.setdefault(entry.batch, {}).setdefault(entry.source, []).append(entry)
        order = sorted(by_batch)
        lookahead = Lookahead()
        try:
            for i, batch in enumerate(order):
                summary.batches.append(batch)
                following = order[i + 1] if i + 1 < len(order) else None
                upcoming = None if following is None else (following, by_batch[following])
                if not _process_batch(ctx, batch, by_batch[batch], lookahead, upcoming):
                    ok = False
                    break
        finally:
            lookahead.close()
        with step(ctx, "load", project.config.warehouse.type) as record:
            loaded = load(ctx)
            record.rows_out = sum(t["rows_loaded"] for t in summary.warehouse.tables.values())
            if not loaded:
                record.fail(summary.warehouse.error or "load failed")
        return ok and loaded
    finally:
        engine.close()
        tables.close()
        shutil.rmtree(project.tmp_dir / f"run-{run_id}", ignore_errors=True)


def _process_batch(
    ctx: RunContext,
    batch: int,
    entries: dict[str, list[ledger.LedgerEntry]],
    lookahead: Lookahead,
    upcoming: tuple[int, dict[str, list[ledger.LedgerEntry]]] | None,
) -> bool:
    """Stage each source's files of the batch, run the models, account for quarantine.

    The `files` sources of the `upcoming` batch start parsing on the lookahead
    first, to keep the cores busy while this one ends, commits and its models run.
    """
    if upcoming is not None:
        following, waiting = upcoming
        for name, files in waiting.items():
            if name not in ctx.sql_sources and _has_landed(files):
                lookahead.start(ctx, name, following, files)
    pii.reset_sample(ctx.engine.conn)
    for name, files in entries.items():
        summary = ctx.summary.sources[name]
        if name in ctx.sql_sources:
            if _has_landed(files):
                with step(ctx, "stage", name, batch) as record:
                    read = summary.rows_read
                    stage_sql_batch(ctx, name, batch, files)
                    record.rows_in = summary.rows_read - read
            continue
        if _has_landed(files):
            with step(ctx, "stage", name, batch) as record:
                read, quarantined = summary.rows_read, summary.rows_quarantined
                stage_batch(ctx, name, batch, files, lookahead)
                record.rows_in = summary.rows_read - read
                record.rows_quarantined = summary.rows_quarantined - quarantined
        if name not in ctx.leak_samples.get(batch, {}):
            # Staged by an earlier run: rebuild the protected values from raw data.
            sample_batch(ctx, name, batch, files)
    memory.release()  # what parsing freed, before DuckDB takes memory for the models
    transformed = transform_batch(ctx, batch)
    # Model rows name the processed table they came from; a sql source feeds several.
    owners = {
        processed_table(ctx, name, entry): name
        for name, files in entries.items()
        if name in ctx.sql_sources
        for entry in files
    }
    _account_quarantine(ctx, batch, owners)
    ctx.leak_samples.pop(batch, None)
    return transformed


def _has_landed(files: list[ledger.LedgerEntry]) -> bool:
    """Whether some of a source's files of a batch still have to be staged."""
    return any(e.status == ledger.LANDED for e in files)


def _account_quarantine(ctx: RunContext, batch: int, owners: dict[str, str]) -> None:
    """Count the batch's quarantined rows: per file in the ledger, per rule in the summary.

    Parser rejects were counted when the batch was staged; rows quarantined
    by model checks are added to the source each came from. The ledger gets
    per-file totals of both, read back from the quarantine zone.
    """
    names = [n for n in (*ctx.dag.sources, *ctx.dag.order) if ctx.quarantine.has(n, batch)]
    if not names:
        return
    records = scan_sql(ctx.quarantine.glob(batch=batch))
    by_rule = ctx.engine.execute(
        f"SELECT source, rule, count(*) FROM {records} "
        "WHERE stage = 'model' AND source IS NOT NULL GROUP BY ALL ORDER BY ALL"
    )
    for source, rule, count in by_rule:
        summary = ctx.summary.sources.get(owners.get(str(source), str(source)))
        if summary is not None:
            summary.add_quarantine(str(rule), int(count))
    # A line counts once per file, whatever (and however many) rules it broke.
    by_file = ctx.engine.execute(
        f"SELECT source, file, count(DISTINCT line) FROM {records} "
        "WHERE source IS NOT NULL AND file IS NOT NULL GROUP BY ALL"
    )
    per_file: dict[str, dict[str, int]] = {}
    for source, file, lines in by_file:
        per_file.setdefault(owners.get(str(source), str(source)), {})[str(file)] = int(lines)
    for source, counts in per_file.items():
        ledger.set_quarantined(ctx.db, source, batch, counts)
