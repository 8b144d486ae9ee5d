"""The `sql` source: tables of a relational database, extracted incrementally.

Two parts, each with one job:
- the **catalog** (tables, columns, primary keys) is read with SQLAlchemy's
  inspector, one code path for every dialect;
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

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
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
    orig = exc.orig
    text = str(orig).lower()
    if any(t in text for t in TERMINAL_MESSAGES):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(orig, "sqlstate", None)  # psycopg
    if isinstance(state, str) and state:
        return state in TRANSIENT_SQLSTATES or state.startswith("08")
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # pymysql: (code, message)
        return args[0] in TRANSIENT_MYSQL_CODES
    # No state, no code (psycopg's connection failures): an OperationalError is about the
    # server or the network, not the request.
    return isinstance(exc, sa.exc.OperationalError) or transient_message(text)


@dataclass(frozen=True)
class SqlTablePlan:
    """What to extract from one table, decided before reading any row."""

    name: str  # the table (or query) name in the source
    lake_name: str  # the processed table it feeds: prefix + name
    columns: list[str]
    key: list[str]
    cursor: str | None
    query: str | None  # a configured SELECT, instead of the whole table


@dataclass(frozen=True)
class Catalog:
    """What the inspector said about the tables to extract: columns in order, primary keys."""

    columns: dict[str, list[Any]]
    keys: dict[str, dict[str, Any]]


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
        params = "connect_timeout" not in self.url
        args = {"connect_timeout": CONNECT_TIMEOUT} if self._postgres() and params else {}
        engine = sa.create_engine(self._sa_url(), connect_args=args)
        try:
            inspector = sa.inspect(engine)
            schema = self.config.schema_name
            available = inspector.get_table_names(schema=schema)
            if self.config.tables:
                wanted = list(self.config.tables)
                missing = [
                    t for t in wanted if t not in available and not self.config.tables[t].query
                ]
                if missing:
                    raise SourceError(
                        f"source {self.name!r}: table {missing[0]!r} is not in the database "
                        f"(schema {schema or 'default'}; tables: {', '.join(sorted(available))})"
                    )
            else:
                wanted = [
                    t
                    for t in sorted(available)
                    if any(fnmatch.fnmatchcase(t, p) for p in self.config.include)
                    and not any(fnmatch.fnmatchcase(t, p) for p in self.config.exclude)
                ]
            catalog = self._catalog(inspector, [t for t in wanted if not self._query(t)])
            return [self._plan_table(catalog, t) for t in wanted]
        except sa.exc.DBAPIError as exc:
            message = scrub(" ".join(str(exc.orig).split()), self.url)
            if driver_error_is_transient(exc):
                raise self._unavailable("cannot reach", message) from None
            connecting = isinstance(exc, sa.exc.OperationalError)
            what = "connect to" if connecting else "read the catalog of"
            raise SourceError(
                f"source {self.name!r}: cannot {what} {redact(self.url)}: {message}"
            ) from None
        finally:
            engine.dispose()

    def _query(self, table: str) -> bool:
        settings = self.config.tables.get(table)
        return settings is not None and bool(settings.query)

    def _catalog(self, inspector: Any, tables: list[str]) -> Catalog:
        """The tables' columns and primary keys: one query each for all tables, not per table."""
        if not tables:
            return Catalog({}, {})
        schema = self.config.schema_name
        columns = inspector.get_multi_columns(schema=schema, filter_names=tables)
        keys = inspector.get_multi_pk_constraint(schema=schema, filter_names=tables)
        return Catalog(
            columns={name: list(found) for (_, name), found in columns.items()},
            keys={name: dict(found) for (_, name), found in keys.items()},
        )

    def _plan_table(self, catalog: Catalog, table: str) -> SqlTablePlan:
        settings = self.config.tables.get(table)
        if settings is not None and settings.query:
            columns: list[str] = []
            types: dict[str, str] = {}
            key = list(settings.key or [])
        else:
            described = catalog.columns.get(table, [])
            columns = [str(c["name"]) for c in described]
            types = {str(c["name"]): str(c["type"]).upper() for c in described}
            pk = catalog.keys.get(table, {})
            key = (
                list(settings.key)
                if settings and settings.key
                else list(pk.get("constrained_columns") or [])
            )
        cursor = self._cursor(table, settings.cursor if settings else None, columns, types)
        return SqlTablePlan(
            name=table,
            lake_name=f"{self.config.prefix}{table}",
            columns=columns,
            key=key,
            cursor=cursor,
            query=settings.query if settings else None,
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

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the source attached read-only as `src`."""
        kind = DUCKDB_TYPES.get(self.scheme)
        if kind is None:  # Oracle, SQL Server: rows come through ConnectorX
            return duckdb.connect(config=DUCKDB_SETTINGS)
        conn = extensions.connect([SCANNERS[kind]])
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
            types = self.describe(conn, table)
            sql = self.select_sql(table, since, types)
            if DUCKDB_TYPES[self.scheme] == "postgres":
                # Parallel page-range scans read the whole table; an incremental read lets
                # PostgreSQL use an index on the cursor column, when the table has one.
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
