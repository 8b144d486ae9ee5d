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
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
import sqlalchemy as sa

from headwater import extensions
from headwater.config import SqlSource
from headwater.errors import SourceError, TransientError
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


class SourceUnavailableError(TransientError):
    """The source database did not answer; the run can be retried."""


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

    def plan(self) -> list[SqlTablePlan]:
        """The tables to extract, with their columns, keys and cursors, from the catalog."""
        engine = sa.create_engine(self._sa_url())
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
            return [self._plan_table(inspector, t) for t in wanted]
        except sa.exc.OperationalError as exc:
            raise SourceUnavailableError(
                f"source {self.name!r}: cannot reach {redact(self.url)}: {exc.orig}"
            ) from None
        finally:
            engine.dispose()

    def _plan_table(self, inspector: Any, table: str) -> SqlTablePlan:
        settings = self.config.tables.get(table)
        schema = self.config.schema_name
        if settings is not None and settings.query:
            columns: list[str] = []
            types: dict[str, str] = {}
            key = list(settings.key or [])
        else:
            described = inspector.get_columns(table, schema=schema)
            columns = [str(c["name"]) for c in described]
            types = {str(c["name"]): str(c["type"]).upper() for c in described}
            pk = inspector.get_pk_constraint(table, schema=schema) or {}
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
        conn = duckdb.connect(config=DUCKDB_SETTINGS)
        kind = DUCKDB_TYPES.get(self.scheme)
        if kind is None:
            return conn  # Oracle, SQL Server: rows come through ConnectorX
        extensions.load(conn, SCANNERS[kind])
        try:
            conn.execute(
                f"ATTACH {literal(self._attach_string(kind))} AS src (TYPE {kind}, READ_ONLY)"
            ).fetchall()
        except duckdb.Error as exc:
            conn.close()
            message = scrub(str(exc), self.url)
            raise SourceUnavailableError(
                f"source {self.name!r}: cannot attach {redact(self.url)}: {message}"
            ) from None
        return conn

    def _attach_string(self, kind: str) -> str:
        if kind == "sqlite":
            return str(self.sqlite_path)
        parts = urlsplit(self.url)
        if kind == "postgres":
            return "postgresql://" + self.url.split("://", 1)[1]
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
            sql += f" WHERE {quote_ident(table.cursor)} >= {self._since(since, types)}"
        order = table.key or ([table.cursor] if table.cursor else [])
        if order:
            sql += " ORDER BY " + ", ".join(quote_ident(k) for k in order)
        return sql

    def _since(self, value: str, types: dict[str, str]) -> str:
        """The cursor's lower bound: the watermark minus the overlap (times only)."""
        if value.lstrip("-").isdigit():
            return value
        overlap = self.config.overlap_seconds
        return f"({literal(value)}::TIMESTAMP - INTERVAL {overlap} SECOND)"

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
            message = scrub(str(exc), self.url)
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
            raise SourceError(
                f"source {self.name!r}, table {table.name!r}: extract failed: {exc}"
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
