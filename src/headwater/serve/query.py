"""Read-only SQL over the warehouse, or over the lake's processed zone (`--lake`).

Over the lake, every processed table is a view on its current Iceberg
snapshot's Parquet files, read in place, and `quarantine` is a view over
every quarantined row. Results stream as Arrow record batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa

from headwater.errors import ConfigError, HeadwaterError
from headwater.lake.quarantine import COLUMNS, QuarantineZone
from headwater.lake.store import DUCKDB_SETTINGS
from headwater.lake.tables import Tables, scan_sql
from headwater.project import Project
from headwater.sql import quote_ident
from headwater.state.db import StateDB

BATCH_ROWS = 10_000


class QueryError(HeadwaterError):
    """The SQL failed (syntax, unknown table, types); the message is DuckDB's."""


@contextmanager
def connect(project: Project, lake: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection over the warehouse, or over the lake."""
    if not lake:
        path = project.warehouse_path
        if not path.exists():
            raise ConfigError(f"warehouse {path} does not exist yet: run `headwater run` first")
        conn = duckdb.connect(str(path), read_only=True)
    else:
        if not StateDB.exists(project.state_url):
            raise ConfigError("the lake is empty: run `headwater run` first")
        conn = duckdb.connect(":memory:", config=DUCKDB_SETTINGS)
        store = project.open_store()
        store.configure_duckdb(conn)
        tables = Tables.open(project.state_url, store)
        try:
            for name in tables.names():
                files = tables.data_files(name)
                if files:
                    conn.execute(
                        f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM {scan_sql(files)}"
                    ).fetchall()
        finally:
            tables.close()
        zone = QuarantineZone(store)
        if zone.has_files():
            conn.execute(
                f"CREATE VIEW quarantine AS SELECT * FROM {scan_sql(zone.glob())}"
            ).fetchall()
        else:
            cols = ", ".join(f"NULL::{t} AS {quote_ident(c)}" for c, t in COLUMNS.items())
            conn.execute(f"CREATE VIEW quarantine AS SELECT {cols} WHERE false").fetchall()
    try:
        yield conn
    finally:
        conn.close()


READ_ONLY = {"SELECT", "EXPLAIN"}


def check_read_only(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but one SELECT (or EXPLAIN): no COPY, CREATE, ATTACH, SET, INSTALL."""
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from None
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}")
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in READ_ONLY:
        raise QueryError(f"only read-only queries (SELECT, EXPLAIN) are allowed, not {kind}")


def run_query(conn: duckdb.DuckDBPyConnection, sql: str) -> pa.RecordBatchReader:
    check_read_only(conn, sql)
    try:
        return conn.sql(sql).to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from None
