"""The `totesys` source database: schema (PostgreSQL as Prisma makes it, and the closest
MySQL/MariaDB equivalent), connections, bulk writes and fixture loading.

The 11 tables are described once, in :data:`TABLES` (physical column order); the DDL of
both dialects, the Arrow types of generated rows and the reading of JSON Lines fixtures
derive from it. The nullable foreign keys (transaction -> order) are ON DELETE SET NULL,
the others ON DELETE RESTRICT, all ON UPDATE CASCADE. psycopg 3 serves `postgresql://`
(and `postgresql+psycopg://`), pymysql `mysql://` (and `mysql+pymysql://`, `mariadb://`).
A URL's password never appears in a message: see :func:`redact`.
"""

from __future__ import annotations

import datetime
import hashlib
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ConfigError, SourceError
from headwater.lake.store import DUCKDB_SETTINGS
from headwater.sql import literal
from headwater.urls import redact, url_secrets

Dialect = Literal["postgresql", "mysql"]
ENUMS: dict[str, tuple[str, ...]] = {
    "PaymentTypeName": ("SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"),
    "TransactionType": ("SALE", "PURCHASE"),
}
# `column:kind[?][>referenced table]`; kinds: pk int text code ts created money bool <enum>.
_SPEC = """
address: address_id:pk address_line_1:text address_line_2:text? district:text? city:text
  postal_code:text country:text phone:text created_at:created last_updated:ts
currency: currency_id:pk currency_code:code created_at:created last_updated:ts
department: department_id:pk department_name:text location:text? manager:text?
  created_at:created last_updated:ts
design: design_id:pk created_at:created design_name:text file_location:text file_name:text
  last_updated:ts
payment_type: payment_type_id:pk payment_type_name:PaymentTypeName created_at:created
  last_updated:ts
counterparty: counterparty_id:pk counterparty_legal_name:text legal_address_id:int>address
  commercial_contact:text? delivery_contact:text? created_at:created last_updated:ts
staff: staff_id:pk first_name:text last_name:text department_id:int>department
  email_address:text created_at:created last_updated:ts
sales_order: sales_order_id:pk created_at:created last_updated:ts design_id:int>design
  staff_id:int>staff counterparty_id:int>counterparty units_sold:int unit_price:money
  currency_id:int>currency agreed_delivery_date:text agreed_payment_date:text
  agreed_delivery_location_id:int>address
purchase_order: purchase_order_id:pk created_at:created last_updated:ts staff_id:int>staff
  counterparty_id:int>counterparty item_code:text item_quantity:int item_unit_price:money
  currency_id:int>currency agreed_delivery_date:text agreed_payment_date:text
  agreed_delivery_location_id:int>address
transaction: transaction_id:pk transaction_type:TransactionType
  sales_order_id:int?>sales_order purchase_order_id:int?>purchase_order created_at:created
  last_updated:ts
payment: payment_id:pk created_at:created last_updated:ts transaction_id:int>transaction
  counterparty_id:int>counterparty payment_amount:money currency_id:int>currency
  payment_type_id:int>payment_type paid:bool payment_date:text company_ac_number:int
  counterparty_ac_number:int
"""
UNIQUE: tuple[tuple[str, str], ...] = (
    ("transaction", "sales_order_id"),
    ("transaction", "purchase_order_id"),
    ("payment", "transaction_id"),
)
PRISMA_TABLE = "_prisma_migrations"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    nullable: bool = False
    references: str | None = None


def _parse_spec(spec: str) -> dict[str, tuple[Column, ...]]:
    tables: dict[str, tuple[Column, ...]] = {}
    for entry in spec.replace("\n  ", " ").strip().splitlines():
        table, _, rest = entry.partition(": ")
        columns = []
        for word in rest.split():
            name, _, kind = word.partition(":")
            kind, _, ref = kind.partition(">")
            columns.append(Column(name, kind.rstrip("?"), kind.endswith("?"), ref or None))
        tables[table] = tuple(columns)
    return tables


TABLES: dict[str, tuple[Column, ...]] = _parse_spec(_SPEC)  # in foreign-key order


class SourceDbError(SourceError):
    """The totesys database refused an operation or could not be reached."""


# --------------------------------------------------------------------------- URLs


def _dialect(url: str) -> Dialect:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgres+psycopg"):
        return "postgresql"
    if scheme in ("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"):
        return "mysql"
    raise ConfigError(
        f"unsupported database URL {redact(url)!r}: expected postgresql://... or mysql://..."
    )


# --------------------------------------------------------------------------- connections


class Db:
    """One open connection and transaction; `%s` placeholders in both dialects."""

    def __init__(self, dialect: Dialect, raw: Any, url: str) -> None:
        self.dialect = dialect
        self.raw = raw
        self.public_url = redact(url)
        self._secrets = url_secrets(url)

    def q(self, name: str) -> str:
        """A quoted identifier (`transaction` is reserved in MySQL)."""
        return f'"{name}"' if self.dialect == "postgresql" else f"`{name}`"

    def scrub(self, error: BaseException) -> str:
        """A driver error on one line, without the password."""
        text = " ".join(str(error).split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement; returns the rows it affected."""
        with self.raw.cursor() as cur:
            cur.execute(sql, params)
            return int(cur.rowcount)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.raw.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(row) for row in cur.fetchall()]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.raw.cursor() as cur:
                cur.executemany(sql, rows)


@contextmanager
def connect(url: str) -> Iterator[Db]:
    """A connection in one transaction: committed on success, rolled back on error, closed."""
    dialect = _dialect(url)
    public = redact(url)
    try:
        if dialect == "postgresql":
            scheme = urlsplit(url).scheme.split("+", 1)[0]
            raw: Any = psycopg.connect(scheme + url[url.index("://") :], connect_timeout=10)
        else:
            import pymysql  # type: ignore[import-untyped]

            p = urlsplit(url)
            user, password = unquote(p.username or "root"), unquote(p.password or "")
            host, database = p.hostname or "127.0.0.1", unquote(p.path.lstrip("/")) or None
            raw = pymysql.connect(
                host=host,
                port=p.port or 3306,
                user=user,
                password=password,
                database=database,
                local_infile=True,  # bulk loads: LOAD DATA LOCAL INFILE, see write_table
            )
    except Exception as exc:
        raise SourceDbError(
            f"cannot connect to {public}: {Db(dialect, None, url).scrub(exc)}"
        ) from None
    db = Db(dialect, raw, url)
    try:
        yield db
        raw.commit()
    except Exception as exc:
        raw.rollback()
        if isinstance(exc, psycopg.Error | OSError) or type(exc).__module__.startswith("pymysql"):
            raise SourceDbError(f"{public}: {db.scrub(exc)}") from None
        raise
    finally:
        raw.close()


def ensure_database(url: str) -> bool:
    """Create the URL's database when the server has no database of that name (a sample
    database is the generator's to make). True when it was created."""
    dialect = _dialect(url)
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        return False
    try:
        with connect(url):
            return False
    except SourceDbError as exc:
        missing = "Unknown database" in str(exc) or "does not exist" in str(exc)
        if not missing:
            raise
    server = urlunsplit(parts._replace(path="/postgres" if dialect == "postgresql" else "/"))
    with connect(server) as db:
        if dialect == "postgresql":
            db.raw.commit()
            db.raw.autocommit = True
            db.execute(f'CREATE DATABASE "{name}"')
        else:
            db.execute(f"CREATE DATABASE `{name}`")
    return True


# --------------------------------------------------------------------------- DDL

_PG_TYPES = {"int": "INTEGER", "text": "TEXT", "code": "VARCHAR(3)", "ts": "TIMESTAMP(3)"}
_PG_TYPES |= {"money": "DECIMAL(10,2)", "bool": "BOOLEAN"}
_PG_TYPES |= {"created": "TIMESTAMP(3)", "pk": "SERIAL"}
_MY_TYPES = _PG_TYPES | {"ts": "DATETIME(3)", "created": "DATETIME(3)", "pk": "INTEGER"}


def _column_ddl(db: Db, col: Column) -> str:
    types = _PG_TYPES if db.dialect == "postgresql" else _MY_TYPES
    if col.kind in ENUMS:
        labels = ", ".join(f"'{v}'" for v in ENUMS[col.kind])
        sql_type = db.q(col.kind) if db.dialect == "postgresql" else f"ENUM({labels})"
    else:
        sql_type = types[col.kind]
    text = f"{db.q(col.name)} {sql_type}{'' if col.nullable else ' NOT NULL'}"
    if col.kind == "created":
        text += " DEFAULT CURRENT_TIMESTAMP" + ("(3)" if db.dialect == "mysql" else "")
    elif col.kind == "pk" and db.dialect == "mysql":
        text += " AUTO_INCREMENT"
    return text


def _pk(table: str) -> str:
    return TABLES[table][0].name


def _ddl(db: Db) -> list[str]:
    q, pg = db.q, db.dialect == "postgresql"
    ts, now = ("TIMESTAMPTZ", "now()") if pg else ("DATETIME(3)", "CURRENT_TIMESTAMP(3)")
    steps = "INTEGER" if pg else "INTEGER UNSIGNED"
    suffix = "" if pg else " DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    out = [
        f'CREATE TYPE "{n}" AS ENUM ({", ".join(f"{v!r}" for v in vs)})' for n, vs in ENUMS.items()
    ]
    out = out if pg else []
    out.append(
        f"CREATE TABLE {q(PRISMA_TABLE)} ({q('id')} VARCHAR(36) PRIMARY KEY NOT NULL, "
        f"{q('checksum')} VARCHAR(64) NOT NULL, {q('finished_at')} {ts}, "
        f"{q('migration_name')} VARCHAR(255) NOT NULL, {q('logs')} TEXT, "
        f"{q('rolled_back_at')} {ts}, {q('started_at')} {ts} NOT NULL DEFAULT {now}, "
        f"{q('applied_steps_count')} {steps} NOT NULL DEFAULT 0){suffix}"
    )
    for table, columns in TABLES.items():
        body = [_column_ddl(db, c) for c in columns]
        body.append(f"CONSTRAINT {q(table + '_pkey')} PRIMARY KEY ({q(_pk(table))})")
        out.append(f"CREATE TABLE {q(table)} ({', '.join(body)}){suffix}")
    for table, column in UNIQUE:
        out.append(f"CREATE UNIQUE INDEX {q(f'{table}_{column}_key')} ON {q(table)}({q(column)})")
    for table, columns in TABLES.items():
        for c in columns:
            if c.references:
                on_delete = "SET NULL" if c.nullable else "RESTRICT"
                out.append(
                    f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(f'{table}_{c.name}_fkey')} "
                    f"FOREIGN KEY ({q(c.name)}) REFERENCES {q(c.references)}"
                    f"({q(_pk(c.references))}) ON DELETE {on_delete} ON UPDATE CASCADE"
                )
    return out


def _migration_rows(pg: bool) -> list[tuple[Any, ...]]:
    """Two applied Prisma migrations (timestamptz in PostgreSQL, DATETIME(3) in MySQL)."""
    rows = []
    for name, second in (("20221103141915_init", 15.412), ("20221103142047_text_dates", 47.8)):
        started = datetime.datetime(2022, 11, 3, 14, 19, tzinfo=datetime.UTC if pg else None)
        started += datetime.timedelta(seconds=second)
        finished = started + datetime.timedelta(milliseconds=187)
        ident = str(uuid.uuid5(uuid.NAMESPACE_URL, f"totesys/{name}"))
        checksum = hashlib.sha256(name.encode()).hexdigest()
        rows.append((ident, checksum, finished, name, None, None, started, 1))
    return rows


def create_schema(url: str, *, drop: bool = False) -> None:
    """Create the 11 tables, the enums and `_prisma_migrations` (with its rows).

    A complete existing schema is left as it is; a partial one is an error
    unless ``drop`` is true, which drops every totesys object first.
    """
    ensure_database(url)
    with connect(url) as db:
        q = db.q
        if drop:
            tables = ", ".join(q(t) for t in [*reversed(TABLES), PRISMA_TABLE])
            cascade = " CASCADE" if db.dialect == "postgresql" else ""
            db.execute(f"DROP TABLE IF EXISTS {tables}{cascade}")
            if db.dialect == "postgresql":
                db.execute(f"DROP TYPE IF EXISTS {', '.join(q(e) for e in ENUMS)}")
        schema = "current_schema()" if db.dialect == "postgresql" else "DATABASE()"
        names = [*TABLES, PRISMA_TABLE]
        found = db.fetchall(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema} "
            f"AND table_name IN ({', '.join(['%s'] * len(names))})",
            names,
        )
        existing = {str(r[0]) for r in found}
        if existing == set(names):
            return
        if existing:
            raise SourceDbError(
                f"{db.public_url}: a partial totesys schema exists "
                f"({', '.join(sorted(existing))}); create it with drop=True"
            )
        for statement in _ddl(db):
            db.execute(statement)
        cols = ", ".join(q(c) for c in ("id", "checksum", "finished_at", "migration_name"))
        cols += ", " + ", ".join(q(c) for c in ("logs", "rolled_back_at", "started_at"))
        db.executemany(
            f"INSERT INTO {q(PRISMA_TABLE)} ({cols}, {q('applied_steps_count')}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            _migration_rows(db.dialect == "postgresql"),
        )


# --------------------------------------------------------------------------- Arrow data

_ARROW = {"pk": pa.int64(), "int": pa.int64(), "bool": pa.bool_(), "money": pa.decimal128(10, 2)}
_ARROW |= {"ts": pa.timestamp("ms"), "created": pa.timestamp("ms")}


def _arrow(values: Any, col: Column) -> pa.Array:
    """One column as Arrow. Timestamps: epoch ms, datetimes or text; money: cents or text."""
    target = _ARROW.get(col.kind, pa.string())
    if isinstance(values, pa.Array):
        return values if values.type == target else values.cast(target)
    if isinstance(values, np.ndarray):
        if col.kind == "money":  # cents -> decimal128 storage (16-byte little-endian integers)
            words = np.zeros((len(values), 2), np.int64)
            words[:, 0] = values
            words[:, 1] = np.where(values < 0, -1, 0)
            return pa.Array.from_buffers(target, len(values), [None, pa.py_buffer(words)])
        if col.kind in ("ts", "created") and values.dtype.kind == "i":
            values = values.astype("datetime64[ms]")
        return pa.array(values).cast(target)
    if col.kind == "money" or (
        col.kind in ("ts", "created") and any(isinstance(v, str) for v in values)
    ):
        text = pa.array([None if v is None else str(v) for v in values], pa.string())
        if col.kind == "money":
            return text.cast(target)
        return text.cast(pa.timestamp("us")).cast(target, safe=False)
    return pa.array(list(values), target)


def arrow_table(table: str, columns: Mapping[str, Any]) -> pa.Table:
    """The columns of `table`, in its physical order, with the Arrow types of its kinds."""
    cols = TABLES[table]
    return pa.table([_arrow(columns[c.name], c) for c in cols], names=[c.name for c in cols])


def _copy_payload(data: pa.Table) -> memoryview:
    """The rows as PostgreSQL COPY text: tab separated, `\\N` for NULL, escaped."""
    texts = []
    for column in data.columns:
        arr = column.combine_chunks()
        if pa.types.is_string(arr.type):
            for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
                arr = pc.replace_substring(arr, raw, escaped)
        else:
            arr = arr.cast(pa.string())
        texts.append(pc.fill_null(arr, "\\N"))
    rows = pc.binary_join_element_wise(*texts, "\t")
    lines = pc.binary_join_element_wise(rows, pa.nulls(len(rows), pa.string()).fill_null(""), "\n")
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])]


def write_table(db: Db, table: str, data: pa.Table, *, upsert: bool = False) -> int:
    """Insert the rows (or upsert them on the primary key) in bulk; returns the row count."""
    if not data.num_rows:
        return 0
    q, names = db.q, data.column_names
    cols = ", ".join(q(n) for n in names)
    pk = _pk(table)
    if db.dialect == "postgresql":
        target = q(table)
        if upsert:
            target = q(f"_hw_stage_{table}")
            db.execute(f"CREATE TEMP TABLE {target} (LIKE {q(table)}) ON COMMIT DROP")
        with db.raw.cursor() as cur, cur.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
            copy.write(_copy_payload(data))
        if upsert:
            sets = ", ".join(f"{q(n)} = EXCLUDED.{q(n)}" for n in names if n != pk)
            db.execute(
                f"INSERT INTO {q(table)} ({cols}) SELECT {cols} FROM {target} "
                f"ON CONFLICT ({q(pk)}) DO UPDATE SET {sets}"
            )
            db.execute(f"DROP TABLE {target}")
    else:
        # MySQL reads the same tab-separated text (\\N for NULL, backslash escapes) with
        # LOAD DATA LOCAL INFILE, on this connection and in this transaction; booleans as 1/0.
        text = data
        for i, column in enumerate(text.columns):
            if pa.types.is_boolean(column.type):
                text = text.set_column(i, names[i], pc.cast(column, pa.int8()))
        target = q(f"_hw_stage_{table}") if upsert else q(table)
        if upsert:
            db.execute(f"CREATE TEMPORARY TABLE {target} LIKE {q(table)}")
        with tempfile.NamedTemporaryFile(suffix=".tsv") as handle:
            handle.write(_copy_payload(text))
            handle.flush()
            db.execute(
                f"LOAD DATA LOCAL INFILE {_my_literal(handle.name)} INTO TABLE {target} "
                f"CHARACTER SET utf8mb4 ({cols})"
            )
        if upsert:
            sets = ", ".join(f"{q(n)} = VALUES({q(n)})" for n in names if n != pk)
            db.execute(
                f"INSERT INTO {q(table)} ({cols}) SELECT {cols} FROM {target} "
                f"ON DUPLICATE KEY UPDATE {sets}"
            )
            db.execute(f"DROP TEMPORARY TABLE {target}")
    return int(data.num_rows)


def _my_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


@contextmanager
def foreign_keys_set_aside(db: Db, tables: Sequence[str]) -> Iterator[None]:
    """PostgreSQL: drop the foreign keys of `tables` and add them back afterwards, in the
    same transaction, so a bulk load is checked in one pass per key instead of per row."""
    if db.dialect != "postgresql":
        yield
        return
    keys = db.fetchall(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
        [[db.q(t) for t in tables]],
    )
    for table, name, _ in keys:
        db.execute(f"ALTER TABLE {table} DROP CONSTRAINT {db.q(name)}")
    yield
    for table, name, definition in keys:
        db.execute(f"ALTER TABLE {table} ADD CONSTRAINT {db.q(name)} {definition}")


def sync_sequences(db: Db) -> None:
    """Move every id sequence (AUTO_INCREMENT) past the largest id in its table."""
    for table in TABLES:
        q, pk = db.q, _pk(table)
        if db.dialect == "postgresql":
            db.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX({q(pk)}), 0) + 1, "
                f"false) FROM {q(table)}",
                [q(table), pk],
            )
        else:
            (top,) = db.fetchall(f"SELECT COALESCE(MAX({q(pk)}), 0) FROM {q(table)}")[0]
            db.execute(f"ALTER TABLE {q(table)} AUTO_INCREMENT = {int(top) + 1}")


def load_fixture_folder(url: str, folder: Path) -> dict[str, int]:
    """Upsert every `<table>.jsonl` of `folder` (rows keep their ids); rows per table."""
    files = {p.stem: p for p in Path(folder).glob("*.jsonl")}
    if not files or set(files) - set(TABLES):
        raise SourceDbError(f"{folder}: expected <table>.jsonl files of totesys tables only")
    counts: dict[str, int] = {}
    reader = duckdb.connect(config=DUCKDB_SETTINGS)  # parses the JSON Lines, no row loop
    try:
        with connect(url) as db:
            for table in (t for t in TABLES if t in files):
                columns = _read_jsonl(reader, files[table], [c.name for c in TABLES[table]])
                counts[table] = write_table(db, table, arrow_table(table, columns), upsert=True)
            sync_sequences(db)
    finally:
        reader.close()
    return counts


def _read_jsonl(conn: duckdb.DuckDBPyConnection, path: Path, names: list[str]) -> dict[str, Any]:
    """A JSON Lines file's columns as text (typed later by `arrow_table`), keys checked."""
    source = f"read_json({literal(str(path))}, format = 'newline_delimited'"
    found = [r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM {source})").fetchall()]
    if sorted(found) != sorted(names):
        raise SourceDbError(f"{path}: every row needs exactly the columns {names}, got {found}")
    spec = "{" + ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names) + "}"
    data = conn.execute(f"SELECT * FROM {source}, columns = {spec})").to_arrow_table()
    return {n: data.column(n).combine_chunks() for n in names}
