"""Watermarks of incremental sources: per source and table, the highest cursor value seen.

A watermark is small and inspectable (`headwater state show`): a text value,
an ISO timestamp or a number. It is saved only after the rows it covers were
written to the raw zone and recorded in the file ledger, so a crash never
moves it past data the lake does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from headwater.state.db import StateDB, utcnow, watermarks


@dataclass(frozen=True)
class Watermark:
    source: str
    table: str
    value: str
    updated_at: datetime


def get_all(db: StateDB, source: str | None = None) -> list[Watermark]:
    query = sa.select(watermarks).order_by(watermarks.c.source, watermarks.c.name)
    if source is not None:
        query = query.where(watermarks.c.source == source)
    with db.engine.connect() as conn:
        return [Watermark(r.source, r.name, r.value, r.updated_at) for r in conn.execute(query)]


def get(db: StateDB, source: str) -> dict[str, str]:
    """Table -> watermark of one source."""
    return {w.table: w.value for w in get_all(db, source)}


def put(db: StateDB, source: str, table: str, value: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            watermarks.delete().where(
                (watermarks.c.source == source) & (watermarks.c.name == table)
            )
        )
        conn.execute(
            watermarks.insert().values(source=source, name=table, value=value, updated_at=utcnow())
        )


def reset(db: StateDB, source: str, table: str | None = None) -> int:
    """Forget watermarks (all of a source, or one table): the next run extracts everything."""
    condition = watermarks.c.source == source
    if table is not None:
        condition = condition & (watermarks.c.name == table)
    with db.engine.begin() as conn:
        return int(conn.execute(watermarks.delete().where(condition)).rowcount or 0)
