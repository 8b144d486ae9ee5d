"""Extract: land what sources found in the raw zone, once per content hash.

Files are read and hashed (SHA-256) on worker threads, then compared with the
ledger in file order: the same bytes under a new name, or twice in one drop,
are recognised and skipped. New files are written byte-exact, from the bytes
already read, under put-once keys that carry the run id, then recorded in the
ledger in one transaction per source. A crash between the two leaves
unreferenced raw objects that no later step reads, never a half-known file.

New files are grouped into batches of at most `engine.batch_mb`: each batch
is staged, transformed and committed on its own, so memory does not grow
with the amount of input a run finds. A `files` source's new bytes are
spread evenly over as few batches as that limit allows (900 MB under a
512 MB limit make two batches of about 450 MB, not 512 and 388), so no
batch is bigger than it needs to be.

Extracting a `files` source is retried as a whole on a transient error
(an S3 listing or fetch that timed out or answered 5xx, a lake put that
did). That is safe to repeat: nothing reaches the ledger before every file
of the source is landed, so a retry starts from the same ledger; the files a
failed attempt already landed are found under their put-once keys (which
carry the run id, so only this run can have written them) with the same
content hash and taken as landed, not written twice. `sql` sources are
retried per table (`extract_sql`). `headwater run --source` restricts which
sources are extracted; pending batches of the others are still processed.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from headwater.errors import SourceError
from headwater.lake.raw import RawObject, land_once, read_for_landing
from headwater.parallel import ordered_parallel
from headwater.runs.context import RunContext, step
from headwater.runs.extract_sql import extract_sql
from headwater.runs.faults import checkpoint
from headwater.runs.summary import SourceSummary
from headwater.sources.base import Discovered, Source
from headwater.state import ledger

WORKERS = 4  # groups of files read and hashed at once
LANDERS = 2  # groups of files written into the raw zone at once
GROUP_FILES = 64  # local files a worker reads, hashes or lands in one task
GROUP_BYTES = 8 << 20  # and at most this many bytes of them (a bigger file goes alone)


@dataclass(frozen=True)
class _Read:
    item: Discovered
    sha256: str
    data: bytes | None  # the bytes, for files small enough to land from memory


BATCHES_PER_RUN = 1000  # batch ids are run_id * 1000 + k: unique, in arrival order


class _Batches:
    """Hands out batch ids: a new one whenever the current batch would pass `limit` bytes."""

    def __init__(self, run_id: int, limit: int) -> None:
        self.next_id = run_id * BATCHES_PER_RUN
        self.max_limit = self.limit = limit
        self.size = 0
        self.current: int | None = None
        self.source_start = self.next_id

    def start(self) -> None:
        """Each source starts its own batch."""
        self.current = None
        self.size = 0
        self.source_start = self.next_id
        self.limit = self.max_limit

    def spread(self, expected: int, largest: int) -> None:
        """Shrink the limit to what spreads a source's `expected` new bytes (its largest
        file `largest` bytes) evenly over the fewest batches the limit allows."""
        self.limit = self.max_limit
        if expected > self.max_limit:
            count = -(-expected // self.max_limit)
            # A batch closes before the file that would pass the limit: it ends
            # at least `largest` bytes under it, so leave that much room.
            self.limit = min(self.max_limit, -(-expected // count) + largest)

    def restart(self) -> None:
        """A retried source gets the batch ids its failed attempt took (and never recorded)."""
        self.next_id = self.source_start
        self.current = None
        self.size = 0

    def assign(self, size: int) -> int:
        if self.current is None or (self.size and self.size + size > self.limit):
            self.next_id += 1
            if self.next_id % BATCHES_PER_RUN == 0:
                raise SourceError(
                    f"more than {BATCHES_PER_RUN - 1} batches in one run; raise engine.batch_mb"
                )
            self.current, self.size = self.next_id, 0
        self.size += size
        return self.current


def extract(ctx: RunContext) -> None:
    batches = _Batches(ctx.run_id, ctx.project.config.engine.batch_mb << 20)
    for name, source in ctx.sources.items():
        if not ctx.extracts(name):
            continue
        with step(ctx, "extract", name) as record:
            batches.start()

            def attempt(name: str = name, source: Source = source) -> None:
                batches.restart()
                ctx.summary.sources[name] = SourceSummary()  # counts of this attempt only
                _extract_source(ctx, name, source, batches)

            ctx.retrier.call(attempt, "extract", name)
            found = ctx.summary.sources[name]
            record.rows_in, record.rows_out = found.files_found, found.files_new
    for name, reader in ctx.sql_sources.items():
        if not ctx.extracts(name):
            continue
        with step(ctx, "extract", name) as record:
            batches.start()
            extract_sql(ctx, name, reader, batches)
            found = ctx.summary.sources[name]
            record.rows_in, record.rows_out = found.files_found, found.files_new


def _extract_source(ctx: RunContext, name: str, source: Source, batches: _Batches) -> None:
    """Read and hash files on workers; decide in order; land on other workers, each read once.

    Which files are new is decided in file order (the same bytes twice in one drop
    land once, under the first name); the puts then run `LANDERS` at a time, and
    their ledger entries and batches are taken in file order as they finish. Local
    files go to the workers in groups (`_grouped`): a task per small file spends more
    on handing work between threads than on the file.
    """
    summary = ctx.summary.sources.setdefault(name, SourceSummary())
    found = source.discover()
    summary.files_found = len(found)
    known = ledger.known_hashes(ctx.db, name)
    seen = set(known.values())
    fresh = [item.size for item in found if item.name not in seen]  # new, as far as names tell
    batches.spread(sum(fresh), max(fresh, default=0))
    entries: list[ledger.LedgerEntry] = []
    landing: deque[tuple[Future[list[RawObject]], list[_Read]]] = deque()

    def landed() -> None:
        future, reads = landing.popleft()
        for raw, read in zip(future.result(), reads, strict=True):
            entries.append(
                ledger.LedgerEntry(
                    source=name,
                    content_hash=read.sha256,
                    name=read.item.name,
                    size=raw.size,
                    raw_key=raw.key,
                    batch=batches.assign(raw.size),
                    status=ledger.LANDED,
                    modified_at=read.item.modified_at,
                )
            )
            if len(entries) == 1:
                checkpoint("extract.after_first_put")

    def land(reads: list[_Read]) -> list[RawObject]:
        return [
            land_once(ctx.store, name, ctx.run_id, r.item.name, r.item.path, r.sha256, r.data)
            for r in reads
        ]

    with (
        ctx.progress.task(f"extract {name}", len(found)) as task,
        ThreadPoolExecutor(LANDERS, thread_name_prefix="headwater-land") as landers,
    ):
        for group in ordered_parallel(_read_group, _grouped(found), WORKERS):
            task.advance(len(group))
            new: list[_Read] = []
            for read in group:
                first = known.get(read.sha256)
                if first == read.item.name:
                    summary.files_unchanged += 1  # loaded before, still in the folder
                    continue
                if first is not None:
                    summary.files_duplicate += 1
                    summary.duplicates.append({"file": read.item.name, "same_content_as": first})
                    continue
                known[read.sha256] = read.item.name
                new.append(read)
            if new:
                landing.append((landers.submit(land, new), new))
            if len(landing) >= LANDERS:
                landed()
        while landing:
            landed()
    ledger.record_landed(ctx.db, entries)
    checkpoint("extract.after_ledger")
    summary.files_new = len(entries)
    summary.bytes_new = sum(e.size for e in entries)


def _grouped(found: list[Discovered]) -> Iterator[list[Discovered]]:
    """Local files in groups of up to `GROUP_FILES` files and `GROUP_BYTES` (a bigger file
    alone); a remote object alone, so that fetches still overlap."""
    group: list[Discovered] = []
    size = 0
    for item in found:
        remote = item.path is None
        if group and (remote or len(group) >= GROUP_FILES or size + item.size > GROUP_BYTES):
            yield group
            group, size = [], 0
        if remote:
            yield [item]
            continue
        group.append(item)
        size += item.size
    if group:
        yield group


def _read_group(items: list[Discovered]) -> list[_Read]:
    return [_read(item) for item in items]


def _read(item: Discovered) -> _Read:
    if item.path is None:
        assert item.fetch is not None, "a discovered item has a path or a fetch"
        data = item.fetch()
        return _Read(item, hashlib.sha256(data).hexdigest(), data)
    try:
        sha256, content = read_for_landing(item.path)
    except OSError as exc:
        raise SourceError(f"{item.path}: cannot read: {exc.strerror}") from None
    return _Read(item, sha256, content)
