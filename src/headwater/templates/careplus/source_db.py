"""The careplus source database: the `support_tickets` table in MySQL/MariaDB or PostgreSQL.

The table is created as the course's dump creates it, every column TEXT, in the
spec's order (`IssUeCat` keeps its casing: it is quoted in PostgreSQL). Rows go
in by bulk load, never one INSERT per row: `LOAD DATA LOCAL INFILE` on
MySQL/MariaDB (the server's `local_infile` must be ON), `COPY ... FROM STDIN` on
PostgreSQL, both fed the same tab-separated text (`\\N` for NULL). Connections,
transactions and password redaction are the totesys loader's (`connect`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.templates.careplus.tickets import COLUMNS, TABLE, read_dump
from headwater.templates.totesys.source_db import Db, connect, ensure_database

CHUNK_ROWS = 500_000  # rows per bulk load statement: bounds the memory of the text


def _ddl(db: Db) -> str:
    q = db.q
    columns = ", ".join(f"{q(c)} TEXT" for c in COLUMNS)
    suffix = "" if db.dialect == "postgresql" else " DEFAULT CHARACTER SET utf8mb4"
    return f"CREATE TABLE IF NOT EXISTS {q(TABLE)} ({columns}){suffix}"


def create_table(url: str, *, drop: bool = False) -> None:
    """Create `support_tickets` if it is missing (dropped first with `drop`), and its
    database first if the server has none of that name."""
    ensure_database(url)
    with connect(url) as db:
        if drop:
            db.execute(f"DROP TABLE IF EXISTS {db.q(TABLE)}")
        db.execute(_ddl(db))


def _payload(data: pa.Table) -> bytes:
    """The rows as tab-separated text with backslash escapes and `\\N` for NULL."""
    texts = []
    for column in data.columns:
        arr = column.combine_chunks().cast(pa.string())
        for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
            arr = pc.replace_substring(arr, raw, escaped)
        texts.append(pc.fill_null(arr, "\\N"))
    rows = pc.binary_join_element_wise(*texts, "\t")
    lines = pc.binary_join_element_wise(rows, pa.scalar(""), "\n")  # a newline after each row
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return bytes(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])])


def _load_chunk(db: Db, data: pa.Table) -> None:
    q = db.q
    cols = ", ".join(q(c) for c in COLUMNS)
    payload = _payload(data)
    if db.dialect == "postgresql":
        with db.raw.cursor() as cur, cur.copy(f"COPY {q(TABLE)} ({cols}) FROM STDIN") as copy:
            copy.write(payload)
        return
    with tempfile.NamedTemporaryFile(suffix=".tsv") as handle:
        handle.write(payload)
        handle.flush()
        name = handle.name.replace("\\", "\\\\").replace("'", "''")
        db.execute(
            f"LOAD DATA LOCAL INFILE '{name}' INTO TABLE {q(TABLE)} CHARACTER SET utf8mb4 ({cols})"
        )


def load_rows(url: str, data: pa.Table) -> int:
    """Append the rows (the ten columns, as text) in one transaction; returns the count."""
    missing = [c for c in COLUMNS if c not in data.column_names]
    if missing:
        raise ValueError(f"rows lack column(s) {missing}")
    data = data.select(list(COLUMNS))
    with connect(url) as db:
        for start in range(0, data.num_rows, CHUNK_ROWS):
            _load_chunk(db, data.slice(start, CHUNK_ROWS))
    return int(data.num_rows)


def load_dump(url: str, path: Path, *, drop: bool = False) -> int:
    """Create the table and load the course's dump (`.sql` or `.csv`) into it."""
    data = read_dump(path)
    create_table(url, drop=drop)
    return load_rows(url, data)
