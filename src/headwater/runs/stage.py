"""Stage: parse a batch's raw files into the source's table in the processed zone.

The source parses landed raw objects into Arrow parts on worker threads;
each worker sends its parts through DuckDB once (its own cursor), which
applies the PII policies and writes Parquet into the processed zone (a part
with no protected column on a local lake is written by pyarrow as it is,
`headwater.lake.parquet`). Lines
the parser rejected go to the quarantine zone with file, line, rule and
reason. One Iceberg commit per source and batch makes the batch visible all
at once; a batch found already committed (the previous run crashed after
committing) is not parsed again.

`Lookahead` parses a source's next batch on a background thread alongside
the current one, while the run commits it and runs its models, so the cores
do not idle at each batch boundary (the two parses share the process's
parse slots, `headwater.sources.files`). What it writes is not committed
until that batch's turn; a run that stops first leaves those files
unreferenced, as an interrupted run does (`docs/lake.md`).
"""

from __future__ import annotations

import io
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.config import FilesSource
from headwater.errors import SourceError
from headwater.lake import parquet
from headwater.lake.store import Store
from headwater.lake.tables import scan_sql
from headwater.models.engine import Engine
from headwater.quality import pii
from headwater.runs import memory
from headwater.runs.context import RunContext
from headwater.runs.faults import checkpoint
from headwater.runs.summary import SourceSummary
from headwater.sources.base import ParsedPart, RawInput
from headwater.sql import literal, quote_ident
from headwater.state import ledger

LINEAGE = ["_file", "_file_hash", "_line"]
log = logging.getLogger("headwater.run")


def _read(store: Store, key: str, limit: int = -1) -> bytes | bytearray:
    with store.open(key) as handle:
        if limit < 0 and isinstance(handle, io.BufferedReader):
            return _whole_file(handle)
        return handle.read(limit)


def _whole_file(handle: io.BufferedReader) -> bytearray:
    """A local file's bytes in a buffer with room for one byte more: the parsers add the
    final newline a file lacks (as most log files do) in place, not by copying the file."""
    size = os.fstat(handle.fileno()).st_size
    buf = bytearray(size + 1)
    got = 0
    with memoryview(buf) as view:
        while got < size and (n := handle.readinto(view[got:size])):
            got += n
    del buf[got:]  # a shorter size keeps the allocation
    return buf


def _inputs(ctx: RunContext, entries: list[ledger.LedgerEntry]) -> list[RawInput]:
    """Landed files as the source reads them back: name, hash, size, a reader and an opener."""
    return [
        RawInput(
            e.name,
            e.content_hash,
            e.size,
            partial(_read, ctx.store, e.raw_key),
            partial(ctx.store.open, e.raw_key),
        )
        for e in entries
    ]


def _quarantine_select(source: str, batch: int, run_id: int) -> str:
    return (
        f"{batch}::BIGINT AS _batch, {run_id}::BIGINT AS run_id, 'source' AS stage, "
        f"{literal(source)} AS name, {literal(source)} AS source, _file AS file, "
        "_line AS line, rule, reason, NULL::VARCHAR AS record"
    )


@dataclass(frozen=True)
class _Written:
    path: str
    stats: dict[str, ledger.FileStats]
    size: int


WRITERS = 4  # DuckDB cursors a batch's parts are written through (at least the parse workers)


class _StoppedError(Exception):
    """A lookahead parse stopped because the run ended first."""


class _PartWriter:
    """Writes parsed parts on the worker that parsed them, each write on a cursor of its own.

    A part's rows go through the PII policies into one Parquet file of the
    source table; its rejects into one quarantine file. The cursors are made
    up front, on the run's thread, which may be using the run's connection
    later while a lookahead writes.
    """

    def __init__(
        self,
        ctx: RunContext,
        name: str,
        batch: int,
        config: FilesSource,
        sample: pii.LeakSample,
        cancel: threading.Event | None = None,
    ) -> None:
        self.ctx, self.name, self.batch, self.config, self.sample = ctx, name, batch, config, sample
        self.cancel = cancel
        self.memo = pii.HashMemo()  # names hashed once a batch, not once a part
        self._engines = [ctx.engine.cursor() for _ in range(WRITERS)]
        self._free: queue.SimpleQueue[Engine] = queue.SimpleQueue()
        for engine in self._engines:
            self._free.put(engine)

    def write(self, part: ParsedPart) -> _Written:
        if self.cancel is not None and self.cancel.is_set():
            raise _StoppedError
        engine = self._free.get()
        try:
            return self._write(part, engine)
        finally:
            self._free.put(engine)

    def _write(self, part: ParsedPart, engine: Engine) -> _Written:
        ctx, name, batch = self.ctx, self.name, self.batch
        self.sample.add(part.rows)
        columns = [c for c in part.rows.column_names if c not in LINEAGE]
        missing = sorted(set(self.config.pii) - set(part.columns or columns))
        if missing:
            names = pc.unique(part.rows.column("_file")).to_pylist()[:3]
            files = ", ".join(str(n) for n in names) or "(no rows)"
            raise SourceError(
                f"source {name!r}: sources.{name}.pii names column(s) {missing}, which the files "
                f"{files} do not have (their columns: {', '.join(columns)}); protected data "
                "would pass unprotected, so nothing was loaded"
            )
        path = ctx.store.writable_uri(ctx.tables.new_file_key(name, batch, ctx.run_id))
        plain = None
        if not path.startswith("s3://") and parquet.plain_types(part.rows.schema):
            # Hashed and dropped in Arrow, written by pyarrow; None when a mask applies.
            rows = part.rows.select([*LINEAGE, *columns])
            plain = pii.scrub_arrow(engine.conn, rows, self.config.pii, self.memo)
        if plain is not None:
            batches = pa.array(np.full(plain.num_rows, batch, dtype=np.int64))
            parquet.write_plain(plain.add_column(0, "_batch", batches), path, f"source {name}")
        else:
            scrubbed = pii.scrub_query("__hw_part", LINEAGE, columns, self.config.pii)
            engine.conn.register("__hw_part", part.rows)
            try:
                engine.write_parquet(
                    f"SELECT {batch}::BIGINT AS _batch, * FROM ({scrubbed})", path, f"source {name}"
                )
            finally:
                engine.conn.unregister("__hw_part")
        if part.rejects.num_rows:
            engine.conn.register("__hw_rejects", part.rejects)
            try:
                engine.write_parquet(
                    f"SELECT {_quarantine_select(name, batch, ctx.run_id)} FROM __hw_rejects",
                    ctx.quarantine.new_file(name, batch),
                    f"source {name}",
                )
            finally:
                engine.conn.unregister("__hw_rejects")
        stats = {
            sha: ledger.FileStats(c.rows_read, c.rows_rejected, c.header_lines, c.blank_lines)
            for sha, c in part.counts.items()
        }
        size = sum(c.size for c in part.counts.values())
        return _Written(path, stats, size)

    def close(self) -> None:
        for engine in self._engines:
            engine.close()


@dataclass(frozen=True)
class _Parsed:
    files: list[str]
    stats: dict[str, ledger.FileStats]
    sample: pii.LeakSample


def _parse(writer: _PartWriter, inputs: list[RawInput], total: int) -> _Parsed:
    """Parse a batch's files of one source into Parquet parts (not committed)."""
    ctx, name, batch = writer.ctx, writer.name, writer.batch
    files: list[str] = []
    stats: dict[str, ledger.FileStats] = {}
    with ctx.progress.task(f"parse {name} (batch {batch})", total) as task:
        try:
            for written in ctx.sources[name].parse(inputs, writer.write):
                files.append(written.path)
                for sha, count in written.stats.items():  # a large file may come in pieces
                    stats[sha] = _plus(stats.get(sha), count)
                task.advance(written.size)
                memory.release()  # what the part's parse freed, before the next one
        finally:
            writer.close()
    return _Parsed(files, stats, writer.sample)


def _parse_job(
    ctx: RunContext,
    name: str,
    batch: int,
    entries: list[ledger.LedgerEntry],
    cancel: threading.Event | None = None,
) -> Callable[[], _Parsed]:
    """The parse of a batch, ready to run on any thread: its quarantine folder emptied and
    its writer (with its cursors) made here, on the run's thread."""
    config = ctx.project.config.sources[name]
    assert isinstance(config, FilesSource)
    ctx.quarantine.reset(name, batch)
    writer = _PartWriter(ctx, name, batch, config, pii.LeakSample(config.pii), cancel)
    return partial(_parse, writer, _inputs(ctx, entries), sum(e.size for e in entries))


class Lookahead:
    """Parses the next batch of `files` sources on a background thread.

    `start` is called as the current batch begins; the next `stage_batch`
    of that source and batch takes the result (or its error) instead of parsing.
    `close` stops what is still running (at its next part) and waits for it.
    """

    def __init__(self) -> None:
        # two: the batch being staged may itself have come from here
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="headwater-lookahead")
        self._pending: dict[tuple[str, int], Future[_Parsed]] = {}
        self._cancel = threading.Event()

    def start(
        self, ctx: RunContext, name: str, batch: int, entries: list[ledger.LedgerEntry]
    ) -> None:
        if (name, batch) in self._pending or batch in ctx.tables.committed_batches(name):
            return
        job = _parse_job(ctx, name, batch, entries, self._cancel)
        self._pending[(name, batch)] = self._pool.submit(job)

    def take(self, name: str, batch: int) -> _Parsed | None:
        """The batch's parse if it was started here (waits for it; raises what it raised)."""
        future = self._pending.pop((name, batch), None)
        return None if future is None else future.result()

    def close(self) -> None:
        self._cancel.set()
        for future in self._pending.values():
            if not future.cancel():
                future.exception()  # wait; a stopped parse's files stay uncommitted
        self._pending.clear()
        self._pool.shutdown(wait=True)


def stage_batch(
    ctx: RunContext,
    name: str,
    batch: int,
    entries: list[ledger.LedgerEntry],
    lookahead: Lookahead | None = None,
) -> None:
    """Parse (or take the lookahead's parse of) and commit one source's files of one batch.

    A batch an earlier run committed is only recounted.
    """
    summary = ctx.summary.sources.setdefault(name, SourceSummary())
    if batch in ctx.tables.committed_batches(name):
        recounted = _recount(ctx, name, batch)
        ledger.set_status(ctx.db, name, [e.content_hash for e in entries], ledger.STAGED, recounted)
        _add_counts(ctx, summary, name, batch, recounted)
        return
    config = ctx.project.config.sources[name]
    assert isinstance(config, FilesSource)
    source = ctx.sources[name]
    parsed = None if lookahead is None else lookahead.take(name, batch)
    if parsed is None:
        parsed = _parse_job(ctx, name, batch, entries)()
    files, stats, sample = parsed.files, parsed.stats, parsed.sample
    ctx.leak_samples.setdefault(batch, {})[name] = sample
    conn = ctx.engine.conn
    if not files:
        files.append(_empty_file(ctx, name, batch, source.columns, config))
    sample.register(conn)
    # The source table itself holds only policy output; check that no dropped column survived.
    pii.check_leaks(conn, scan_sql(files), name, sample.dropped(), values=False)
    checkpoint("stage.after_parquet")
    before = _columns(ctx, name)
    ctx.tables.commit(name, files, mode="append", batch=batch, run_id=ctx.run_id)
    added = [c for c in _columns(ctx, name) or [] if before is not None and c not in before]
    if added:
        log.info("source %s: batch %d added column(s) %s", name, batch, ", ".join(added))
        summary.columns_added += [c for c in added if c not in summary.columns_added]
    checkpoint("stage.after_commit")
    ledger.set_status(ctx.db, name, [e.content_hash for e in entries], ledger.STAGED, stats)
    _add_counts(ctx, summary, name, batch, stats)


def _columns(ctx: RunContext, name: str) -> list[str] | None:
    """The source table's columns, or None before its first commit."""
    if not ctx.tables.exists(name):
        return None
    return [f.name for f in ctx.tables.load(name).schema().fields]


def _plus(a: ledger.FileStats | None, b: ledger.FileStats) -> ledger.FileStats:
    if a is None:
        return b
    return ledger.FileStats(
        a.rows_read + b.rows_read,
        a.rows_quarantined + b.rows_quarantined,
        a.header_lines + b.header_lines,
        a.blank_lines + b.blank_lines,
    )


def sample_batch(ctx: RunContext, name: str, batch: int, entries: list[ledger.LedgerEntry]) -> None:
    """Rebuild a batch's protected-value sample by parsing its raw files again.

    A batch staged by a run that then crashed has no sample in this run; the
    leak check downstream still needs one. Only the protected columns are kept.
    """
    config = ctx.project.config.sources[name]
    assert isinstance(config, FilesSource)
    sample = pii.LeakSample(config.pii)
    ctx.leak_samples.setdefault(batch, {})[name] = sample
    if not config.pii:
        return
    inputs = _inputs(ctx, entries)
    for _ in ctx.sources[name].parse(inputs, lambda part: sample.add(part.rows)):
        pass
    sample.register(ctx.engine.conn)


def _empty_file(
    ctx: RunContext, name: str, batch: int, columns: list[str] | None, config: FilesSource
) -> str:
    """A zero-row Parquet file, so an empty batch still commits (and is not retried)."""
    if columns is None:  # a CSV table has at least one column; a log's columns come with data
        columns = ["column_1"] if config.format == "csv" else []
    names = [c for c in columns if config.pii.get(c) is None or config.pii[c].policy != "drop"]
    cols = "".join(f", NULL::VARCHAR AS {quote_ident(c)}" for c in names)
    path = ctx.store.writable_uri(ctx.tables.new_file_key(name, batch, ctx.run_id))
    ctx.engine.write_parquet(
        f"SELECT NULL::BIGINT AS _batch, NULL::VARCHAR AS _file, NULL::VARCHAR AS _file_hash, "
        f"NULL::BIGINT AS _line{cols} WHERE false",
        path,
        f"source {name}",
    )
    return path


def _recount(ctx: RunContext, name: str, batch: int) -> dict[str, ledger.FileStats]:
    """Per-file counts of a batch committed by an earlier (crashed) run, from the lake."""
    files = ctx.tables.data_files(name, after_batch=batch - 1)
    rows = ctx.engine.execute(
        f"SELECT _file_hash, count(*) FROM {scan_sql(files)} WHERE _batch = {batch} GROUP BY 1"
    )
    rejected: list[tuple[Any, ...]] = []
    glob = ctx.quarantine.glob(name, batch)
    if ctx.quarantine.has(name, batch):
        rejected = ctx.engine.execute(f"SELECT q.file, count(*) FROM {scan_sql(glob)} q GROUP BY 1")
    by_name = {str(r[0]): int(r[1]) for r in rejected}
    names = {e["content_hash"]: e["name"] for e in ledger.file_stats(ctx.db, name, batch)}
    out: dict[str, ledger.FileStats] = {}
    loaded = {str(r[0]): int(r[1]) for r in rows}
    for sha, fname in names.items():
        rej = by_name.get(str(fname), 0)
        out[str(sha)] = ledger.FileStats(loaded.get(str(sha), 0) + rej, rej, 0, 0)
    return out


def _add_counts(
    ctx: RunContext,
    summary: SourceSummary,
    name: str,
    batch: int,
    stats: dict[str, ledger.FileStats],
) -> None:
    summary.files_read += len(stats)
    summary.rows_read += sum(s.rows_read for s in stats.values())
    summary.header_lines += sum(s.header_lines for s in stats.values())
    summary.blank_lines += sum(s.blank_lines for s in stats.values())
    if any(s.rows_quarantined for s in stats.values()):
        glob = ctx.quarantine.glob(name, batch)
        for rule, count in ctx.engine.execute(
            f"SELECT rule, count(*) FROM {scan_sql(glob)} GROUP BY 1 ORDER BY 1"
        ):
            summary.add_quarantine(str(rule), int(count))
