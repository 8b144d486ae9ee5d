"""The SQL console's query runner: read-only, row-limited and interruptible.

Two independent layers keep a console query from changing or reading anything
it should not:

1. The statement is checked before any connection to the project is opened:
   one statement (`check_read_only`: SELECT or EXPLAIN), starting with a
   read-only keyword (so `PRAGMA x`, which DuckDB rewrites to a SELECT, is
   refused), whose table functions are all on an allow-list (`range`,
   `unnest`, `json_each`, catalog functions; not `read_csv`, `glob`,
   `query`, `postgres_scan`...). The functions are read from DuckDB's own
   parse tree (`json_serialize_sql`), not from the text.
2. The connection it runs on is hardened: a private in-memory DuckDB that
   attaches the warehouse read-only (or holds one view per lake table), then
   `allowed_paths` = exactly the lake files its views read,
   `enable_external_access = false` (no other file, no network, no ATTACH,
   COPY, INSTALL or LOAD) and `lock_configuration = true` (no SET undoes it).
   Extension auto-install and auto-load are off from the start. So `INSTALL`,
   `ATTACH`, `COPY` or `read_csv('/etc/passwd')` fail even if the first layer
   missed them.

A query runs on a worker thread; past the deadline the connection is
interrupted (`conn.interrupt()`) and the caller gets `QueryTimeoutError`, whatever
the worker is doing. At most `limit` rows are fetched (one more tells the
result was truncated).

DuckDB note (1.5.5): a view over `read_parquet` created before
`enable_external_access = false` cannot read its files afterwards unless the
files are listed in `allowed_paths` first; that is why the lake connection
lists every data file of every table's current snapshot (and every
quarantine file) there. Reading those same files directly is allowed too; it
shows nothing the views do not.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import duckdb
import pyarrow as pa

from headwater.config import PostgresWarehouseConfig
from headwater.errors import ConfigError
from headwater.lake.quarantine import COLUMNS, QuarantineZone
from headwater.lake.store import DUCKDB_SETTINGS
from headwater.lake.tables import Tables, scan_sql
from headwater.project import Project
from headwater.serve.query import (
    QueryError,
    check_read_only,
    connect_postgres,
    head,
    warehouse_scrub,
)
from headwater.sql import literal, quote_ident
from headwater.state.db import StateDB

Target = Literal["warehouse", "lake"]
TARGETS: tuple[Target, ...] = ("warehouse", "lake")

DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000
CSV_LIMIT = 1_000_000
DEFAULT_TIMEOUT = 10.0
STREAM_TIMEOUT = 300.0  # a whole CSV download, after its first rows came within the timeout
GRACE = 2.0  # how long an interrupted query may take to stop before the caller gives up
BATCH_ROWS = 10_000

# The first keyword of a console query (after comments and parentheses).
READ_ONLY_WORDS = frozenset(
    {"SELECT", "WITH", "FROM", "VALUES", "TABLE", "EXPLAIN", "DESCRIBE", "DESC", "SHOW",
     "SUMMARIZE"}
)  # fmt: skip

# Table functions a console query may call. Everything else that reads files, URLs or
# other databases (read_*, glob, *_scan, query, postgres_*, sqlite_*) is refused.
TABLE_FUNCTIONS = frozenset(
    {
        "range", "generate_series", "unnest", "json_each", "json_tree",
        "duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_functions",
        "duckdb_indexes", "duckdb_keywords", "duckdb_schemas", "duckdb_tables",
        "duckdb_types", "duckdb_views", "pragma_table_info", "pragma_show",
    }
)  # fmt: skip

HARDENING = (
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)

_COMMENT = re.compile(r"\s+|--[^\n]*(\n|$)|/\*.*?\*/|\(", re.DOTALL)
_EXPLAIN = re.compile(r"explain\s+(analyze\s+)?(\([^)]*\)\s*)?", re.IGNORECASE)

T = TypeVar("T")


class RefusedError(QueryError):
    """The console does not run this kind of statement (it writes, or reaches outside)."""


class QueryTimeoutError(QueryError):
    """The query ran past its deadline and was interrupted."""


@dataclass(frozen=True)
class Result:
    table: pa.Table
    truncated: bool
    seconds: float

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def rows(self) -> list[tuple[Any, ...]]:
        columns = [c.to_pylist() for c in self.table.columns]
        return list(zip(*columns, strict=True)) if columns else []


def _start(sql: str) -> int:
    """Where the statement's first word is: after comments, blanks and `(`."""
    pos = 0
    while True:
        match = _COMMENT.match(sql, pos)
        if match is None or match.end() == pos:
            return pos
        pos = match.end()


def leading_keyword(sql: str) -> str:
    """The first word of `sql`, upper case, after comments, blanks and `(`."""
    pos = _start(sql)
    word = re.match(r"[A-Za-z_]+", sql[pos:])
    return word.group(0).upper() if word else sql[pos : pos + 20].strip()


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object of a `json_serialize_sql` tree, depth first."""
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def _table_functions(tree: Any) -> set[str]:
    """Names of every table function in a `json_serialize_sql` tree."""
    return {
        str((node.get("function") or {}).get("function_name", "?")).lower()
        for node in _nodes(tree)
        if node.get("type") == "TABLE_FUNCTION"
    }


def _raw_tables(tree: Any) -> set[str]:
    """`raw.<name>` relations a `json_serialize_sql` tree reads (the lake's raw zone)."""
    return {
        f"raw.{node.get('table_name', '?')}"
        for node in _nodes(tree)
        if node.get("type") == "BASE_TABLE" and str(node.get("schema_name", "")).lower() == "raw"
    }


def _hardened(conn: duckdb.DuckDBPyConnection, allowed_paths: Sequence[str] = ()) -> None:
    if allowed_paths:
        listing = ", ".join(literal(p) for p in allowed_paths)
        conn.execute(f"SET allowed_paths = [{listing}]").fetchall()
    for statement in HARDENING:
        conn.execute(statement).fetchall()


def check_statement(sql: str, target: Target = "warehouse") -> None:
    """Refuse anything but one read-only query calling allowed table functions (and, over
    the lake, naming no `raw.` relation).

    Runs on a private, hardened in-memory connection: nothing of the project is
    opened for a refused statement.
    """
    if not sql.strip():
        raise RefusedError("no SQL given")
    word = leading_keyword(sql)
    conn = duckdb.connect(":memory:", config=DUCKDB_SETTINGS)
    try:
        _hardened(conn)
        if word not in READ_ONLY_WORDS:
            raise RefusedError(
                f"{word} is not allowed here: the SQL console runs one read-only query "
                "(SELECT, WITH, FROM, VALUES, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE)"
            )
        check_read_only(conn, sql)
        query = conn.extract_statements(sql)[0].query
        explained = _EXPLAIN.match(query, _start(query))
        if explained:  # check the statement it explains
            query = query[explained.end() :]
        row = conn.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    finally:
        conn.close()
    tree = json.loads(row[0]) if row else {}
    if tree.get("error"):
        raise QueryError(f"query failed: {tree.get('error_message', 'cannot parse the query')}")
    refused = sorted(_table_functions(tree) - TABLE_FUNCTIONS)
    if refused:
        raise RefusedError(
            f"table function {', '.join(refused)} is not allowed here: the SQL console reads "
            "the project's tables only, never files, URLs or other databases"
        )
    raw = sorted(_raw_tables(tree)) if target == "lake" else []
    if raw:
        raise RefusedError(
            f"{', '.join(raw)}: the raw zone is not in the SQL console; it holds what sources "
            "delivered, personal data included (PII policies apply from the processed zone "
            "on). Query the processed tables here, or the raw zone with `headwater query "
            "--lake` on the machine"
        )


def _warehouse(project: Project) -> duckdb.DuckDBPyConnection:
    config = project.config.warehouse
    if isinstance(config, PostgresWarehouseConfig):
        # Attached READ_ONLY (a read-only transaction on the server) before hardening;
        # the attachment keeps working, a new ATTACH does not.
        conn = connect_postgres(config.url.get_secret_value(), config.schema_name)
        try:
            _hardened(conn)
        except BaseException:
            conn.close()
            raise
        return conn
    if config.type != "duckdb":
        raise ConfigError(
            f"the SQL console reads a DuckDB or PostgreSQL warehouse; this project's is "
            f"{config.type}: use the lake target, or the warehouse's own client"
        )
    path = project.warehouse_path
    if not path.exists():
        raise ConfigError(f"warehouse {path} does not exist yet: run `headwater run` first")
    # A private in-memory database that attaches the file: DuckDB shares one database
    # instance between connections to the same file in a process, and the settings
    # below must not reach the dashboards' connections.
    conn = duckdb.connect(":memory:", config=DUCKDB_SETTINGS)
    try:
        conn.execute(f"ATTACH {literal(str(path))} AS warehouse (READ_ONLY)").fetchall()
        conn.execute("USE warehouse").fetchall()
        _hardened(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _lake(project: Project) -> duckdb.DuckDBPyConnection:
    if not StateDB.exists(project.state_url):
        raise ConfigError("the lake is empty: run `headwater run` first")
    conn = duckdb.connect(":memory:", config=DUCKDB_SETTINGS)
    try:
        store = project.open_store()
        store.configure_duckdb(conn)
        allowed: list[str] = []
        tables = Tables.open(project.state_url, store)
        try:
            for name in tables.names():
                files = tables.data_files(name)
                if files:
                    allowed += files
                    conn.execute(
                        f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM {scan_sql(files)}"
                    ).fetchall()
        finally:
            tables.close()
        zone = QuarantineZone(store)
        quarantined = (
            [str(r[0]) for r in conn.execute("SELECT file FROM glob(?)", [zone.glob()]).fetchall()]
            if zone.has_files()
            else []
        )
        if quarantined:
            allowed += quarantined
            conn.execute(
                f"CREATE VIEW quarantine AS SELECT * FROM {scan_sql(quarantined)}"
            ).fetchall()
        else:
            cols = ", ".join(f"NULL::{t} AS {quote_ident(c)}" for c, t in COLUMNS.items())
            conn.execute(f"CREATE VIEW quarantine AS SELECT {cols} WHERE false").fetchall()
        _hardened(conn, allowed)
    except BaseException:
        conn.close()
        raise
    return conn


def open_connection(project: Project, target: Target) -> duckdb.DuckDBPyConnection:
    """A hardened connection over the warehouse or the lake (see the module doc)."""
    if target not in TARGETS:
        raise QueryError(f"unknown target {target!r}: expected warehouse or lake")
    return _warehouse(project) if target == "warehouse" else _lake(project)


def _error(exc: BaseException, project: Project) -> BaseException:
    """A DuckDB error as the console shows it (a PostgreSQL warehouse's password as ***)."""
    if isinstance(exc, duckdb.PermissionException):
        return RefusedError(f"refused by the sandbox: {warehouse_scrub(project, str(exc))}")
    if isinstance(exc, duckdb.Error):
        return QueryError(f"query failed: {warehouse_scrub(project, str(exc))}")
    return exc


def _interrupt(conn: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # closed meanwhile: nothing left to stop
        conn.interrupt()


def _timed(
    project: Project,
    conn: duckdb.DuckDBPyConnection,
    work: Callable[[], T],
    timeout: float,
    *,
    keep_open: bool,
) -> T:
    """`work()` on a worker thread; interrupted past `timeout` seconds.

    The connection is closed here, or by the worker if it outlives the caller,
    unless `keep_open` and the work succeeded in time: then the caller owns it.
    """
    lock = threading.Lock()
    done = threading.Event()
    abandoned = False
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:
            box["error"] = exc
        finally:
            with lock:
                done.set()
                if abandoned:
                    conn.close()

    worker = threading.Thread(target=run, name="headwater-sql", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _interrupt(conn)
        worker.join(GRACE)
    with lock:
        if not done.is_set():
            abandoned = True  # the worker closes the connection when DuckDB lets go
        elif "error" in box or not keep_open:
            conn.close()
    if not done.is_set() or isinstance(box.get("error"), duckdb.InterruptException):
        raise QueryTimeoutError(
            f"the query ran past the {timeout:g} s timeout and was stopped; "
            "add filters or a LIMIT, or aggregate"
        )
    if "error" in box:
        raise _error(box["error"], project) from None
    value: T = box["value"]
    return value


def _limit(limit: int | None, ceiling: int) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= ceiling:
        raise QueryError(f"row limit must be between 1 and {ceiling:,}, not {limit}")
    return limit


def run(
    project: Project,
    sql: str,
    target: Target = "warehouse",
    *,
    limit: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result:
    """Run one console query: at most `limit` rows (up to MAX_LIMIT), within `timeout` s."""
    rows = _limit(limit, MAX_LIMIT)
    check_statement(sql, target)
    conn = open_connection(project, target)
    started = time.perf_counter()

    def fetch() -> tuple[pa.Table, bool]:
        return head(conn.execute(sql).to_arrow_reader(min(rows + 1, BATCH_ROWS)), rows)

    table, truncated = _timed(project, conn, fetch, timeout, keep_open=False)
    return Result(table, truncated, time.perf_counter() - started)


@dataclass
class Stream:
    """A query's rows as record batches, the first already fetched. Iterate once; `close`
    (or the end of the rows) releases the connection."""

    schema: pa.Schema
    batches: Generator[pa.RecordBatch, None, None]

    def close(self) -> None:
        self.batches.close()


def stream(
    project: Project,
    sql: str,
    target: Target = "warehouse",
    *,
    limit: int = CSV_LIMIT,
    timeout: float = DEFAULT_TIMEOUT,
    stream_timeout: float = STREAM_TIMEOUT,
) -> Stream:
    """Rows for a download: errors and the first rows come within `timeout` (so they can
    still become an error response); the rest streams, stopped after `stream_timeout`."""
    rows = _limit(limit, CSV_LIMIT)
    check_statement(sql, target)
    conn = open_connection(project, target)

    def first() -> tuple[pa.RecordBatchReader, pa.RecordBatch | None]:
        reader = conn.execute(sql).to_arrow_reader(BATCH_ROWS)
        return reader, next(iter(reader), None)

    reader, head = _timed(project, conn, first, timeout, keep_open=True)
    watchdog = threading.Timer(stream_timeout, _interrupt, [conn])
    watchdog.daemon = True
    watchdog.start()

    def batches() -> Generator[pa.RecordBatch, None, None]:
        sent = 0
        try:
            pending = [] if head is None else [head]
            for batch in _chain(pending, reader):
                if sent + batch.num_rows >= rows:
                    yield batch.slice(0, rows - sent)
                    return
                sent += batch.num_rows
                yield batch
        except duckdb.Error as exc:
            raise _error(exc, project) from None
        finally:
            watchdog.cancel()
            conn.close()

    return Stream(reader.schema, batches())


def _chain(first: list[pa.RecordBatch], rest: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    yield from first
    yield from rest
