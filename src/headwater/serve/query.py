"""Read-only SQL over the warehouse, or over the lake (`--lake`).

Over the lake, every processed table is a view on its current Iceberg
snapshot's Parquet files, read in place, `quarantine` is a view over every
quarantined row, and `raw.<source>` reads what a source delivered (made for a
query that names it, see `headwater.serve.rawzone`). `lake_query` plans a query
first (`headwater.serve.scan`): the files and bytes it will read, with the
files its date and range predicates rule out left out of the views.
Results stream as Arrow record batches.

`connect_warehouse` reads whichever warehouse the project has: the DuckDB file
(read-only), or a PostgreSQL warehouse attached READ_ONLY to an in-memory DuckDB
with the packaged postgres extension, its schema the default (`USE`), so the same
DuckDB-dialect SQL runs on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from headwater import extensions
from headwater.config import FilesSource, PostgresWarehouseConfig
from headwater.errors import ConfigError, HeadwaterError
from headwater.lake.quarantine import COLUMNS, QuarantineZone
from headwater.lake.store import DUCKDB_SETTINGS, Store
from headwater.lake.tables import Tables, scan_sql
from headwater.project import Project
from headwater.serve import rawzone, scan
from headwater.serve.scan import ScanPlan, human
from headwater.sql import literal, quote_ident
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
        conn = duckdb.connect(str(path), read_only=True, config=DUCKDB_SETTINGS)
        try:
            yield conn
        finally:
            conn.close()
        return
    with lake_query(project) as query:
        query.build()
        yield query.conn


@dataclass
class LakeQuery:
    """A connection over the lake, and the plan of the query it is for (if any).

    Nothing is read before `build()`: planning lists files, never their data.
    """

    project: Project
    store: Store
    conn: duckdb.DuckDBPyConnection
    plan: ScanPlan = field(default_factory=ScanPlan)

    def check_scan(self, limit: int) -> None:
        """Refuse the query if its plan reads more than `limit` bytes, or cannot be told."""
        plan = self.plan
        if not plan.complete:
            why = "; ".join(
                [f"{r.name}: {r.unknown}" for r in plan.relations if r.unknown] + plan.notes
            )
            raise QueryError(
                f"refused by --max-scan: what the query reads cannot be planned ({why})"
            )
        if plan.bytes > limit:
            raise QueryError(
                f"refused by --max-scan: the query would scan {human(plan.bytes)} "
                f"({plan.bytes:,} bytes in {plan.files:,} files), over the limit of "
                f"{human(limit)} ({limit:,} bytes); filter on a date column to skip files, "
                "or raise --max-scan (see the plan with --explain)"
            )

    def build(self) -> None:
        """One view per processed table (pruned ones over the files kept), `quarantine`,
        and the raw relations the query names."""
        conn = self.conn
        tables = Tables.open(self.project.state_url, self.store)
        try:
            for name in tables.names():
                kept = self.plan.processed.get(name)
                if kept is not None:
                    select = kept.select()
                else:
                    files = tables.data_files(name)
                    if not files:
                        continue
                    select = f"SELECT * FROM {scan_sql(files)}"
                try:
                    conn.execute(f"CREATE VIEW {quote_ident(name)} AS {select}").fetchall()
                except duckdb.Error as exc:
                    raise QueryError(f"processed table {name!r}: cannot read it: {exc}") from None
        finally:
            tables.close()
        zone = QuarantineZone(self.store)
        if zone.has_files():
            conn.execute(
                f"CREATE VIEW quarantine AS SELECT * FROM {scan_sql(zone.glob())}"
            ).fetchall()
        else:
            cols = ", ".join(f"NULL::{t} AS {quote_ident(c)}" for c, t in COLUMNS.items())
            conn.execute(f"CREATE VIEW quarantine AS SELECT {cols} WHERE false").fetchall()
        for rel in self.plan.raw.values():
            try:
                rawzone.create_view(conn, self.project, self.store, rel)
            except duckdb.Error as exc:
                raise QueryError(f"raw.{rel.name}: cannot read the raw files: {exc}") from None


@contextmanager
def lake_query(project: Project, sql: str | None = None) -> Iterator[LakeQuery]:
    """A connection over the lake; with `sql`, the plan of what that query will read.

    The query must be read-only (`check_read_only`). Direct reads of files
    (`read_csv('s3://...')`) use the lake's S3 credentials, and a `files` source's
    own ones under its `s3://` path.
    """
    if not StateDB.exists(project.state_url):
        raise ConfigError("the lake is empty: run `headwater run` first")
    conn = duckdb.connect(":memory:", config=DUCKDB_SETTINGS)
    try:
        store = project.open_store()
        store.configure_duckdb(conn)
        _source_secrets(project, conn)
        query = LakeQuery(project, store, conn)
        if sql is not None:
            check_read_only(conn, sql)
            try:
                query.plan = scan.plan(project, sql, conn, store)
            except duckdb.Error as exc:
                raise QueryError(f"query failed: {exc}") from None
        yield query
    finally:
        conn.close()


def _source_secrets(project: Project, conn: duckdb.DuckDBPyConnection) -> None:
    """S3 credentials for each `files` source on S3, scoped to its path."""
    on_s3 = [
        (name, src)
        for name, src in project.config.sources.items()
        if isinstance(src, FilesSource) and src.path.startswith("s3://")
    ]
    if not on_s3:
        return
    from headwater.lake.s3 import S3Settings

    for i, (_, src) in enumerate(on_s3):
        settings = S3Settings.resolve(src.s3 or project.config.lake.s3)
        settings.configure_duckdb(conn, name=f"headwater_source_{i}", scope=src.path)


PG_ALIAS = "warehouse"  # the PostgreSQL warehouse, as attached by `connect_warehouse`


@contextmanager
def connect_warehouse(project: Project) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only DuckDB connection whose default schema is the project's warehouse:
    the DuckDB file, or a PostgreSQL warehouse attached READ_ONLY. Redshift is not read."""
    config = project.config.warehouse
    if isinstance(config, PostgresWarehouseConfig):
        conn = connect_postgres(config.url.get_secret_value(), config.schema_name)
        try:
            yield conn
        finally:
            conn.close()
    elif config.type == "duckdb":
        with connect(project, lake=False) as conn:
            yield conn
    else:
        raise ConfigError(
            f"warehouse type {config.type!r} cannot be read by headwater serve "
            "(a duckdb or postgres warehouse can)"
        )


def connect_postgres(url: str, schema_name: str = "public") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the PostgreSQL database attached READ_ONLY and `schema_name`
    as the default schema. Errors name the server with its password as ***."""
    from headwater.warehouse.postgres import attach_url, split_url

    conninfo, public, secrets = split_url(url)
    target = attach_url(conninfo)
    conn = extensions.connect(["postgres_scanner"])
    try:
        conn.execute("SET TimeZone = 'UTC'").fetchall()
        conn.execute(
            f"ATTACH {literal(target)} AS {PG_ALIAS} "
            f"(TYPE postgres, READ_ONLY, SCHEMA {literal(schema_name)})"
        ).fetchall()
        conn.execute(f"USE {PG_ALIAS}.{quote_ident(schema_name)}").fetchall()
    except duckdb.Error as exc:
        conn.close()
        text = scrub(str(exc), [target, conninfo], secrets, public)
        raise QueryError(f"warehouse {public}: cannot connect: {text}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def scrub(text: str, urls: list[str], secrets: list[str], public: str) -> str:
    """`text` with every URL replaced by its public form and every secret by ***."""
    for url in urls:
        text = text.replace(url, public)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def warehouse_scrub(project: Project, text: str) -> str:
    """An error message about the warehouse without its password (PostgreSQL URLs)."""
    config = project.config.warehouse
    if not isinstance(config, PostgresWarehouseConfig):
        return text
    from headwater.warehouse.postgres import attach_url, split_url

    conninfo, public, secrets = split_url(config.url.get_secret_value())
    return scrub(text, [attach_url(conninfo), conninfo], secrets, public)


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


def head(reader: pa.RecordBatchReader, limit: int) -> tuple[pa.Table, bool]:
    """The first `limit` rows of a result, and whether it had more (reads at most one
    batch past the limit, never the whole result)."""
    batches: list[pa.RecordBatch] = []
    seen = 0
    for batch in reader:
        batches.append(batch)
        seen += batch.num_rows
        if seen > limit:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table.slice(0, limit), seen > limit
