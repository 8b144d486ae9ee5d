"""The file ledger: every file landed in the raw zone, by source and content hash.

A file's identity is its content hash, so the same bytes under a new name are
recognised and not loaded twice. A file moves through three statuses:
`landed` (in the raw zone), `staged` (parsed into its source table) and
`done` (every model has processed its batch).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from headwater.state.db import StateDB, files, utcnow

LANDED, STAGED, DONE = "landed", "staged", "done"


@dataclass(frozen=True)
class LedgerEntry:
    source: str
    content_hash: str
    name: str
    size: int
    raw_key: str
    batch: int
    status: str
    modified_at: dt.datetime | None = None


@dataclass(frozen=True)
class FileStats:
    rows_read: int
    rows_quarantined: int
    header_lines: int
    blank_lines: int


def known_hashes(db: StateDB, source: str) -> dict[str, str]:
    """Content hash -> the name the file had when it was first landed."""
    with db.engine.connect() as conn:
        query = sa.select(files.c.content_hash, files.c.name).where(files.c.source == source)
        return {r[0]: r[1] for r in conn.execute(query)}


def record_landed(db: StateDB, entries: Iterable[LedgerEntry]) -> None:
    rows = [
        {
            "source": e.source,
            "content_hash": e.content_hash,
            "name": e.name,
            "size": e.size,
            "modified_at": e.modified_at,
            "raw_key": e.raw_key,
            "batch": e.batch,
            "status": LANDED,
            "landed_at": utcnow(),
        }
        for e in entries
    ]
    if rows:
        with db.engine.begin() as conn:
            conn.execute(files.insert(), rows)


def pending(db: StateDB, source: str | None = None) -> list[LedgerEntry]:
    """Files not yet done, oldest batch first."""
    query = sa.select(files).where(files.c.status != DONE)
    if source is not None:
        query = query.where(files.c.source == source)
    with db.engine.connect() as conn:
        rows = conn.execute(query.order_by(files.c.batch, files.c.file_id)).all()
    return [
        LedgerEntry(
            r.source, r.content_hash, r.name, r.size, r.raw_key, r.batch, r.status, r.modified_at
        )
        for r in rows
    ]


def set_status(
    db: StateDB,
    source: str,
    hashes: Iterable[str],
    status: str,
    stats: dict[str, FileStats] | None = None,
) -> None:
    """Move files to `status`, recording their counts when given (one statement per batch)."""
    hashes = list(hashes)
    if not hashes:
        return
    with db.engine.begin() as conn:
        conn.execute(
            files.update()
            .where(files.c.source == source, files.c.content_hash.in_(hashes))
            .values(status=status)
        )
        if stats:
            rows = [
                {
                    "h": h,
                    "rows_read": s.rows_read,
                    "rows_quarantined": s.rows_quarantined,
                    "header_lines": s.header_lines,
                    "blank_lines": s.blank_lines,
                }
                for h, s in stats.items()
            ]
            statement = (
                files.update()
                .where(files.c.source == source, files.c.content_hash == sa.bindparam("h"))
                .values(
                    rows_read=sa.bindparam("rows_read"),
                    rows_quarantined=sa.bindparam("rows_quarantined"),
                    header_lines=sa.bindparam("header_lines"),
                    blank_lines=sa.bindparam("blank_lines"),
                )
            )
            conn.execute(statement, rows)


def set_quarantined(db: StateDB, source: str, batch: int, counts: dict[str, int]) -> None:
    """Per-file totals of quarantined rows of a batch (parser and model checks together)."""
    if not counts:
        return
    statement = (
        files.update()
        .where(
            files.c.source == source,
            files.c.batch == batch,
            files.c.name == sa.bindparam("file_name"),
        )
        .values(rows_quarantined=sa.bindparam("n"))
    )
    with db.engine.begin() as conn:
        conn.execute(statement, [{"file_name": k, "n": v} for k, v in counts.items()])


def set_batch_status(db: StateDB, batch: int, status: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(files.update().where(files.c.batch == batch).values(status=status))


def file_stats(db: StateDB, source: str, batch: int | None = None) -> list[dict[str, object]]:
    query = sa.select(files).where(files.c.source == source)
    if batch is not None:
        query = query.where(files.c.batch == batch)
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(files.c.file_id))]


def freshness(db: StateDB) -> dict[str, dict[str, object]]:
    """Per source: files landed, the latest landing time and the newest file."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                files.c.source,
                sa.func.count(),
                sa.func.max(files.c.landed_at),
                sa.func.max(files.c.modified_at),
                sa.func.sum(files.c.rows_read),
                sa.func.sum(files.c.rows_quarantined),
            ).group_by(files.c.source)
        ).all()
    return {
        r[0]: {
            "files": r[1],
            "last_landed_at": r[2],
            "newest_file_modified_at": r[3],
            "rows_read": r[4],
            "rows_quarantined": r[5],
        }
        for r in rows
    }


def seen_files(db: StateDB, source: str) -> set[tuple[str, int, dt.datetime | None]]:
    """(name, size, modified time) of every file of the source the ledger knows."""
    with db.engine.connect() as conn:
        query = sa.select(files.c.name, files.c.size, files.c.modified_at).where(
            files.c.source == source
        )
        return {(r[0], int(r[1]), r[2]) for r in conn.execute(query)}
