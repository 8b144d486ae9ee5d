"""Load: bring published models from the processed zone into the warehouse.

The watermark of each table (the last batch and snapshot it loaded) lives in
the warehouse and is updated in the load's own transaction. Only rows with a
newer `_batch` are read; `table` models are replaced whole when their
snapshot changed. With nothing new, the warehouse is not even opened for
writing, so a rerun changes nothing.

A transient error (the warehouse unreachable, a dropped connection, a lock
not granted in time, a deadlock) is retried from the start: the watermarks
are read again and the items rebuilt. That is safe because a load is one
transaction that moves the watermarks with the rows: a failed attempt
changed nothing, and if its COMMIT went through before the error (an answer
lost on the way back), the retry finds the new watermarks and loads only
what is still missing, which is nothing.
"""

from __future__ import annotations

from functools import partial

from headwater.errors import HeadwaterError
from headwater.runs.context import RunContext
from headwater.runs.faults import checkpoint
from headwater.runs.transform import unique_key_enforced
from headwater.warehouse import TARGETS
from headwater.warehouse.base import LoadItem, LoadMode, LoadResult, Target


def load(ctx: RunContext) -> bool:
    config = ctx.project.config.warehouse
    target = TARGETS[config.type](config, ctx.project.root, ctx.store)
    summary = ctx.summary.warehouse
    summary.target = config.type
    summary.location = target.location
    try:
        results = ctx.retrier.call(partial(_load_once, ctx, target), "load", config.type)
    except HeadwaterError as exc:
        summary.status = "failed"
        summary.error = str(exc)
        return False
    if results is None:
        summary.status = "unchanged"
        return True
    checkpoint("load.after_commit")
    summary.status = "loaded"
    for r in results:
        summary.tables[r.table] = {
            "mode": r.mode,
            "rows_loaded": r.rows_loaded,
            "rows_in_table": r.rows_in_table,
            "columns_added": r.columns_added,
        }
    return True


def _load_once(ctx: RunContext, target: Target) -> list[LoadResult] | None:
    """One attempt: what is new since the warehouse's watermarks, in one transaction.

    None when there is nothing to load (the warehouse is not opened for writing).
    """
    marks = target.watermarks()
    items: list[LoadItem] = []
    for name in ctx.dag.order:
        model = ctx.dag.models[name]
        if not model.config.publish or not ctx.tables.exists(name):
            continue
        snapshot = ctx.tables.current_snapshot_id(name)
        if snapshot is None:
            continue
        mark = marks.get(name)
        if mark is not None and mark.snapshot_id == snapshot:
            continue
        batches = ctx.tables.committed_batches(name)
        cfg = model.config
        mode: LoadMode
        if cfg.materialized == "table":
            mode, after = "replace", None
        else:
            # An append model whose key no new row can repeat appends: deleting the
            # new keys first would find none, at the cost of a join over the table.
            enforced = cfg.strategy == "append" and unique_key_enforced(model)
            mode = "merge" if cfg.unique_key and not enforced else "append"
            after = None if mark is None else mark.max_batch
        items.append(
            LoadItem(
                table=name,
                files=ctx.tables.data_files(name, after_batch=after),
                mode=mode,
                unique_key=list(cfg.unique_key),
                after_batch=after,
                max_batch=max(batches) if batches else 0,
                snapshot_id=snapshot,
            )
        )
    items = [i for i in items if i.files]
    if not items:
        return None
    with ctx.progress.task("load warehouse", None):
        return target.load(items, ctx.run_id, lambda: checkpoint("load.before_commit"))
