"""Transform and check: run every model over one batch, in DAG order.

What a model reads depends on its materialisation:
- `table` reads the full current state of its inputs and replaces its table;
- `incremental` reads only the batch's rows of sources and incremental
  models (rows whose `_batch` is the batch), plus the full state of `table`
  models, and appends to or merges into its table;
- `view` is computed for the model that reads it, once per batch and mode,
  and never stored;
- `ephemeral` is inlined into each model that reads it (a DuckDB view):
  never stored nor materialised, recomputed by each reader.

Every row a model writes gets `_batch`. Checks run before the commit;
quarantined rows go to the quarantine zone, an `error` check or a PII leak
keeps the model (and what reads it) from being committed. A model whose
table already has a snapshot for this batch was committed by a run that
crashed later, and is skipped. A model reading a source that has never
delivered (no table yet) waits, with what reads it: it is not run and does
not fail the batch; a `table` model catches up from the full state of its
inputs once they all exist, while an `incremental` model sees only the
batches that arrive after that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import duckdb

from headwater.config import CheckConfig, RelationshipsCheck, UniqueCheck
from headwater.errors import HeadwaterError, ModelError, TerminalError
from headwater.lake.tables import BATCH_COLUMN, scan_sql
from headwater.models.spec import Model
from headwater.quality import pii
from headwater.quality.checks import (
    CheckResult,
    CompiledCheck,
    compile_check,
    full_relation,
    key_hash_in,
    measure,
    quarantine,
)
from headwater.runs.context import RunContext, step
from headwater.runs.faults import checkpoint
from headwater.runs.summary import ModelSummary
from headwater.sql import literal, quote_ident
from headwater.state import ledger

DELTA, FULL = "delta", "full"


class CheckError(TerminalError):
    pass


@dataclass
class _BatchState:
    batch: int
    views: dict[tuple[str, str], str] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)  # an input has no table yet
    temp: list[str] = field(default_factory=list)  # engine tables and views to drop


def _summary(ctx: RunContext, model: Model) -> ModelSummary:
    return ctx.summary.models.setdefault(
        model.name, ModelSummary(materialized=model.config.materialized)
    )


def transform_batch(ctx: RunContext, batch: int) -> bool:
    """Run all models for one batch. True when every model committed (or was already)."""
    state = _BatchState(batch)
    dag = ctx.dag
    committed_any = False
    with ctx.progress.task(f"models (batch {batch})", len(dag.order)) as task:
        for name in dag.order:
            model = dag.models[name]
            summary = _summary(ctx, model)
            task.advance()
            blocked = sorted(r for r in model.refs if r in state.failed)
            if blocked:
                state.failed.add(name)
                summary.status = "skipped"
                summary.error = f"not run: {', '.join(blocked)} failed"
                continue
            absent = sorted(
                r
                for r in model.refs
                if r in state.waiting or (r in dag.sources and not ctx.tables.exists(r))
            )
            if absent:
                # An input that never delivered: nothing to compute from yet, and no failure.
                state.waiting.add(name)
                if summary.status == "pending":
                    summary.status = "waiting"
                    summary.error = f"not run: no data yet from {', '.join(absent)}"
                continue
            if model.config.materialized in ("view", "ephemeral"):
                if model.config.materialized == "ephemeral":
                    summary.status = "inlined"
                continue
            if batch in ctx.tables.committed_batches(name):
                summary.status = (
                    "already_committed" if summary.status == "pending" else summary.status
                )
                continue
            started = time.perf_counter()
            with step(ctx, "model", name, batch) as record:
                written, quarantined = summary.rows_written, summary.rows_quarantined
                try:
                    _run_model(ctx, state, model)
                except HeadwaterError as exc:
                    state.failed.add(name)
                    summary.status = "failed"
                    summary.error = str(exc)
                    record.fail(str(exc))
                else:
                    if summary.status == "waiting":
                        summary.error = None  # it waited in an earlier batch of this run
                    summary.status = "committed"
                    summary.batches.append(batch)
                    record.rows_out = summary.rows_written - written
                    record.rows_quarantined = summary.rows_quarantined - quarantined
                    if not committed_any:
                        committed_any = True
                        checkpoint("transform.after_first_model")
                finally:
                    summary.seconds += time.perf_counter() - started
    _drop_views(ctx, state)
    if state.failed:
        return False
    checkpoint("transform.before_batch_done")
    ledger.set_batch_status(ctx.db, batch, ledger.DONE)
    return True


def _drop_views(ctx: RunContext, state: _BatchState) -> None:
    for name in reversed(state.temp):
        ctx.engine.drop(name)


def _bind(
    ctx: RunContext, state: _BatchState, ref: str, mode: str, as_name: str | None = None
) -> None:
    """Make `ref` readable on the engine (by name, or `as_name`): the batch's rows or in full."""
    dag = ctx.dag
    name = as_name or ref
    if ref in dag.models and dag.models[ref].config.materialized == "ephemeral":
        # Inlined: a DuckDB view over the names its own inputs are bound to, in this mode.
        model = dag.models[ref]
        for inner in sorted(model.refs):
            _bind(ctx, state, inner, mode)
        ctx.engine.bind_sql(name, f"({model.sql})")
        return
    if ref in dag.models and dag.models[ref].config.materialized == "view":
        table = _view(ctx, state, dag.models[ref], mode)
        ctx.engine.bind_sql(name, f"SELECT * FROM {quote_ident(table)}")
        return
    incremental = ref in dag.sources or dag.models[ref].config.materialized == "incremental"
    if mode == DELTA and incremental:
        files = ctx.tables.data_files(ref, after_batch=state.batch - 1)
        ctx.engine.bind_parquet(
            name,
            files,
            where=f"{BATCH_COLUMN} = {state.batch}",
            empty_schema=partial(_schema_sql, ctx, ref),
        )
    else:
        ctx.engine.bind_parquet(
            name, ctx.tables.data_files(ref), empty_schema=partial(_schema_sql, ctx, ref)
        )


def _schema_sql(ctx: RunContext, name: str) -> str | None:
    """A zero-row relation with the table's columns, when no file matches a filter."""
    table = ctx.tables.load(name)
    files = [t.file.file_path for t in table.scan().plan_files()]
    return f"SELECT * FROM {scan_sql(files)} LIMIT 0" if files else None


def _view(ctx: RunContext, state: _BatchState, model: Model, mode: str) -> str:
    """Materialise a view for this batch and mode (once), with its checks applied."""
    key = (model.name, mode)
    if key in state.views:
        return state.views[key]
    summary = _summary(ctx, model)
    if model.name in state.failed:
        raise ModelError(f"reads view {model.name!r}, which failed: {summary.error}")
    table = f"__hw_view_{model.name}_{mode}"
    context = f"view {model.name} ({model.path.name})"
    try:
        _bind_check_targets(ctx, state, model)
        for ref in sorted(model.refs):
            _bind(ctx, state, ref, mode)
        with step(ctx, "view", model.name, state.batch) as record:
            # Quarantine records are written once, when the view is computed over the batch's rows.
            kept = _checked(ctx, state, model, model.sql, table, record=mode == DELTA)
            if kept is None:
                ctx.engine.materialize(table, model.sql, context)
                kept = table
            _measure(ctx, model, f"SELECT * FROM {kept}", record=mode == DELTA)
            record.detail = {"mode": mode}
    except HeadwaterError as exc:
        state.failed.add(model.name)
        if summary.status != "failed":
            summary.status, summary.error = "failed", str(exc)
        raise ModelError(f"reads view {model.name!r}, which failed: {exc}") from None
    state.views[key] = kept
    state.temp.extend([table, kept])
    summary.status = "computed"
    return kept


def _record_checks(
    ctx: RunContext, model: Model, results: list[CheckResult], quarantined: int
) -> None:
    """Add a batch's check results to the model's summary (counts summed over batches)."""
    summary = _summary(ctx, model)
    summary.rows_quarantined += quarantined
    totals = {c["name"]: c for c in summary.checks}
    for r in results:
        entry = totals.setdefault(r.name, {"name": r.name, "severity": r.severity, "failed": 0})
        entry["failed"] = int(entry["failed"]) + r.failed
    summary.checks = list(totals.values())


def _bind_check_targets(ctx: RunContext, state: _BatchState, model: Model) -> None:
    """Relationships checks read their target's full current state, under its own name."""
    for check in model.config.checks:
        if isinstance(check, RelationshipsCheck):
            target = check.relationships.to
            _bind(ctx, state, target, FULL, as_name=full_relation(target))


def _checks(model: Model) -> list[CheckConfig]:
    """The model's checks, plus `unique` on its unique_key when appending (keys stay unique)."""
    checks: list[CheckConfig] = list(model.config.checks)
    cfg = model.config
    appending = cfg.materialized == "incremental" and cfg.strategy == "append"
    if appending and cfg.unique_key and sorted(cfg.unique_key) not in _unique_keys(checks):
        checks.append(UniqueCheck(unique=list(cfg.unique_key)))
    return checks


def unique_key_enforced(model: Model) -> bool:
    """True when no row of an append model can repeat a unique_key value already in its table.

    Every `unique` check on the key stops the model (`error`) or quarantines the
    repeats, so the warehouse can append the new rows instead of merging them.
    """
    cfg = model.config
    key = sorted(cfg.unique_key)
    on_key = [c for c in _checks(model) if isinstance(c, UniqueCheck) and sorted(c.columns) == key]
    return bool(on_key) and all(c.severity != "warn" for c in on_key)


def _unique_keys(checks: list[CheckConfig]) -> list[list[str]]:
    """The key of each `unique` check, its columns sorted."""
    return [sorted(c.columns) for c in checks if isinstance(c, UniqueCheck)]


def _compiled(model: Model, existing: str | None = None) -> list[CompiledCheck]:
    return [c for check in _checks(model) for c in compile_check(check, existing)]


def _checked(
    ctx: RunContext,
    state: _BatchState,
    model: Model,
    sql: str,
    table: str,
    record: bool,
    existing: str | None = None,
) -> str | None:
    """Apply quarantine checks: the name of a view of the rows kept, or None without such checks."""
    checks = [c for c in _compiled(model, existing) if c.severity == "quarantine"]
    if not checks:
        return None
    names = [c for c, _ in ctx.engine.columns(f"({sql})", model.name)]
    public = [c for c in names if not c.startswith("_")]
    sources = ctx.dag.sources_of(model.name)
    source = literal(next(iter(sources))) if len(sources) == 1 else "NULL"
    fields = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in public)
    record_json = f"to_json(struct_pack({fields}))" if public else "NULL"
    columns = (
        f"{state.batch}::BIGINT AS _batch, {ctx.run_id}::BIGINT AS run_id, 'model' AS stage, "
        f"{literal(model.name)} AS name, {source}::VARCHAR AS source, "
        f"{'_file' if '_file' in names else 'NULL'}::VARCHAR AS file, "
        f"{'_line' if '_line' in names else 'NULL'}::BIGINT AS line, "
        "{rule} AS rule, {reason} AS reason, " + record_json + "::VARCHAR AS record"
    )
    target = None
    if record:
        ctx.quarantine.reset(model.name, state.batch)
        target = ctx.quarantine.new_file(model.name, state.batch)
    try:
        kept, results, quarantined = quarantine(
            ctx.engine.conn, sql, checks, target, columns, table
        )
    except duckdb.Error as exc:
        raise ModelError(f"model {model.name!r}: checks could not run: {exc}") from None
    if record:
        _record_checks(ctx, model, results, quarantined)
    return kept


def _measure(
    ctx: RunContext, model: Model, relation_sql: str, record: bool, existing: str | None = None
) -> None:
    """Run warn and error checks; an error check that fails stops the model."""
    checks = [c for c in _compiled(model, existing) if c.severity != "quarantine"]
    if not checks:
        return
    try:
        results = measure(ctx.engine.conn, relation_sql, checks)
    except duckdb.Error as exc:
        raise ModelError(f"model {model.name!r}: checks could not run: {exc}") from None
    if record:
        _record_checks(ctx, model, results, 0)
    errors = [r for r in results if r.severity == "error" and r.failed]
    if errors:
        failed = ", ".join(f"{r.name} ({r.failed} rows)" for r in errors)
        raise CheckError(f"model {model.name!r}: error-severity check failed: {failed}")


def _run_model(ctx: RunContext, state: _BatchState, model: Model) -> None:
    cfg = model.config
    mode = DELTA if cfg.materialized == "incremental" else FULL
    _bind_check_targets(ctx, state, model)
    for ref in sorted(model.refs):
        _bind(ctx, state, ref, mode)
    context = f"model {model.name} ({model.path.name})"
    columns = [c for c, _ in ctx.engine.columns(f"({model.sql})", context)]
    body = (
        f"SELECT * REPLACE ({state.batch}::BIGINT AS _batch) FROM ({model.sql})"
        if BATCH_COLUMN in columns
        else f"SELECT *, {state.batch}::BIGINT AS _batch FROM ({model.sql})"
    )
    summary = _summary(ctx, model)
    exists = ctx.tables.exists(model.name)
    existing = None
    existing_files: list[str] = []
    if cfg.materialized == "incremental" and cfg.strategy == "append" and exists:
        existing_files = ctx.tables.data_files(model.name)
        ctx.engine.bind_parquet(
            "__hw_existing",
            existing_files,
            empty_schema=partial(_schema_sql, ctx, model.name),
        )
        existing = "__hw_existing"
    out_table = f"__hw_out_{model.name}"
    kept = _checked(ctx, state, model, body, out_table, record=True, existing=existing)
    output = body if kept is None else f"SELECT * FROM {kept}"
    path = ctx.store.writable_uri(ctx.tables.new_file_key(model.name, state.batch, ctx.run_id))
    commit_mode: Literal["append", "replace"]
    if cfg.materialized == "incremental" and cfg.strategy == "merge":
        # The incoming rows, computed once: checked, counted, then merged into the table.
        incoming = f"__hw_in_{model.name}"
        rows = ctx.engine.materialize(incoming, output, context)
        _measure(ctx, model, f"SELECT * FROM {incoming}", record=True)
        ctx.engine.write_parquet(
            _merge_sql(ctx, model, f"SELECT * FROM {incoming}", exists), path, context
        )
        ctx.engine.drop(incoming)
        commit_mode = "replace"
    else:
        rows = ctx.engine.write_parquet(output, path, context)
        if existing is not None and existing_files:
            ctx.engine.bind_parquet(
                "__hw_existing",
                _overlapping(ctx, model, scan_sql([path])),
                where=_colliding(model, scan_sql([path])),
                empty_schema=partial(_schema_sql, ctx, model.name),
            )
        _measure(ctx, model, f"SELECT * FROM {scan_sql([path])}", record=True, existing=existing)
        commit_mode = "append" if cfg.materialized == "incremental" else "replace"
    samples = ctx.leak_samples.get(state.batch, {})
    dropped = set().union(*(s.dropped() for s in samples.values())) if samples else set()
    pii.check_leaks(ctx.engine.conn, scan_sql([path]), model.name, dropped)
    ctx.tables.commit(model.name, [path], mode=commit_mode, batch=state.batch, run_id=ctx.run_id)
    # Counted once committed: a model that failed wrote nothing anyone can read.
    summary.rows_written = (
        summary.rows_written + rows if cfg.materialized == "incremental" else rows
    )
    ctx.engine.drop(f"{out_table}_kept")
    ctx.engine.drop(out_table)


# Key types whose bounds Iceberg keeps in its manifests, to skip earlier files by key range.
RANGE_KEY = frozenset(
    ["BIGINT", "INTEGER", "SMALLINT", "TINYINT", "VARCHAR", "DATE", "TIMESTAMP", "DECIMAL"]
)


def _colliding(model: Model, new_rows: str) -> str:
    """A filter keeping only the earlier rows that can collide with `new_rows`: those whose
    key's hash, for some `unique` check, is among the new rows' key hashes (equal keys have
    equal hashes, so no collision is lost; the check's exact `IN` decides).

    The hash table of each `IN` holds the new rows' key hashes (a batch), and the earlier
    rows stream past it, so memory follows the batch, not the table: the check's own `IN`
    then builds on the few rows left. No other condition goes with it: a range filter on
    the scan made DuckDB's estimate of the earlier rows small enough for it to build its
    hash table on them instead (the whole table in memory: 755 MB against 91 MB at 10M
    earlier items); `_overlapping` skips files by key range before the scan instead.
    """
    terms = [key_hash_in(cols, new_rows) for cols in _unique_keys(_checks(model))]
    return " OR ".join(terms) if terms else "false"


def _overlapping(ctx: RunContext, model: Model, new_rows: str) -> list[str]:
    """The table's files that may hold a key of `new_rows`.

    When the only `unique` check is on the unique_key, files whose key bounds (Iceberg
    statistics) miss the new rows' key ranges are skipped: with keys that grow over
    time, the earlier batches' files. Only key columns of a plain type that hold no
    NULL in the new rows count (a NULL-free key part can only equal a value in its
    range); otherwise every file is read.
    """
    if _unique_keys(_checks(model)) != [sorted(model.config.unique_key)]:
        return ctx.tables.data_files(model.name)
    columns = model.config.unique_key
    stats = ", ".join(
        f"count(*) - count({c}), min({c}), max({c}), typeof(min({c}))"
        for c in map(quote_ident, columns)
    )
    context = f"model {model.name}: key ranges of the new rows"
    [row] = ctx.engine.execute(f"SELECT count(*), {stats} FROM {new_rows}", context)
    if not row[0]:
        return []  # no new rows: nothing can collide
    ranges: dict[str, tuple[Any, Any]] = {}
    for i, column in enumerate(columns):
        nulls, lo, hi, kind = row[1 + 4 * i : 5 + 4 * i]
        plain = isinstance(kind, str) and kind.split("(")[0] in RANGE_KEY
        if nulls == 0 and lo is not None and hi is not None and plain:
            ranges[column] = (lo, hi)
    return ctx.tables.files_overlapping(model.name, ranges)


def _merge_sql(ctx: RunContext, model: Model, incoming: str, exists: bool) -> str:
    """The table after merging `incoming` on the unique key (incoming wins unless `latest_by`)."""
    cfg = model.config
    key = ", ".join(quote_ident(k) for k in cfg.unique_key)
    order = []
    if cfg.latest_by:
        order.append(f"{quote_ident(cfg.latest_by)} DESC NULLS LAST")
    order.append("__hw_incoming DESC")
    if exists:
        ctx.engine.bind_parquet(
            "__hw_current",
            ctx.tables.data_files(model.name),
            empty_schema=partial(_schema_sql, ctx, model.name),
        )
        union = (
            f"SELECT *, 1 AS __hw_incoming FROM ({incoming}) "
            "UNION ALL BY NAME SELECT *, 0 AS __hw_incoming FROM __hw_current"
        )
    else:
        union = f"SELECT *, 1 AS __hw_incoming FROM ({incoming})"
    return (
        f"SELECT * EXCLUDE (__hw_incoming) FROM ({union}) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {', '.join(order)}) = 1"
    )
