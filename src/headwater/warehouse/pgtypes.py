"""DuckDB columns -> PostgreSQL columns and COPY input, for the `postgres` warehouse target.

`pg_column` maps a type as DuckDB's DESCRIBE spells it to

- the PostgreSQL type, spelled as `format_type()` reports it, so that it
  compares equal with the column of a table created earlier, and
- the DuckDB expression whose Arrow value pyarrow's CSV writer turns into text
  PostgreSQL's `COPY ... (FORMAT csv)` reads back exactly: most types go as
  they are; BLOB becomes `\\x<hex>`, lists become array literals, a few types
  are cast to VARCHAR.

`widens` says whether an existing column's type may be altered to a new one
without losing any value. `CsvStream` runs the DuckDB query on a worker thread
and hands out its CSV text one Arrow batch at a time, a few batches ahead, so
that reading Parquet and writing CSV overlap with the server's COPY, and
memory stays flat whatever the size. NULL is written as an empty field and
every string is quoted, so an empty string stays an empty string.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from headwater.sql import quote_ident

BATCH_ROWS = 131_072  # rows per Arrow batch, one CSV chunk each (~10 MB)
QUEUE_DEPTH = 3  # CSV chunks made ahead of COPY
CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=8192, quoting_style="needed")

# DuckDB type -> PostgreSQL type; the value is loaded as DuckDB hands it to Arrow.
NATIVE: dict[str, str] = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "UTINYINT": "smallint",
    "SMALLINT": "smallint",
    "USMALLINT": "integer",
    "INTEGER": "integer",
    "UINTEGER": "bigint",
    "BIGINT": "bigint",
    "UBIGINT": "numeric(20,0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time without time zone",
    "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
}
# DuckDB type -> PostgreSQL type; the value is cast to VARCHAR in DuckDB first
# (HUGEINT needs 39 digits: Arrow's decimal128 stops at 38).
AS_TEXT: dict[str, str] = {
    "HUGEINT": "numeric(39,0)",
    "UHUGEINT": "numeric(39,0)",
    "UUID": "uuid",
    "INTERVAL": "interval",
    "TIME WITH TIME ZONE": "time with time zone",
    "JSON": "jsonb",
}
# Timestamps of another precision: cast to TIMESTAMP (PostgreSQL keeps microseconds).
AS_TIMESTAMP = {"TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}

DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
LIST = re.compile(r"(.+?)\[(\d*)\]")

WIDENINGS = {
    ("smallint", "integer"),
    ("smallint", "bigint"),
    ("integer", "bigint"),
    ("real", "double precision"),
    ("date", "timestamp without time zone"),
}


@dataclass(frozen=True)
class PgColumn:
    name: str
    duck_type: str
    pg_type: str
    select: str  # DuckDB expression giving the column's COPY value, aliased to its name


def _scalar(duck_type: str) -> str | None:
    """PostgreSQL type of a non-list DuckDB type, None if there is none."""
    if duck_type in NATIVE:
        return NATIVE[duck_type]
    if duck_type in AS_TEXT:
        return AS_TEXT[duck_type]
    if duck_type in AS_TIMESTAMP:
        return "timestamp without time zone"
    if duck_type == "BLOB":
        return "bytea"
    if duck_type.startswith("ENUM("):
        return "text"
    if m := DECIMAL.fullmatch(duck_type):
        return f"numeric({m[1]},{m[2]})"
    return None


def _scalar_value(duck_type: str, expr: str) -> str:
    """DuckDB expression for one value of a non-list type, as Arrow hands it to the writer."""
    if duck_type == "BLOB":
        return f"'\\x' || hex({expr})"
    if duck_type in AS_TEXT or duck_type.startswith("ENUM("):
        return f"CAST({expr} AS VARCHAR)"
    if duck_type in AS_TIMESTAMP:
        return f"CAST({expr} AS TIMESTAMP)"
    return expr


def _element_text(duck_type: str, expr: str) -> str:
    """DuckDB text of one list element, quoted for a PostgreSQL array literal (NULL bare)."""
    if duck_type == "BLOB":
        text = f"'\\x' || hex({expr})"
    elif duck_type in AS_TIMESTAMP:
        text = f"CAST(CAST({expr} AS TIMESTAMP) AS VARCHAR)"
    else:
        text = f"CAST({expr} AS VARCHAR)"
    escaped = f"replace(replace({text}, '\\', '\\\\'), '\"', '\\\"')"
    return f"coalesce('\"' || {escaped} || '\"', 'NULL')"


def pg_column(name: str, duck_type: str) -> PgColumn | None:
    """The PostgreSQL column for a DuckDB column; None for STRUCT, MAP, nested lists and such."""
    ident = quote_ident(name)
    if m := LIST.fullmatch(duck_type):
        element = m[1]
        pg_element = _scalar(element)
        if pg_element is None or LIST.fullmatch(element):
            return None
        text = _element_text(element, "x")
        items = f"list_transform(CAST({ident} AS {element}[]), lambda x: {text})"
        select = f"'{{' || array_to_string({items}, ',') || '}}'"
        return PgColumn(name, duck_type, f"{pg_element}[]", f"{select} AS {ident}")
    pg_type = _scalar(duck_type)
    if pg_type is None:
        return None
    return PgColumn(name, duck_type, pg_type, f"{_scalar_value(duck_type, ident)} AS {ident}")


def widens(old: str, new: str) -> bool:
    """Whether a column of PostgreSQL type `old` may become `new` without losing a value."""
    if old == new or (old, new) in WIDENINGS:
        return True
    if old.endswith("[]") and new.endswith("[]"):
        return widens(old[:-2], new[:-2])
    old_numeric, new_numeric = NUMERIC.fullmatch(old), NUMERIC.fullmatch(new)
    if old_numeric and new_numeric:
        op, os_ = int(old_numeric[1]), int(old_numeric[2])
        np_, ns = int(new_numeric[1]), int(new_numeric[2])
        return ns >= os_ and np_ - ns >= op - os_
    return False


class CsvStream:
    """The CSV text of a DuckDB query, made on a worker thread a few chunks ahead of COPY."""

    _done = object()

    def __init__(self, duck: duckdb.DuckDBPyConnection, sql: str) -> None:
        self._duck, self._sql = duck, sql
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="headwater-pg-csv", daemon=True)

    def __enter__(self) -> Iterator[memoryview]:
        self._thread.start()
        return self._chunks()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if not self._finished and self._thread.is_alive():
            self._duck.interrupt()  # stopped early: cancel the query the worker runs
        self._thread.join()

    def _chunks(self) -> Iterator[memoryview]:
        while (item := self._queue.get()) is not self._done:
            if isinstance(item, BaseException):
                raise item
            yield memoryview(item)
        self._finished = True

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            reader = self._duck.execute(self._sql).to_arrow_reader(BATCH_ROWS)
            for batch in reader:
                if self._stop.is_set():
                    return
                sink = pa.BufferOutputStream()
                pacsv.write_csv(batch, sink, CSV_OPTIONS)
                self._put(sink.getvalue())
        except BaseException as exc:
            self._put(exc)
        else:
            self._put(self._done)
