"""The `sql` source: tables of a relational database, extracted incrementally.

Two parts, each with one job:
- the **catalog** (tables, columns, primary keys) is read by `sqlcatalog`:
  one `pg_catalog` query on PostgreSQL, SQLAlchemy's inspector elsewhere;
- the **rows** go from the database straight into Parquet without passing
  through Python objects: DuckDB's postgres, mysql and sqlite scanners
  (packaged extensions; PostgreSQL is read with binary COPY in parallel page
  ranges) or, for Oracle and SQL Server, ConnectorX into Arrow.

Each extract selects the table's columns in catalog order (enums as text,
everything else in its exact type: numeric(10,2) stays decimal(10,2),
timestamps keep their precision and zone, text dates stay text), ordered by
the primary key so the same rows always give the same file, and filtered on
the cursor column: `cursor >= watermark - overlap`.

Driver errors become `SourceUnavailableError` (transient: the pipeline retries
it) when the database may answer if asked again: connection refused, reset or
closed, timed out, deadlock, serialization failure, too many connections, the
server starting or shutting down (PostgreSQL SQLSTATE class 08 and the states
in `TRANSIENT_SQLSTATES`; MySQL/MariaDB codes in `TRANSIENT_MYSQL_CODES`; the
same conditions in the DuckDB scanners' messages). A failed login, a missing
database, table or column, bad SQL stay `SourceError` (terminal). Messages
name the source, the table and the URL with its password as `***`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
import psycopg
import sqlalchemy as sa

from headwater import extensions
from headwater.config import SqlSource
from headwater.errors import (
    TERMINAL_MESSAGES,
    SourceError,
    SourceUnavailableError,
    transient_message,
)
from headwater.lake.store import DUCKDB_SETTINGS
from headwater.sources import sqlcatalog
from headwater.sql import literal, quote_ident
from headwater.urls import redact, scrub

AUTO_CURSORS = ("last_updated", "updated_at", "modified_at", "last_modified", "updated")
SA_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
    "oracle": "oracle+oracledb",
    "mssql": "mssql+pyodbc",
}
DUCKDB_TYPES = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql"}
DUCKDB_TYPES |= {"mariadb": "mysql", "sqlite": "sqlite"}
SCANNERS = {"postgres": "postgres_scanner", "mysql": "mysql_scanner", "sqlite": "sqlite_scanner"}
MESSAGE_LIMIT = 600  # characters of a driver's message kept in an error
CONNECT_TIMEOUT = 10  # seconds to wait for a PostgreSQL server to accept a connection
# PostgreSQL: serialization failure, deadlock, lock not available, admin/crash shutdown,
# cannot connect now, too many connections, out of memory (and class 08, connection).
TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300", "53200"}
# MySQL/MariaDB: too many connections, shutdown in progress, lock wait timeout, deadlock,
# can't connect (socket, TCP), server gone away, lost connection (twice), connection killed.
TRANSIENT_MYSQL_CODES = {1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055, 1927}


_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?")


def driver_error_is_transient(exc: sa.exc.DBAPIError) -> bool:
    """Whether a database error wrapped by SQLAlchemy may pass if the work is tried again."""
    operational = isinstance(exc, sa.exc.OperationalError)
    return dbapi_error_is_transient(exc.orig or exc, operational, exc.connection_invalidated)


def dbapi_error_is_transient(
    orig: BaseException, operational: bool, invalidated: bool = False
) -> bool:
    """Whether a DB-API driver's error may pass if the work is tried again."""
    text = str(orig).lower()
    if any(t in text for t in TERMINAL_MESSAGES):
        return False
    if invalidated:
        return True
    state = getattr(orig, "sqlstate", None)  # psycopg
    if isinstance(state, str) and state:
        return state in TRANSIENT_SQLSTATES or state.startswith("08")
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # pymysql: (code, message)
        return args[0] in TRANSIENT_MYSQL_CODES
    # No state, no code (psycopg's connection failures): an OperationalError is about the
    # server or the network, not the request.
    return operational or transient_message(text)


@dataclass(frozen=True)
class SqlTablePlan:
    """What to extract from one table, decided before reading any row."""

    name: str  # the table (or query) name in the source
    lake_name: str  # the processed table it feeds: prefix + name
    columns: list[str]
    key: list[str]
    cursor: str | None
    query: str | None  # a configured SELECT, instead of the whole table
    cursor_type: str = ""  # the cursor column's type in the catalog, upper case
    # PostgreSQL: rows since a watermark can be read with one plain query (`postgres_query`)
    # without the scanner loading its own catalog of the schema; see `SqlSourceReader.extract`.
    direct: bool = False


@dataclass(frozen=True)
class Extracted:
    rows: int
    max_cursor: str | None  # the watermark this extract reached (None: no rows or no cursor)


class SqlSourceReader:
    """Reads one `sql` source of a project."""

    def __init__(self, name: str, config: SqlSource, project_root: Path) -> None:
        self.name = name
        self.config = config
        self.url = config.url.get_secret_value()
        scheme = self.url.split("://", 1)[0].split("+", 1)[0].lower()
        self.scheme = scheme
        if scheme == "sqlite":
            path = Path(self.url.split("///", 1)[1]) if "///" in self.url else Path()
            self.sqlite_path = path if path.is_absolute() else project_root / path
        else:
            self.sqlite_path = Path()
        self._pool: ThreadPoolExecutor | None = None
        self._loading: Future[duckdb.DuckDBPyConnection] | None = None
        self._attaching = False  # `_loading` gives an attached connection

    @property
    def columns(self) -> list[str] | None:
        return None

    # ------------------------------------------------------------------ catalog

    def _sa_url(self) -> str:
        if self.scheme == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        rest = self.url.split("://", 1)[1]
        return f"{SA_DRIVERS[self.scheme]}://{rest}"

    def _postgres(self) -> bool:
        return DUCKDB_TYPES.get(self.scheme) == "postgres"

    def _unavailable(self, what: str, message: str) -> SourceUnavailableError:
        return SourceUnavailableError(
            f"source {self.name!r}: {what} {redact(self.url)} (may succeed if retried): {message}"
        )

    def plan(self) -> list[SqlTablePlan]:
        """The tables to extract, with their columns, keys and cursors, from the catalog."""
        schema = self.config.schema_name
        conninfo = self._attach_string("postgres") if self._postgres() else ""
        try:
            if self._postgres():
                catalog = sqlcatalog.read_postgres(conninfo, schema, self._attach_ahead)
            else:
                catalog = sqlcatalog.read_inspector(
                    self._sa_url(),
                    schema,
                    lambda tables: [t for t in self._wanted(tables) if not self._query(t)],
                )
        except sa.exc.DBAPIError as exc:
            operational = isinstance(exc, sa.exc.OperationalError)
            raise self._catalog_error(
                str(exc.orig), driver_error_is_transient(exc), operational
            ) from None
        except psycopg.Error as exc:
            operational = isinstance(exc, psycopg.OperationalError)
            transient = dbapi_error_is_transient(exc, operational)
            text = str(exc).replace(conninfo, redact(self.url)) if conninfo else str(exc)
            raise self._catalog_error(text, transient, operational) from None
        return [self._plan_table(catalog, t) for t in self._wanted(catalog.tables)]

    def _wanted(self, available: list[str]) -> list[str]:
        """The tables to extract, of the schema's `available` ones: those configured (each
        must exist unless it is a query), or those the include/exclude patterns pick."""
        if self.config.tables:
            wanted = list(self.config.tables)
            missing = [t for t in wanted if t not in available and not self._query(t)]
            if missing:
                raise SourceError(
                    f"source {self.name!r}: table {missing[0]!r} is not in the database "
                    f"(schema {self.config.schema_name or 'default'}; "
                    f"tables: {', '.join(available)})"
                )
            return wanted
        return [
            t
            for t in available
            if any(fnmatch.fnmatchcase(t, p) for p in self.config.include)
            and not any(fnmatch.fnmatchcase(t, p) for p in self.config.exclude)
        ]

    def _catalog_error(
        self, text: str, transient: bool, connecting: bool
    ) -> SourceError | SourceUnavailableError:
        message = scrub(" ".join(text.split()), self.url)
        if transient:
            return self._unavailable("cannot reach", message)
        what = "connect to" if connecting else "read the catalog of"
        return SourceError(f"source {self.name!r}: cannot {what} {redact(self.url)}: {message}")

    def _query(self, table: str) -> bool:
        settings = self.config.tables.get(table)
        return settings is not None and bool(settings.query)

    def _plan_table(self, catalog: sqlcatalog.Catalog, table: str) -> SqlTablePlan:
        settings = self.config.tables.get(table)
        query = self._query(table)  # a configured SELECT: nothing in the catalog describes it
        described = [] if query else catalog.columns.get(table, [])
        columns = [c.name for c in described]
        types = {c.name: c.type for c in described}
        if settings and settings.key:
            key = list(settings.key)
        else:
            key = [] if query else catalog.keys.get(table, [])
        cursor = self._cursor(table, settings.cursor if settings else None, columns, types)
        cursor_type = types.get(cursor, "") if cursor else ""
        direct = (
            self._postgres()
            and bool(described)
            and all(c.plain for c in described)
            and sqlcatalog.direct_cursor(cursor_type)
        )
        return SqlTablePlan(
            name=table,
            lake_name=f"{self.config.prefix}{table}",
            columns=columns,
            key=key,
            cursor=cursor,
            query=settings.query if settings else None,
            cursor_type=cursor_type,
            direct=direct,
        )

    def _cursor(
        self, table: str, configured: str | None, columns: list[str], types: dict[str, str]
    ) -> str | None:
        choice = configured or self.config.cursor
        if choice == "none":
            return None
        if choice != "auto":
            if columns and choice not in columns:
                raise SourceError(
                    f"source {self.name!r}, table {table!r}: cursor column {choice!r} does not "
                    f"exist (columns: {', '.join(columns)})"
                )
            return choice
        for candidate in AUTO_CURSORS:
            kind = types.get(candidate, "")
            if any(k in kind for k in ("TIMESTAMP", "DATETIME", "DATE", "INT")):
                return candidate
        return None

    # ------------------------------------------------------------------ rows

    def preload(self) -> None:
        """Start preparing the DuckDB connection of the next `connect()` in the background.

        Loading the scanner takes ~10 ms of DuckDB's own time (no network, no GIL) and runs
        while the catalog is read. Attaching connects to the database, so it starts only
        once `plan()` has its own connection open: the database sees the catalog's
        connection first and the scanner's second, as without the head start, and a failed
        attach is raised by `connect()`, in the same attempt as before. `close()` releases
        a prepared connection that no `connect()` took."""
        kind = DUCKDB_TYPES.get(self.scheme)
        if kind is None or self._loading is not None:
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headwater-scanner")
        self._loading = self._pool.submit(extensions.connect, [SCANNERS[kind]])
        self._attaching = False

    def _attach_ahead(self) -> None:
        """The catalog's connection is open: attach the preloaded connection in the background."""
        loading, pool = self._loading, self._pool
        if loading is None or pool is None or self._attaching:  # not preloaded, or done
            return
        self._attaching = True
        self._loading = pool.submit(lambda: self._attach(loading.result()))

    def close(self) -> None:
        loading, self._loading = self._loading, None
        if loading is not None:
            with contextlib.suppress(Exception):  # a failed load or attach has nothing to close
                loading.result().close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the source attached read-only as `src`."""
        kind = DUCKDB_TYPES.get(self.scheme)
        if kind is None:  # Oracle, SQL Server: rows come through ConnectorX
            return duckdb.connect(config=DUCKDB_SETTINGS)
        loading, self._loading = self._loading, None
        attached, self._attaching = self._attaching, False
        if loading is None:
            return self._attach(extensions.connect([SCANNERS[kind]]))
        if attached:
            return loading.result()  # raises the attach's error, as `_attach` would here
        return self._attach(loading.result())

    def _attach(self, conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """`conn` with the source attached as `src`, or closed and the driver error named."""
        kind = DUCKDB_TYPES[self.scheme]
        attach = self._attach_string(kind)
        try:
            conn.execute(f"ATTACH {literal(attach)} AS src (TYPE {kind}, READ_ONLY)").fetchall()
        except duckdb.Error as exc:
            conn.close()
            message, transient = self._message(exc)
            if transient:
                raise self._unavailable("cannot attach", message) from None
            raise SourceError(
                f"source {self.name!r}: cannot attach {redact(self.url)}: {message}"
            ) from None
        return conn

    def _message(self, exc: Exception) -> tuple[str, bool]:
        """A driver's message on one line without the URL's password, and if it is transient."""
        text = " ".join(str(exc).split())
        kind = DUCKDB_TYPES.get(self.scheme)
        if kind in ("postgres", "mysql"):  # the scanners quote the connection string
            text = text.replace(self._attach_string(kind), redact(self.url))
        text = scrub(text, self.url)
        transient = transient_message(text)
        if len(text) > MESSAGE_LIMIT:  # the scanners quote their whole catalog queries
            half = MESSAGE_LIMIT // 2
            text = f"{text[:half]} ... {text[-half:]}"
        return text, transient

    def _attach_string(self, kind: str) -> str:
        if kind == "sqlite":
            return str(self.sqlite_path)
        parts = urlsplit(self.url)
        if kind == "postgres":
            url = "postgresql://" + self.url.split("://", 1)[1]
            if "connect_timeout" in url:
                return url
            return url + ("&" if "?" in url else "?") + f"connect_timeout={CONNECT_TIMEOUT}"
        fields = {
            "host": parts.hostname or "localhost",
            "port": str(parts.port or 3306),
            "user": unquote(parts.username or ""),
            "passwd": unquote(parts.password or ""),
            "db": parts.path.strip("/"),
        }
        return " ".join(f"{k}={v}" for k, v in fields.items() if v)

    def _relation(self, table: SqlTablePlan) -> str:
        if table.query:
            return f"({table.query})"
        if self.scheme in DUCKDB_TYPES:
            schema = self.config.schema_name or self._default_schema()
            return f"src.{quote_ident(schema)}.{quote_ident(table.name)}"
        return quote_ident(table.name)

    def _default_schema(self) -> str:
        if self.scheme in ("postgresql", "postgres"):
            return "public"
        if self.scheme == "sqlite":
            return "main"
        return urlsplit(self.url).path.strip("/")

    def select_sql(self, table: SqlTablePlan, since: str | None, types: dict[str, str]) -> str:
        """The extract query in DuckDB SQL: columns as text where needed, filtered, ordered."""
        cols = []
        for col in table.columns or list(types):
            kind = types.get(col, "")
            expr = quote_ident(col)
            if kind.startswith("ENUM") or kind.startswith("UNION"):
                expr = f"{expr}::VARCHAR AS {quote_ident(col)}"
            cols.append(expr)
        sql = f"SELECT {', '.join(cols) or '*'} FROM {self._relation(table)} t"
        if since is not None and table.cursor:
            bound = self._since(since, types.get(table.cursor, ""))
            sql += f" WHERE {quote_ident(table.cursor)} >= {bound}"
        order = table.key or ([table.cursor] if table.cursor else [])
        if order:
            sql += " ORDER BY " + ", ".join(quote_ident(k) for k in order)
        return sql

    def _since(self, value: str, cursor_type: str) -> str:
        """The cursor's lower bound: the watermark minus the overlap (times only).

        A text cursor holding ISO times (`2025-07-01 09:30`, as in tables that keep every
        column as text) is compared as text, which the database can use an index for: the
        bound is written in the watermark's own layout, cut to its length (rounding down,
        so nothing inside the overlap is missed)."""
        if value.lstrip("-").isdigit():
            return value
        overlap = self.config.overlap_seconds
        bound = f"({literal(value)}::TIMESTAMP - INTERVAL {overlap} SECOND)"
        if cursor_type.upper().startswith(("VARCHAR", "TEXT", "CHAR", "STRING")):
            if not _ISO_TIME.fullmatch(value):
                raise SourceError(
                    f"source {self.name!r}: text cursor value {value!r} is not an ISO date or "
                    "time (YYYY-MM-DD[ HH:MM[:SS]]): text cursors must sort as times"
                )
            sep = "T" if "T" in value else " "
            return f"left(strftime({bound}, '%Y-%m-%d{sep}%H:%M:%S.%f'), {len(value)})"
        return bound

    def _direct_sql(self, conn: duckdb.DuckDBPyConnection, table: SqlTablePlan, since: str) -> str:
        """An incremental read from PostgreSQL as one query the database runs as written.

        Through the scanner's `postgres_query`, DuckDB learns the result's types from the
        query alone instead of loading its catalog of the whole schema (about 20 ms, most of
        an incremental extract). Only for tables where both ways give the same types
        (`SqlTablePlan.direct`: no domains or composite types; enums arrive as text either
        way) and a cursor PostgreSQL compares as DuckDB does. The bound is the one
        `_since` gives, computed by DuckDB, then compared as a timestamp (timestamp and
        date cursors) or as the column's own type."""
        assert table.cursor is not None
        [(bound,)] = conn.execute(
            f"SELECT ({self._since(since, table.cursor_type)})::VARCHAR"
        ).fetchall()
        value = literal(str(bound))
        if table.cursor_type.startswith(("TIMESTAMP", "DATE")):
            value += "::timestamp"
        schema = self.config.schema_name or self._default_schema()
        order = table.key or [table.cursor]
        query = (
            f"SELECT {', '.join(quote_ident(c) for c in table.columns)} "
            f"FROM {quote_ident(schema)}.{quote_ident(table.name)} "
            f"WHERE {quote_ident(table.cursor)} >= {value} "
            f"ORDER BY {', '.join(quote_ident(k) for k in order)}"
        )
        return f"SELECT * FROM postgres_query('src', {literal(query)})"

    def describe(self, conn: duckdb.DuckDBPyConnection, table: SqlTablePlan) -> dict[str, str]:
        rows = conn.execute(f"DESCRIBE SELECT * FROM {self._relation(table)} t").fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def extract(
        self,
        conn: duckdb.DuckDBPyConnection,
        table: SqlTablePlan,
        since: str | None,
        out: Path,
    ) -> Extracted:
        """Write the table's rows (since the watermark) to one Parquet file at `out`."""
        try:
            if self.scheme not in DUCKDB_TYPES:
                return self._extract_connectorx(conn, table, since, out)
            if table.direct and since is not None:
                sql = self._direct_sql(conn, table, since)
            else:
                types = self.describe(conn, table)
                sql = self.select_sql(table, since, types)
                if DUCKDB_TYPES[self.scheme] == "postgres":
                    # Parallel page-range scans read the whole table; an incremental read
                    # lets PostgreSQL use an index on the cursor column, when there is one.
                    scan = "false" if since is not None and table.cursor else "true"
                    conn.execute(f"SET pg_use_ctid_scan = {scan}").fetchall()
            rows = conn.execute(
                f"COPY ({sql}) TO {literal(str(out))} "
                "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880, RETURN_STATS)"
            ).fetchall()
            count = sum(int(r[1]) for r in rows)
            top = None
            if table.cursor and count:
                [(value,)] = conn.execute(
                    f"SELECT max({quote_ident(table.cursor)})::VARCHAR "
                    f"FROM read_parquet({literal(str(out))})"
                ).fetchall()
                top = None if value is None else str(value)
            return Extracted(count, top)
        except duckdb.Error as exc:
            message, transient = self._message(exc)
            if transient:
                raise SourceUnavailableError(
                    f"source {self.name!r}, table {table.name!r}: extract failed (may succeed "
                    f"if retried): {message}"
                ) from None
            raise SourceError(
                f"source {self.name!r}, table {table.name!r}: extract failed: {message}"
            ) from None

    def _extract_connectorx(
        self, conn: duckdb.DuckDBPyConnection, table: SqlTablePlan, since: str | None, out: Path
    ) -> Extracted:
        """Oracle and SQL Server: ConnectorX into Arrow, then the same Parquet writer."""
        import connectorx

        relation = f"({table.query}) t" if table.query else table.name
        sql = f"SELECT * FROM {relation}"
        if since is not None and table.cursor:
            sql += f" WHERE {table.cursor} >= {literal(since)}"
        try:
            data: Any = connectorx.read_sql(self.url, sql, return_type="arrow")
        except Exception as exc:  # ConnectorX raises plain RuntimeErrors
            message, transient = self._message(exc)
            kind = SourceUnavailableError if transient else SourceError
            raise kind(
                f"source {self.name!r}, table {table.name!r}: extract failed: {message}"
            ) from None
        conn.register("__hw_extract", data)
        try:
            order = ", ".join(quote_ident(k) for k in table.key) or "ALL"
            conn.execute(
                f"COPY (SELECT * FROM __hw_extract ORDER BY {order}) TO {literal(str(out))} "
                "(FORMAT parquet, COMPRESSION zstd)"
            ).fetchall()
            top = None
            if table.cursor and data.num_rows:
                [(value,)] = conn.execute(
                    f"SELECT max({quote_ident(table.cursor)})::VARCHAR FROM __hw_extract"
                ).fetchall()
                top = None if value is None else str(value)
        finally:
            conn.unregister("__hw_extract")
        return Extracted(int(data.num_rows), top)
