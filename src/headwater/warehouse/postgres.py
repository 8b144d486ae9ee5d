"""The PostgreSQL warehouse: published tables in one schema of a PostgreSQL database.

Same contract as the DuckDB target. A load is one transaction: for each table
the new rows are read from lake Parquet by an in-memory DuckDB connection
(`_`-prefixed lineage columns left out), turned into CSV by pyarrow on a worker
thread, batch by batch, and streamed into `COPY ... FROM STDIN`. No row passes
through Python one at a time, and memory stays flat whatever the size.

- a new table is created and filled by COPY (`FREEZE`, since it is new);
- `replace`: every row deleted, then COPY;
- `merge`: the keys being loaded are COPYed into a temporary table, the rows
  with those keys (NULL-safe) deleted, then COPY;
- `append`: COPY.

Readers keep seeing the old rows until the commit. The watermark of every
table is written in the same transaction, then `before_commit()` is called,
then COMMIT; any error rolls everything back. Loads into one schema are
serialised by a transaction-level advisory lock, and every lock is waited for
at most `lock_timeout` seconds. New columns are added, widened types altered; a
type change that is not a widening stops the load, naming table, column and
types. The password of the URL never appears in `location` or in a message.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import duckdb
import psycopg
import pyarrow as pa

from headwater.config import PostgresWarehouseConfig, WarehouseConfig
from headwater.errors import HeadwaterError, TransientError, WarehouseError
from headwater.lake.store import DUCKDB_SETTINGS, Store
from headwater.lake.tables import scan_sql
from headwater.sql import quote_ident
from headwater.warehouse.base import LoadItem, LoadResult, Watermark
from headwater.warehouse.pgtypes import CsvStream, PgColumn, pg_column, widens

LOADS = "_headwater_loads"
KEYS = "_headwater_keys"  # temporary table of the keys a merge replaces
CONNECT_TIMEOUT = 10  # seconds
MAX_IDENTIFIER = 63  # bytes; PostgreSQL truncates longer names
# SQLSTATEs worth retrying: lock timeout, serialization failure, deadlock,
# server shutting down or starting, too many connections (and class 08, connection).
TRANSIENT_STATES = {"55P03", "40001", "40P01", "57P01", "57P02", "57P03", "53300"}


class WarehouseUnavailableError(TransientError):
    """The PostgreSQL server was unreachable, went away, or a lock was not granted in time."""


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


def _message(exc: BaseException) -> str:
    """A driver error on one line: primary message, then detail and context."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def _is_transient(exc: psycopg.Error, conn: psycopg.Connection[Any]) -> bool:
    state = exc.sqlstate
    if conn.broken or state in TRANSIENT_STATES or (state or "").startswith("08"):
        return True
    return isinstance(exc, psycopg.OperationalError) and state is None


class PostgresWarehouse:
    def __init__(
        self,
        url: str,
        schema_name: str = "public",
        store: Store | None = None,
        lock_timeout: float = 60.0,
    ) -> None:
        self._conninfo, self.location, self._secrets = split_url(url)
        self.schema_name = schema_name
        self.store = store
        self.lock_timeout = lock_timeout
        self._schema = quote_ident(schema_name)

    @classmethod
    def from_config(cls, config: WarehouseConfig, root: Path, store: Store) -> PostgresWarehouse:
        assert isinstance(config, PostgresWarehouseConfig)
        return cls(config.url.get_secret_value(), config.schema_name, store)

    def _scrub(self, text: str) -> str:
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
        except psycopg.OperationalError as exc:
            raise WarehouseUnavailableError(
                f"warehouse {self.location}: cannot connect: {self._scrub(_message(exc))}"
            ) from None
        except psycopg.Error as exc:
            raise WarehouseError(
                f"warehouse {self.location}: cannot connect: {self._scrub(_message(exc))}"
            ) from None

    def _error(
        self, exc: BaseException, conn: psycopg.Connection[Any], table: str | None, what: str
    ) -> HeadwaterError:
        where = f"warehouse {self.location}" + ("" if table is None else f", table {table!r}")
        text = self._scrub(_message(exc))
        if isinstance(exc, psycopg.Error) and _is_transient(exc, conn):
            return WarehouseUnavailableError(f"{where}: {what} (may succeed if retried): {text}")
        return WarehouseError(f"{where}: {what}: {text}")

    @contextlib.contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for reading; driver errors become headwater errors."""
        conn = self._connect()
        try:
            with conn:
                yield conn
        except psycopg.Error as exc:
            raise self._error(exc, conn, None, "cannot read") from None
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

    def load(
        self, items: list[LoadItem], run_id: int, before_commit: Callable[[], None]
    ) -> list[LoadResult]:
        conn = self._connect()
        table: str | None = None
        results: list[LoadResult] = []
        try:
            duck = duckdb.connect(config=DUCKDB_SETTINGS)
            try:
                if self.store is not None:
                    self.store.configure_duckdb(duck)
                self._begin(conn)
                for item in items:
                    table = item.table
                    results.append(self._load_one(conn, duck, item))
                    conn.execute(
                        f"INSERT INTO {self._loads} VALUES (%s, %s, %s, %s, now()) "
                        "ON CONFLICT (table_name) DO UPDATE SET max_batch = EXCLUDED.max_batch, "
                        "snapshot_id = EXCLUDED.snapshot_id, run_id = EXCLUDED.run_id, "
                        "loaded_at = EXCLUDED.loaded_at",
                        [item.table, item.max_batch, item.snapshot_id, run_id],
                    )
                table = None
            finally:
                duck.close()
            before_commit()
            conn.commit()
        except (psycopg.Error, duckdb.Error, pa.ArrowException) as exc:
            self._rollback(conn)
            raise self._error(exc, conn, table, "load rolled back") from None
        except BaseException:
            self._rollback(conn)
            raise
        finally:
            conn.close()
        return results

    @staticmethod
    def _rollback(conn: psycopg.Connection[Any]) -> None:
        if not conn.broken and not conn.closed:
            with contextlib.suppress(psycopg.Error):  # else the server drops it with the connection
                conn.rollback()

    def _begin(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET LOCAL lock_timeout = {int(self.lock_timeout * 1000)}")
        # One load at a time per schema (lock_timeout bounds the wait).
        key = hashlib.sha256(f"headwater.load:{self.schema_name}".encode()).digest()[:8]
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(key, signed=True)])
        [(has_schema,)] = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", [self.schema_name]
        ).fetchall()
        if not has_schema:
            conn.execute(f"CREATE SCHEMA {self._schema}")
        [(has_loads,)] = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", [self._loads]
        ).fetchall()
        if not has_loads:
            conn.execute(
                f"CREATE TABLE {self._loads} (table_name text PRIMARY KEY, max_batch bigint, "
                "snapshot_id bigint, run_id bigint, loaded_at timestamp with time zone)"
            )

    def _load_one(
        self, conn: psycopg.Connection[Any], duck: duckdb.DuckDBPyConnection, item: LoadItem
    ) -> LoadResult:
        source = scan_sql(item.files)
        described = duck.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        columns: list[PgColumn] = []
        for name, duck_type in ((str(r[0]), str(r[1])) for r in described):
            if name.startswith("_"):
                continue
            column = pg_column(name, duck_type)
            if column is None:
                raise WarehouseError(
                    f"warehouse table {item.table!r}, column {name!r}: DuckDB type {duck_type} "
                    "has no PostgreSQL equivalent here (STRUCT, MAP, UNION and nested lists are "
                    "not loaded); cast or drop the column in the model"
                )
            columns.append(column)
        where = "" if item.after_batch is None else f" WHERE _batch > {int(item.after_batch)}"
        table = f"{self._schema}.{quote_ident(item.table)}"
        created, added = self._ensure_table(conn, item.table, columns)
        if not created and item.mode == "replace":
            conn.execute(f"DELETE FROM {table}")
        elif not created and item.mode == "merge":
            self._delete_keys(conn, duck, item, columns, f"FROM {source}{where}")
        select = ", ".join(c.select for c in columns)
        inserted = self._copy(
            conn, duck, table, columns, f"SELECT {select} FROM {source}{where}", freeze=created
        )
        total = inserted
        if not created and item.mode != "replace":
            [(total,)] = conn.execute(f"SELECT count(*) FROM {table}").fetchall()
        return LoadResult(item.table, item.mode, inserted, int(total), added)

    def _copy(
        self,
        conn: psycopg.Connection[Any],
        duck: duckdb.DuckDBPyConnection,
        table: str,
        columns: list[PgColumn],
        select: str,
        freeze: bool = False,
    ) -> int:
        names = ", ".join(quote_ident(c.name) for c in columns)
        options = "FORMAT csv, FREEZE" if freeze else "FORMAT csv"
        with conn.cursor() as cur:
            with (
                cur.copy(f"COPY {table} ({names}) FROM STDIN ({options})") as copy,
                CsvStream(duck, select) as chunks,
            ):
                for chunk in chunks:
                    copy.write(chunk)
            return max(cur.rowcount, 0)

    def _delete_keys(
        self,
        conn: psycopg.Connection[Any],
        duck: duckdb.DuckDBPyConnection,
        item: LoadItem,
        columns: list[PgColumn],
        rows: str,
    ) -> None:
        """Delete the rows whose key is being loaded; NULL matches NULL."""
        by_name = {c.name: c for c in columns}
        missing = [k for k in item.unique_key if k not in by_name]
        if not item.unique_key or missing:
            raise WarehouseError(
                f"warehouse table {item.table!r}: merge key {item.unique_key} is not among the "
                f"loaded columns {sorted(by_name)}"
            )
        table = f"{self._schema}.{quote_ident(item.table)}"
        [(present,)] = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchall()
        if not present:
            return
        keys = [by_name[k] for k in item.unique_key]
        defs = ", ".join(f"{quote_ident(k.name)} {k.pg_type}" for k in keys)
        conn.execute(f"CREATE TEMPORARY TABLE {KEYS} ({defs}) ON COMMIT DROP")
        self._copy(conn, duck, KEYS, keys, f"SELECT {', '.join(k.select for k in keys)} {rows}")
        conn.execute(f"ANALYZE {KEYS}")
        ids = [quote_ident(k.name) for k in keys]
        patterns = conn.execute(
            f"SELECT DISTINCT {', '.join(f'{i} IS NULL' for i in ids)} FROM {KEYS}"
        ).fetchall()
        # One DELETE per pattern of NULL key columns: each joins on `=` (a hash join),
        # where `IS NOT DISTINCT FROM` would force a nested loop.
        for pattern in patterns:
            nulls = [i for i, null in zip(ids, pattern, strict=True) if null]
            equal = [i for i, null in zip(ids, pattern, strict=True) if not null]
            match = [f"t.{i} IS NULL" for i in nulls]
            if equal:
                match += [f"t.{i} = s.{i}" for i in equal] + [f"s.{i} IS NULL" for i in nulls]
                conn.execute(f"DELETE FROM {table} t USING {KEYS} s WHERE {' AND '.join(match)}")
            else:
                conn.execute(f"DELETE FROM {table} t WHERE {' AND '.join(match)}")
        conn.execute(f"DROP TABLE {KEYS}")

    def _ensure_table(
        self, conn: psycopg.Connection[Any], table: str, columns: list[PgColumn]
    ) -> tuple[bool, list[str]]:
        """Create the table, or evolve it: (created, columns added)."""
        for ident in (table, *(c.name for c in columns)):
            if len(ident.encode()) > MAX_IDENTIFIER:
                raise WarehouseError(
                    f"warehouse table {table!r}: name {ident!r} is longer than PostgreSQL's "
                    f"{MAX_IDENTIFIER} bytes"
                )
        existing = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [self.schema_name, table],
        ).fetchall()
        target = f"{self._schema}.{quote_ident(table)}"
        if not existing:
            defs = ", ".join(f"{quote_ident(c.name)} {c.pg_type}" for c in columns)
            conn.execute(f"CREATE TABLE {target} ({defs})")
            return True, []
        have = {str(r[0]): str(r[1]) for r in existing}
        added: list[str] = []
        for c in columns:
            old = have.get(c.name)
            if old is None:
                conn.execute(f"ALTER TABLE {target} ADD COLUMN {quote_ident(c.name)} {c.pg_type}")
                added.append(c.name)
            elif old != c.pg_type:
                if not widens(old, c.pg_type):
                    raise WarehouseError(
                        f"warehouse table {table!r}, column {c.name!r}: type changed from {old} "
                        f"to {c.pg_type}, which is not a widening; the load stopped (change the "
                        "model back, or alter the column in the warehouse)"
                    )
                conn.execute(
                    f"ALTER TABLE {target} ALTER COLUMN {quote_ident(c.name)} TYPE {c.pg_type}"
                )
        return False, added
