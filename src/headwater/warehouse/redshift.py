"""The Redshift warehouse: lake Parquet staged on S3, `COPY ... FORMAT AS PARQUET`, then MERGE.

A load stages every table first: an in-memory DuckDB connection reads the
table's new rows from the lake (`_`-prefixed lineage columns left out, only
`_batch` greater than the watermark) and writes them as Parquet under
`<staging_url>/run=<run id>/<table>/`, each column cast to the DuckDB twin of
its Redshift type. Then one Redshift transaction (see `redshift_sql`) copies
each prefix into a temporary table with the same columns in the same order
(COPY from Parquet maps columns by position), deduplicates it on the unique
key, writes it in the table's mode, and records the watermarks. After COMMIT
the run's staged files are deleted; after a failure they are kept, and the
error says where.

Status: the SQL is golden-tested and the staging is tested against an S3 API
server; loading has not been verified against a live Redshift cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import botocore.exceptions
import duckdb
import psycopg
from psycopg.conninfo import make_conninfo

from headwater.config import RedshiftWarehouseConfig, WarehouseConfig
from headwater.errors import (
    TERMINAL_MESSAGES,
    ConfigError,
    HeadwaterError,
    WarehouseError,
    WarehouseUnavailableError,
    transient_message,
)
from headwater.lake.s3 import S3Settings, split_s3_url, translate
from headwater.lake.store import DUCKDB_SETTINGS, Store
from headwater.lake.tables import scan_sql
from headwater.sql import literal, quote_ident
from headwater.warehouse.base import LoadItem, LoadResult, Watermark
from headwater.warehouse.redshift_sql import (
    Column,
    Statement,
    TableLoad,
    catalog_type,
    columns_sql,
    evolve,
    load_statements,
    loads_exist_sql,
    redshift_type,
    staging_cast_type,
    tables_sql,
    watermarks_sql,
)

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger("headwater.warehouse")

DEFAULT_PORT = 5439
STAGE_FILE_SIZE = "256MB"  # staged Parquet is split into files of about this size


def _unavailable(exc: psycopg.Error, text: str) -> bool:
    """An OperationalError that is not a failed login or a missing database: try again."""
    lower = text.lower()
    if any(t in lower for t in TERMINAL_MESSAGES):
        return False
    return isinstance(exc, psycopg.OperationalError) or transient_message(text)


class SqlConnection(Protocol):
    """The little the target needs from a database connection (tests record it)."""

    def execute(self, sql: str) -> None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class PsycopgConnection:
    """A psycopg 3 connection in autocommit mode: transactions are explicit BEGIN/COMMIT."""

    def __init__(self, conninfo: str) -> None:
        # No automatic server-side prepares: plain statements, one at a time.
        self._conn = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)
        self._cursor = self._conn.cursor()

    def execute(self, sql: str) -> None:
        self._cursor.execute(sql)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class RedshiftURL:
    host: str
    port: int
    database: str
    user: str | None
    password: str | None = field(repr=False)
    options: dict[str, str] = field(default_factory=dict, repr=False)


def parse_url(url: str) -> RedshiftURL:
    """`redshift://user:password@host:5439/database?sslmode=verify-full` (never echoed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redshift", "postgresql", "postgres") or not parts.hostname:
        raise ConfigError("warehouse.url: expected redshift://user:password@host:5439/database")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError("warehouse.url: the port is not a number") from None
    return RedshiftURL(
        host=parts.hostname,
        port=port,
        database=unquote(parts.path.strip("/")) or "dev",
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        options=dict(parse_qsl(parts.query)),
    )


def conninfo(url: RedshiftURL) -> str:
    """The libpq connection string: TLS required unless the URL's query says otherwise."""
    params: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "sslmode": "require",
        "connect_timeout": 30,
        "application_name": "headwater",
    }
    if url.user:
        params["user"] = url.user
    if url.password:
        params["password"] = url.password
    params.update(url.options)
    return make_conninfo(**params)


@dataclass(frozen=True)
class StagedTable:
    table: str
    url: str  # the prefix COPY reads, ending with "/"
    columns: list[Column]  # in the files' column order, with their Redshift types
    rows: int
    files: list[str]


class RedshiftWarehouse:
    def __init__(
        self,
        config: RedshiftWarehouseConfig,
        store: Store,
        connect: Callable[[], SqlConnection] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.schema = config.schema_name
        self.url = parse_url(config.url.get_secret_value())
        self.location = f"{self.url.host}:{self.url.port}/{self.url.database}/{self.schema}"
        self.bucket, self.prefix = split_s3_url(config.staging_url)
        self._connect_to = connect or (lambda: PsycopgConnection(conninfo(self.url)))

    @classmethod
    def from_config(cls, config: WarehouseConfig, root: Path, store: Store) -> RedshiftWarehouse:
        assert isinstance(config, RedshiftWarehouseConfig)
        return cls(config, store)

    # ------------------------------------------------------------ helpers

    @cached_property
    def s3(self) -> S3Settings:
        return S3Settings.resolve(self.config.s3)

    @cached_property
    def _s3_client(self) -> Any:
        return self.s3.client()

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def run_url(self, run_id: int) -> str:
        """Where a run's staged files go: `<staging_url>/run=<run id>/`."""
        return f"s3://{self.bucket}/{self._key(f'run={run_id:08d}')}/"

    def _scrub(self, text: object) -> str:
        message = str(text).strip()
        password = self.url.password
        if password:
            for form in {password, quote(password, safe="")}:
                message = message.replace(form, "***")
        return message

    def _fail(self, exc: psycopg.Error, what: str, then: str = "") -> NoReturn:
        text = self._scrub(exc)
        message = f"redshift {self.location}: {what}: {text}{then}"
        if _unavailable(exc, text):
            raise WarehouseUnavailableError(message) from None
        raise WarehouseError(message) from None

    def _connect(self) -> SqlConnection:
        try:
            return self._connect_to()
        except psycopg.Error as exc:
            text = self._scrub(exc)
            kind = WarehouseUnavailableError if _unavailable(exc, text) else WarehouseError
            raise kind(f"redshift {self.location}: cannot connect: {text}") from None

    def _query(self, conn: SqlConnection, sql: str, then: str = "") -> list[tuple[Any, ...]]:
        try:
            conn.execute(sql)
            return conn.fetchall()
        except psycopg.Error as exc:
            self._fail(exc, "query failed", then)

    def _remove(self, key_prefix: str) -> None:
        """Delete every staged object under a key prefix (ending with "/")."""
        client = self._s3_client
        try:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=key_prefix
            )
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk]}
                )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise translate(exc, f"delete under s3://{self.bucket}/{key_prefix}") from None

    # ------------------------------------------------------------ reading

    def tables(self) -> list[str]:
        conn = self._connect()
        try:
            return [str(r[0]) for r in self._query(conn, tables_sql(self.schema))]
        finally:
            conn.close()

    def watermarks(self) -> dict[str, Watermark]:
        conn = self._connect()
        try:
            [(exists,)] = self._query(conn, loads_exist_sql(self.schema))
            if not exists:
                return {}
            rows = self._query(conn, watermarks_sql(self.schema))
            return {str(r[0]): Watermark(r[1], r[2]) for r in rows}
        finally:
            conn.close()

    def _existing_columns(
        self, conn: SqlConnection, tables: list[str], then: str
    ) -> dict[str, list[Column]]:
        """The warehouse columns of these tables (read before the transaction begins)."""
        found: dict[str, list[Column]] = {}
        for table, name, data_type, length, precision, scale in self._query(
            conn, columns_sql(self.schema, tables), then
        ):
            found.setdefault(str(table).lower(), []).append(
                Column(str(name), catalog_type(str(data_type), length, precision, scale))
            )
        return found

    # ------------------------------------------------------------ staging

    def stage(self, item: LoadItem, run_id: int) -> StagedTable:
        """Write the item's rows to load as Parquet under `<run_url>/<table>/`."""
        key = self._key(f"run={run_id:08d}", item.table)
        url = f"s3://{self.bucket}/{key}/"
        self._remove(key + "/")  # a retried run's leftovers would be copied twice
        conn = duckdb.connect(config=DUCKDB_SETTINGS)
        try:
            self.store.configure_duckdb(conn)
            self.s3.configure_duckdb(conn, name="headwater_staging", scope=self.config.staging_url)
            source = scan_sql(item.files)
            described = conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            columns = [
                Column(str(r[0]), redshift_type(str(r[1]), item.table, str(r[0])))
                for r in described
                if not str(r[0]).startswith("_")
            ]
            if not columns:
                raise WarehouseError(
                    f"warehouse table {item.table!r}: the model has no column to load "
                    "(every column name starts with _)"
                )
            names = [quote_ident(c.name) for c in columns]
            select = ", ".join(
                f"CAST({n} AS {staging_cast_type(c.type)}) AS {n}"
                for n, c in zip(names, columns, strict=True)
            )
            where = "" if item.after_batch is None else f" WHERE _batch > {int(item.after_batch)}"
            [(rows, files)] = conn.execute(
                f"COPY (SELECT {select} FROM {source}{where}) TO {literal(url.rstrip('/'))} "
                f"(FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES {literal(STAGE_FILE_SIZE)}, "
                "RETURN_FILES true)"
            ).fetchall()
        except duckdb.Error as exc:
            kind = WarehouseUnavailableError if transient_message(str(exc)) else WarehouseError
            raise kind(
                f"redshift {self.location}: table {item.table!r}: staging to {url} failed: {exc}"
            ) from None
        finally:
            conn.close()
        return StagedTable(item.table, url, columns, int(rows), [str(f) for f in files])

    # ------------------------------------------------------------ loading

    def load(
        self, items: list[LoadItem], run_id: int, before_commit: Callable[[], None]
    ) -> list[LoadResult]:
        kept = f"staged files kept under {self.run_url(run_id)}"
        try:
            staged = [self.stage(item, run_id) for item in items]
        except HeadwaterError as exc:
            raise type(exc)(f"{exc}; {kept}") from None
        conn = self._connect()
        try:
            existing = self._existing_columns(conn, [i.table for i in items], f"; {kept}")
            loads = [
                TableLoad(
                    table=item.table,
                    mode=item.mode,
                    unique_key=list(item.unique_key),
                    columns=s.columns,
                    staged_url=s.url,
                    max_batch=item.max_batch,
                    snapshot_id=item.snapshot_id,
                    existing=existing.get(item.table.lower()),
                )
                for item, s in zip(items, staged, strict=True)
            ]
            try:
                statements = load_statements(self.schema, self.config.iam_role, run_id, loads)
            except WarehouseError as exc:
                raise WarehouseError(f"redshift {self.location}: {exc}; {kept}") from None
            counts = self._run(conn, statements, before_commit, kept)
        finally:
            conn.close()
        self._clean(run_id)
        return [
            LoadResult(
                table=load.table,
                mode=load.mode,
                rows_loaded=counts[load.table]["rows_loaded"],
                rows_in_table=counts[load.table]["rows_in_table"],
                columns_added=[c.name for c in evolve(load).added],
            )
            for load in loads
        ]

    def _run(
        self,
        conn: SqlConnection,
        statements: list[Statement],
        before_commit: Callable[[], None],
        kept: str,
    ) -> dict[str, dict[str, int]]:
        """Execute BEGIN ... COMMIT; roll back on any error. Returns the fetched counts."""
        *body, commit = statements
        assert commit.sql == "COMMIT"
        counts: dict[str, dict[str, int]] = {}
        current = commit
        try:
            for current in body:
                conn.execute(current.sql)
                if current.result is not None and current.table is not None:
                    [(n,)] = conn.fetchall()
                    counts.setdefault(current.table, {})[current.result] = int(n)
            before_commit()
            current = commit
            conn.execute(commit.sql)
        except psycopg.Error as exc:
            self._rollback(conn)
            table = f"table {current.table!r}, " if current.table else ""
            self._fail(
                exc, f"load rolled back: {table}{current.sql.split()[0]} failed", f"; {kept}"
            )
        except BaseException:
            self._rollback(conn)
            raise
        return counts

    def _rollback(self, conn: SqlConnection) -> None:
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            log.warning(
                "redshift %s: ROLLBACK failed; the server ends the transaction", self.location
            )

    def _clean(self, run_id: int) -> None:
        """Best effort: a committed load's staged files are no longer needed."""
        try:
            self._remove(self._key(f"run={run_id:08d}") + "/")
        except HeadwaterError as exc:
            log.warning(
                "redshift %s: staged files left under %s: %s",
                self.location,
                self.run_url(run_id),
                exc,
            )
