"""The PostgreSQL warehouse: published tables in one schema of a PostgreSQL database.

Same contract as the DuckDB target. A load is one PostgreSQL transaction, run
from an in-memory DuckDB connection with the database attached through
DuckDB's postgres extension (loaded from its package, never downloaded). Each
table's new rows are read from lake Parquet (`_`-prefixed lineage columns left
out) by `INSERT INTO <attached table> SELECT ...`, which the extension sends as
one `COPY ... FROM STDIN (FORMAT binary)`: no row passes through Python, and
memory stays flat whatever the size. DDL, deletes and watermarks go through
`postgres_execute`, reads that must see the transaction through
`postgres_query`, all on the transaction's one connection.

A new table is created with explicit PostgreSQL types; `replace` deletes every
row first; `merge` writes the keys being loaded into an UNLOGGED scratch table
(created and dropped inside the transaction) and deletes the rows with those
keys (NULL-safe) first; `append` only inserts. Readers see the old rows until
the commit. Every table's watermark is written in the same transaction, then
`before_commit()` is called, then COMMIT; any error rolls everything back.
Loads into one schema are serialised by an advisory lock, and no lock is waited
for longer than `lock_timeout`. New columns are added, widened types altered;
any other type change stops the load. The URL's password never appears in
`location` or in a message.

An unreachable server, a dropped connection, a lock not granted within
`lock_timeout`, a deadlock, a serialization failure or too many connections
raise `WarehouseUnavailableError` (transient: the pipeline retries the load,
which is safe since a failed transaction changed nothing); a failed login, a
missing database or role, and everything else raise `WarehouseError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import duckdb
import psycopg

from headwater import extensions
from headwater.config import PostgresWarehouseConfig, WarehouseConfig
from headwater.errors import (
    TERMINAL_MESSAGES,
    HeadwaterError,
    WarehouseError,
    WarehouseUnavailableError,
    transient_message,
)
from headwater.lake.store import Store
from headwater.lake.tables import scan_sql
from headwater.sql import literal, quote_ident
from headwater.warehouse.base import LoadItem, LoadResult, Watermark
from headwater.warehouse.pgtypes import PgColumn, evolve, pg_columns

LOADS = "_headwater_loads"
PG = "headwater_pg"  # the PostgreSQL database, as attached to the load's DuckDB connection
CONNECT_TIMEOUT = 10  # seconds
# Connection parameters headwater sets, whatever the URL says.
CONNECT_PARAMS = {
    "connect_timeout": str(CONNECT_TIMEOUT),
    "application_name": "headwater",
    "client_encoding": "UTF8",
}
# SQLSTATEs worth retrying: lock timeout, serialization failure, deadlock,
# server shutting down or starting, too many connections (and class 08, connection).
TRANSIENT_STATES = {"55P03", "40001", "40P01", "57P01", "57P02", "57P03", "53300"}
# The same conditions in the extension's messages, which carry no SQLSTATE.
TRANSIENT_MESSAGE = re.compile(
    "lock timeout|could not serialize access|deadlock detected|terminating connection|"
    "the database system is|too many connections|remaining connection slots|"
    "server closed the connection|no connection to the server|could not send data to server|"
    "could not receive data from server|connection to server|ssl syscall error|"
    "ssl connection has been closed|unable to connect to postgres",
    re.IGNORECASE,
)


def _terminal(text: str) -> bool:
    """A failed login, a missing database or role: asking again gives the same answer."""
    lower = text.lower()
    return any(t in lower for t in TERMINAL_MESSAGES)


def split_url(url: str) -> tuple[str, str, list[str]]:
    """(conninfo for psycopg, the URL with its password as ***, the secrets to scrub)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise WarehouseError(
            "warehouse.url: expected postgresql://user:password@host:port/database "
            f"(got a URL with scheme {parts.scheme!r})"
        )
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    query = parse_qsl(parts.query, keep_blank_values=True)
    secrets = [password, *(v for k, v in query if k == "password")]
    public_query = urlencode([(k, "***" if k == "password" else v) for k, v in query], safe="*")
    userinfo = f"{user}:***" if password else user
    public = urlunsplit(("postgresql", f"{userinfo}{at}{hosts}", parts.path, public_query, ""))
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
    secrets = [s for s in {*secrets, *(unquote(s) for s in secrets)} if s]
    return conninfo, public, secrets


def attach_url(conninfo: str) -> str:
    """The libpq URL the extension connects with: the conninfo with `CONNECT_PARAMS` set.

    The URL's other parameters are kept byte for byte (libpq decodes `%XX`, not `+`).
    """
    parts = urlsplit(conninfo)
    query = [
        p for p in parts.query.split("&") if p and unquote(p.split("=")[0]) not in CONNECT_PARAMS
    ]
    query += [f"{k}={v}" for k, v in CONNECT_PARAMS.items()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(query), ""))


def _message(exc: BaseException) -> str:
    """A driver error on one line: primary message, then detail and context."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    text = "; ".join(lines) or type(exc).__name__
    if "NULL-byte" in text:  # the extension's own check, before PostgreSQL sees the value
        return (
            "a text value contains a NUL character (0x00), which PostgreSQL cannot store; "
            "remove it in the model, e.g. replace(column, chr(0), '')"
        )
    return text


def _is_transient(exc: psycopg.Error, conn: psycopg.Connection[Any]) -> bool:
    state = exc.sqlstate
    if conn.broken or state in TRANSIENT_STATES or (state or "").startswith("08"):
        return True
    return isinstance(exc, psycopg.OperationalError) and state is None


def _unpacked(column: str) -> str:
    """PostgreSQL: the text[] of a JSON array of strings and nulls, in order (NULL stays NULL)."""
    elements = (
        f"SELECT e FROM jsonb_array_elements_text({column}::jsonb) WITH ORDINALITY AS x(e, n) "
        "ORDER BY n"
    )
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE ARRAY({elements}) END"


class Remote:
    """The attached PostgreSQL database, inside the DuckDB connection's one transaction."""

    def __init__(self, duck: duckdb.DuckDBPyConnection) -> None:
        self.duck = duck
        self._stale = False  # the extension's cached catalog predates our DDL

    def execute(self, sql: str, ddl: bool = False) -> None:
        """Run statements (`;`-separated) in PostgreSQL, in the transaction."""
        self.duck.execute(f"CALL postgres_execute({literal(PG)}, {literal(sql)})").fetchall()
        self._stale = self._stale or ddl

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a PostgreSQL query run in the transaction (name every column)."""
        return self.duck.execute(
            f"SELECT * FROM postgres_query({literal(PG)}, {literal(sql)})"
        ).fetchall()

    def insert(self, table: str, columns: list[PgColumn], rows: str) -> int:
        """INSERT `SELECT <columns> <rows>` (DuckDB SQL) into `table`: one binary COPY."""
        if self._stale:
            self.duck.execute("CALL pg_clear_cache()").fetchall()
            self._stale = False
        names = ", ".join(quote_ident(c.name) for c in columns)
        select = ", ".join(c.select for c in columns)
        [(count,)] = self.duck.execute(
            f"INSERT INTO {PG}.{table} ({names}) SELECT {select} {rows}"
        ).fetchall()
        return int(count)


class PostgresWarehouse:
    def __init__(
        self,
        url: str,
        schema_name: str = "public",
        store: Store | None = None,
        lock_timeout: float = 60.0,
    ) -> None:
        self._conninfo, self.location, self._secrets = split_url(url)
        self._attach_url = attach_url(self._conninfo)
        self.schema_name = schema_name
        self.store = store
        self.lock_timeout = lock_timeout
        self._schema = quote_ident(schema_name)

    @classmethod
    def from_config(cls, config: WarehouseConfig, root: Path, store: Store) -> PostgresWarehouse:
        assert isinstance(config, PostgresWarehouseConfig)
        return cls(config.url.get_secret_value(), config.schema_name, store)

    def _scrub(self, text: str) -> str:
        text = text.replace(self._attach_url, self.location)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._conninfo,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="headwater",
                client_encoding="UTF8",
            )
        except psycopg.Error as exc:
            text = self._scrub(_message(exc))
            unavailable = isinstance(exc, psycopg.OperationalError) and not _terminal(text)
            kind = WarehouseUnavailableError if unavailable else WarehouseError
            raise kind(f"warehouse {self.location}: cannot connect: {text}") from None

    @contextlib.contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for reading; driver errors become headwater errors."""
        conn = self._connect()
        try:
            with conn:
                yield conn
        except psycopg.Error as exc:
            where = f"warehouse {self.location}"
            text = self._scrub(_message(exc))
            if _is_transient(exc, conn):
                raise WarehouseUnavailableError(
                    f"{where}: cannot read (may succeed if retried): {text}"
                ) from None
            raise WarehouseError(f"{where}: cannot read: {text}") from None
        finally:
            conn.close()

    def tables(self) -> list[str]:
        with self._session() as conn:
            rows = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname <> %s "
                'ORDER BY c.relname COLLATE "C"',
                [self.schema_name, LOADS],
            ).fetchall()
        return [str(r[0]) for r in rows]

    def watermarks(self) -> dict[str, Watermark]:
        with self._session() as conn:
            [(exists,)] = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL", [self._loads]
            ).fetchall()
            if not exists:
                return {}
            rows = conn.execute(
                f"SELECT table_name, max_batch, snapshot_id FROM {self._loads}"
            ).fetchall()
        return {str(r[0]): Watermark(r[1], r[2]) for r in rows}

    @property
    def _loads(self) -> str:
        return f"{self._schema}.{quote_ident(LOADS)}"

    def _error(self, exc: duckdb.Error, table: str | None) -> HeadwaterError:
        where = f"warehouse {self.location}" + ("" if table is None else f", table {table!r}")
        text = self._scrub(_message(exc))
        if (TRANSIENT_MESSAGE.search(text) and not _terminal(text)) or transient_message(text):
            return WarehouseUnavailableError(
                f"{where}: load rolled back (may succeed if retried): {text}"
            )
        return WarehouseError(f"{where}: load rolled back: {text}")

    def _attach(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection that reads the lake, with the database attached as `PG`."""
        duck = extensions.connect(["postgres_scanner"])
        attaching = False
        try:
            if self.store is not None:
                self.store.configure_duckdb(duck)
            # Binary COPY is the default; the extension falls back to the text format by
            # itself for a table with a jsonb, text[] or numeric[] column.
            duck.execute("SET TimeZone = 'UTC'; SET pg_use_binary_copy = true").fetchall()
            attaching = True
            duck.execute(
                f"ATTACH {literal(self._attach_url)} AS {PG} (TYPE postgres, "
                f"SCHEMA {literal(self.schema_name)}, ISOLATION_LEVEL 'read committed')"
            ).fetchall()
            return duck
        except BaseException as exc:
            duck.close()
            if not isinstance(exc, duckdb.Error):
                raise
            text = self._scrub(_message(exc))
            unavailable = attaching and not _terminal(text)
            kind = WarehouseUnavailableError if unavailable else WarehouseError
            what = "cannot connect" if attaching else "cannot set up DuckDB"
            raise kind(f"warehouse {self.location}: {what}: {text}") from None

    def load(
        self, items: list[LoadItem], run_id: int, before_commit: Callable[[], None]
    ) -> list[LoadResult]:
        duck = self._attach()
        table: str | None = None
        results: list[LoadResult] = []
        try:
            duck.execute("BEGIN TRANSACTION").fetchall()
            pg = Remote(duck)
            self._begin(pg)
            for item in items:
                table = item.table
                results.append(self._load_one(pg, item))
                pg.execute(
                    f"INSERT INTO {self._loads} VALUES ({literal(item.table)}, "
                    f"{int(item.max_batch)}, {int(item.snapshot_id)}, {int(run_id)}, now()) "
                    "ON CONFLICT (table_name) DO UPDATE SET max_batch = EXCLUDED.max_batch, "
                    "snapshot_id = EXCLUDED.snapshot_id, run_id = EXCLUDED.run_id, "
                    "loaded_at = EXCLUDED.loaded_at"
                )
            table = None
            before_commit()
            duck.execute("COMMIT").fetchall()
        except duckdb.Error as exc:
            self._rollback(duck)
            raise self._error(exc, table) from None
        except BaseException:
            self._rollback(duck)
            raise
        finally:
            duck.close()  # closes the PostgreSQL connection; an open transaction rolls back
        return results

    @staticmethod
    def _rollback(duck: duckdb.DuckDBPyConnection) -> None:
        with contextlib.suppress(duckdb.Error):  # else the server drops it with the connection
            duck.execute("ROLLBACK").fetchall()

    def _begin(self, pg: Remote) -> None:
        # One load at a time per schema (lock_timeout bounds the wait). UTC, as in DuckDB:
        # no instant depends on a session's time zone, whichever COPY format is used.
        key = hashlib.sha256(f"headwater.load:{self.schema_name}".encode()).digest()[:8]
        pg.execute(
            f"SET LOCAL lock_timeout = {int(self.lock_timeout * 1000)}; "
            "SET LOCAL TimeZone = 'UTC'; SET LOCAL standard_conforming_strings = on; "
            f"SELECT pg_advisory_xact_lock({int.from_bytes(key, signed=True)})"
        )
        [(has_schema, has_loads)] = pg.query(
            "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = "
            f"{literal(self.schema_name)}) AS has_schema, "
            f"to_regclass({literal(self._loads)}) IS NOT NULL AS has_loads"
        )
        ddl = [] if has_schema else [f"CREATE SCHEMA {self._schema}"]
        if not has_loads:
            ddl.append(
                f"CREATE TABLE {self._loads} (table_name text PRIMARY KEY, max_batch bigint, "
                "snapshot_id bigint, run_id bigint, loaded_at timestamp with time zone)"
            )
        if ddl:
            pg.execute("; ".join(ddl), ddl=True)

    def _load_one(self, pg: Remote, item: LoadItem) -> LoadResult:
        source = scan_sql(item.files)
        described = pg.duck.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        columns = pg_columns(item.table, [(str(r[0]), str(r[1])) for r in described])
        where = "" if item.after_batch is None else f" WHERE _batch > {int(item.after_batch)}"
        rows = f"FROM {source}{where}"
        table = f"{self._schema}.{quote_ident(item.table)}"
        created, added = self._ensure_table(pg, item.table, columns)
        if not created and item.mode == "replace":
            pg.execute(f"DELETE FROM {table}")
        elif not created and item.mode == "merge":
            self._delete_keys(pg, item, columns, rows)
        inserted = self._insert(pg, table, columns, rows)
        total = inserted
        if not created and item.mode != "replace":
            [(total,)] = pg.query(f"SELECT count(*) AS n FROM {table}")
        return LoadResult(item.table, item.mode, inserted, int(total), added)

    def _insert(self, pg: Remote, table: str, columns: list[PgColumn], rows: str) -> int:
        """Insert the rows (every write of staged rows, keys included, comes here); a table
        with text-list columns takes them through a scratch table.

        The extension writes a `text[]` column in COPY's text format without quoting an
        element that reads NULL, so the string 'NULL' (any case) arrived as a NULL element.
        Staged as JSON in a `text` column, each list arrives whole and PostgreSQL unpacks it.
        """
        if not any(c.pg_type == "text[]" for c in columns):
            return pg.insert(table, columns, rows)
        staged = [
            PgColumn(c.name, c.duck_type, "text", "JSON") if c.pg_type == "text[]" else c
            for c in columns
        ]
        scratch = self._scratch(pg, staged, "rows")
        inserted = pg.insert(scratch, staged, rows)
        names = ", ".join(quote_ident(c.name) for c in columns)
        values = ", ".join(
            _unpacked(quote_ident(c.name)) if c.pg_type == "text[]" else quote_ident(c.name)
            for c in columns
        )
        pg.execute(
            f"INSERT INTO {table} ({names}) SELECT {values} FROM {scratch}; DROP TABLE {scratch}",
            ddl=True,
        )
        return inserted

    def _scratch(self, pg: Remote, columns: list[PgColumn], kind: str = "keys") -> str:
        """A new UNLOGGED table for `columns` in the schema, to drop before the commit."""
        name = quote_ident(f"_headwater_{kind}_{uuid.uuid4().hex[:12]}")
        defs = ", ".join(f"{quote_ident(c.name)} {c.pg_type}" for c in columns)
        pg.execute(f"CREATE UNLOGGED TABLE {self._schema}.{name} ({defs})", ddl=True)
        return f"{self._schema}.{name}"

    def _delete_keys(self, pg: Remote, item: LoadItem, columns: list[PgColumn], rows: str) -> None:
        """Delete the rows whose key is being loaded; NULL matches NULL."""
        by_name = {c.name: c for c in columns}
        missing = [k for k in item.unique_key if k not in by_name]
        if not item.unique_key or missing:
            raise WarehouseError(
                f"warehouse table {item.table!r}: merge key {item.unique_key} is not among the "
                f"loaded columns {sorted(by_name)}"
            )
        table = f"{self._schema}.{quote_ident(item.table)}"
        [(present,)] = pg.query(f"SELECT EXISTS (SELECT 1 FROM {table}) AS present")
        if not present:
            return
        keys = [by_name[k] for k in item.unique_key]
        scratch = self._scratch(pg, keys)
        self._insert(pg, scratch, keys, rows)
        ids = [quote_ident(k.name) for k in keys]
        patterns = pg.query(
            "SELECT DISTINCT "
            + ", ".join(f"{i} IS NULL AS null_{n}" for n, i in enumerate(ids))
            + f" FROM {scratch}"
        )
        # One DELETE per pattern of NULL key columns: each joins on `=` (a hash join),
        # where `IS NOT DISTINCT FROM` would force a nested loop.
        statements = [f"ANALYZE {scratch}"]
        for pattern in patterns:
            match = [f"t.{i} IS NULL" for i, null in zip(ids, pattern, strict=True) if null]
            equal = [i for i, null in zip(ids, pattern, strict=True) if not null]
            if equal:
                match += [f"t.{i} = s.{i}" for i in equal]
                match += [f"s.{i} IS NULL" for i, null in zip(ids, pattern, strict=True) if null]
                statements.append(
                    f"DELETE FROM {table} t USING {scratch} s WHERE " + " AND ".join(match)
                )
            else:
                statements.append(f"DELETE FROM {table} t WHERE " + " AND ".join(match))
        statements.append(f"DROP TABLE {scratch}")
        pg.execute("; ".join(statements), ddl=True)

    def _ensure_table(
        self, pg: Remote, table: str, columns: list[PgColumn]
    ) -> tuple[bool, list[str]]:
        """Create the table, or evolve it: (created, columns added)."""
        existing = pg.query(
            "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE n.nspname = {literal(self.schema_name)} AND c.relname = {literal(table)} "
            "AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum"
        )
        target = f"{self._schema}.{quote_ident(table)}"
        if not existing:
            defs = ", ".join(f"{quote_ident(c.name)} {c.pg_type}" for c in columns)
            pg.execute(f"CREATE TABLE {target} ({defs})", ddl=True)
            return True, []
        ddl, added = evolve(table, target, {str(r[0]): str(r[1]) for r in existing}, columns)
        if ddl:
            pg.execute("; ".join(ddl), ddl=True)
        return False, added
