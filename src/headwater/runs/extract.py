"""Extract: land what sources found in the raw zone, once per content hash.

Files are read and hashed (SHA-256) on worker threads, then compared with the
ledger in file order: the same bytes under a new name, or twice in one drop,
are recognised and skipped. New files are written byte-exact, from the bytes
already read, under put-once keys that carry the run id, then recorded in the
ledger in one transaction per source. A crash between the two leaves
unreferenced raw objects that no later step reads, never a half-known file.
"""

from __future__ import annotations

from dataclasses import dataclass

from headwater.errors import SourceError
from headwater.lake.raw import land_file, read_for_landing
from headwater.parallel import ordered_parallel
from headwater.runs.context import RunContext, step
from headwater.runs.faults import checkpoint
from headwater.runs.summary import SourceSummary
from headwater.sources.base import Discovered, Source
from headwater.state import ledger

WORKERS = 4


@dataclass(frozen=True)
class _Read:
    item: Discovered
    sha256: str
    data: bytes | None  # the bytes, for files small enough to land from memory


def extract(ctx: RunContext) -> None:
    for name, source in ctx.sources.items():
        with step(ctx, "extract", name) as record:
            _extract_source(ctx, name, source)
            found = ctx.summary.sources[name]
            record.rows_in, record.rows_out = found.files_found, found.files_new


def _extract_source(ctx: RunContext, name: str, source: Source) -> None:
    """Read and hash files on workers; decide and land them in order, each read once."""
    summary = ctx.summary.sources.setdefault(name, SourceSummary())
    found = source.discover()
    summary.files_found = len(found)
    known = ledger.known_hashes(ctx.db, name)
    entries: list[ledger.LedgerEntry] = []
    with ctx.progress.task(f"extract {name}", len(found)) as task:
        for read in ordered_parallel(_read, found, WORKERS):
            task.advance()
            first = known.get(read.sha256)
            if first == read.item.name:
                summary.files_unchanged += 1  # loaded before, still in the folder
                continue
            if first is not None:
                summary.files_duplicate += 1
                summary.duplicates.append({"file": read.item.name, "same_content_as": first})
                continue
            known[read.sha256] = read.item.name
            raw = land_file(
                ctx.store, name, ctx.run_id, read.item.name, read.item.path, read.sha256, read.data
            )
            entries.append(
                ledger.LedgerEntry(
                    source=name,
                    content_hash=read.sha256,
                    name=read.item.name,
                    size=raw.size,
                    raw_key=raw.key,
                    batch=ctx.run_id,
                    status=ledger.LANDED,
                    modified_at=read.item.modified_at,
                )
            )
            if len(entries) == 1:
                checkpoint("extract.after_first_put")
    ledger.record_landed(ctx.db, entries)
    checkpoint("extract.after_ledger")
    summary.files_new = len(entries)
    summary.bytes_new = sum(e.size for e in entries)


def _read(item: Discovered) -> _Read:
    try:
        sha256, data = read_for_landing(item.path)
    except OSError as exc:
        raise SourceError(f"{item.path}: cannot read: {exc.strerror}") from None
    return _Read(item, sha256, data)
