"""Extract: land what sources found in the raw zone, once per content hash.

Files are hashed (SHA-256) and compared with the ledger: the same bytes under
a new name, or twice in one drop, are recognised and skipped. New files are
copied byte-exact under put-once keys that carry the run id, then recorded
in the ledger in one transaction per source. A crash between the two leaves
unreferenced raw objects that no later step reads, never a half-known file.
"""

from __future__ import annotations

from dataclasses import dataclass

from headwater.lake.raw import land_file, sha256_file
from headwater.parallel import ordered_parallel
from headwater.runs.context import RunContext
from headwater.runs.faults import checkpoint
from headwater.runs.progress import Task
from headwater.runs.summary import SourceSummary
from headwater.sources.base import Discovered
from headwater.state import ledger

WORKERS = 4


@dataclass(frozen=True)
class _Hashed:
    item: Discovered
    sha256: str


def extract(ctx: RunContext) -> None:
    for name, source in ctx.sources.items():
        summary = ctx.summary.sources.setdefault(name, SourceSummary())
        found = source.discover()
        summary.files_found = len(found)
        known = ledger.known_hashes(ctx.db, name)
        with ctx.progress.task(f"hash {name}", len(found)) as task:

            def digest(item: Discovered, task: Task = task) -> _Hashed:
                result = _Hashed(item, sha256_file(item.path))
                task.advance()
                return result

            hashed = list(ordered_parallel(digest, found, WORKERS))
        new: list[_Hashed] = []
        for h in hashed:
            first = known.get(h.sha256)
            if first == h.item.name:
                summary.files_unchanged += 1  # loaded before, still in the folder
                continue
            if first is not None:
                summary.files_duplicate += 1
                summary.duplicates.append({"file": h.item.name, "same_content_as": first})
                continue
            known[h.sha256] = h.item.name
            new.append(h)
        entries: list[ledger.LedgerEntry] = []
        with ctx.progress.task(f"land {name}", len(new)) as task:

            def land(h: _Hashed, source: str = name, task: Task = task) -> ledger.LedgerEntry:
                raw = land_file(ctx.store, source, ctx.run_id, h.item.name, h.item.path, h.sha256)
                task.advance()
                return ledger.LedgerEntry(
                    source=source,
                    content_hash=h.sha256,
                    name=h.item.name,
                    size=raw.size,
                    raw_key=raw.key,
                    batch=ctx.run_id,
                    status=ledger.LANDED,
                    modified_at=h.item.modified_at,
                )

            for entry in ordered_parallel(land, new, WORKERS):
                entries.append(entry)
                if len(entries) == 1:
                    checkpoint("extract.after_first_put")
        ledger.record_landed(ctx.db, entries)
        checkpoint("extract.after_ledger")
        summary.files_new = len(entries)
        summary.bytes_new = sum(e.size for e in entries)
