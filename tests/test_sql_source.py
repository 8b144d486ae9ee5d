"""The `sql` source against real PostgreSQL and MariaDB: catalog, exact types,
incremental extraction with overlap, dedup on (key, cursor), full refresh, state commands,
and the same rows giving byte-identical raw Parquet from both databases."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pymysql
import pytest

from headwater.project import Project
from headwater.runs.pipeline import run
from headwater.state import ledger
from headwater.state.db import StateDB
from tests.conftest import SECRET
from tests.fixtures.tiny import cli

PG_DDL = """
CREATE TYPE "Kind" AS ENUM ('BAG', 'BOX');
CREATE TABLE item (
    item_id serial PRIMARY KEY,
    name text NOT NULL,
    price numeric(10,2) NOT NULL,
    kind "Kind" NOT NULL,
    made_on text,
    in_stock boolean NOT NULL,
    created_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) NOT NULL
);
CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, migration_name varchar(255));
INSERT INTO _prisma_migrations VALUES ('m1', 'init');
"""
MY_DDL = [
    "CREATE TABLE item (item_id int AUTO_INCREMENT PRIMARY KEY, name text NOT NULL, "
    "price decimal(10,2) NOT NULL, kind enum('BAG','BOX') NOT NULL, made_on text, "
    "in_stock boolean NOT NULL, created_at datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "
    "last_updated datetime(3) NOT NULL)",
    "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, migration_name varchar(255))",
    "INSERT INTO _prisma_migrations VALUES ('m1', 'init')",
]
ROWS = [
    (1, "Steel", Decimal("3.94"), "BAG", "2022-11-10", True, "2022-11-03 14:20:49.962", "2022-11-03 14:20:49.962"),
    (2, "Grant - O'Hara, Ltd", Decimal("2.00"), "BOX", None, False, "2022-11-03 15:00:00.000", "2022-11-04 09:00:00.001"),
    (3, "", Decimal("1000.50"), "BAG", "", True, "2022-11-04 08:00:00.500", "2022-11-04 08:00:00.500"),
]  # fmt: skip
INSERT = (
    "INSERT INTO item (item_id, name, price, kind, made_on, in_stock, created_at, last_updated) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    name = f"hw_test_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        yield f"mysql://root@127.0.0.1:3306/{name}"
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        conn.close()


def fill_pg(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PG_DDL)
        with conn.cursor() as cur:
            cur.executemany(INSERT, ROWS)
            cur.execute("SELECT setval('item_item_id_seq', 3)")


def fill_mysql(url: str) -> None:
    db = url.rsplit("/", 1)[1]
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=db)
    try:
        with conn.cursor() as cur:
            for statement in MY_DDL:
                cur.execute(statement)
            cur.executemany(INSERT, ROWS)
        conn.commit()
    finally:
        conn.close()


def sql_project(root: Path, url: str) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "headwater.yaml").write_text(
        "name: shop\n"
        "sources:\n"
        "  shop:\n"
        "    kind: sql\n"
        "    url: ${SHOP_DB_URL}\n"
        "    exclude: ['_prisma_*']\n"
        "    overlap_seconds: 600\n"
    )
    (root / ".env").write_text(f"SHOP_DB_URL={url}\nHEADWATER_PII_SECRET={SECRET}\n")
    (root / "models" / "item_versions.sql").write_text(
        "/* headwater\nmaterialized: incremental\nstrategy: append\n"
        "unique_key: [item_id, last_updated]\npublish: true\n*/\n"
        "select item_id, name, price, kind, try_cast(made_on as date) as made_on, in_stock, last_updated\n"
        "from item\n"
    )
    (root / "models" / "items.sql").write_text(
        "/* headwater\nmaterialized: incremental\nstrategy: merge\nunique_key: item_id\n"
        "latest_by: last_updated\npublish: true\n*/\n"
        "select item_id, name, price, kind, last_updated from item\n"
    )
    return root


def warehouse(root: Path, sql: str) -> list[tuple[object, ...]]:
    import duckdb

    conn = duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def raw_hashes(root: Path) -> list[str]:
    db = StateDB.open(Project.load(root).state_url)
    try:
        return [str(e["content_hash"]) for e in ledger.file_stats(db, "shop")]
    finally:
        db.dispose()


def test_incremental_extract_from_postgres(tmp_path: Path, pg_database: str) -> None:
    fill_pg(pg_database)
    root = sql_project(tmp_path / "p", pg_database)
    first = run(Project.load(root))
    assert first.ok, first.error
    source = first.sources["shop"]
    assert source.files_found == 1  # `item`; `_prisma_migrations` excluded
    assert source.rows_read == 3
    assert warehouse(root, "select count(*) from item_versions") == [(3,)]
    prices = warehouse(root, "select item_id, price, made_on, kind from item_versions order by 1")
    assert prices[0][1] == Decimal("3.94") and prices[2][1] == Decimal("1000.50")
    assert prices[0][3] == "BAG" and prices[1][2] is None
    shown = cli("state", "show", "-p", str(root))
    assert "2022-11-04 09:00:00.001" in shown.output, shown.output

    # Nothing changed: nothing is landed and the warehouse stays as it is.
    again = run(Project.load(root))
    assert again.ok and again.sources["shop"].files_new == 0
    assert warehouse(root, "select count(*) from item_versions") == [(3,)]

    # A price change and a late commit (last_updated before the watermark, inside the overlap).
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(
            "UPDATE item SET price = 4.10, last_updated = '2022-11-05 10:00:00.000' "
            "WHERE item_id = 1"
        )
        conn.execute(
            INSERT,
            (4, "Late", Decimal("5.00"), "BOX", None, True, "2022-11-04 08:59:00.000",
             "2022-11-04 08:59:00.000"),
        )  # fmt: skip
    third = run(Project.load(root))
    assert third.ok, third.error
    assert warehouse(root, "select count(*), count(distinct (item_id, last_updated)) "
                           "from item_versions") == [(5, 5)]  # fmt: skip
    assert warehouse(root, "select item_id, price from items order by 1") == [
        (1, Decimal("4.10")), (2, Decimal("2.00")), (3, Decimal("1000.50")), (4, Decimal("5.00"))
    ]  # fmt: skip

    # A late commit alone: no row past the watermark, one version the lake lacks.
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(
            INSERT,
            (5, "Later", Decimal("6.00"), "BAG", None, True, "2022-11-05 09:55:00.000",
             "2022-11-05 09:55:00.000"),
        )  # fmt: skip
    late = run(Project.load(root))
    assert late.ok, late.error
    assert (late.sources["shop"].files_new, late.sources["shop"].rows_read) == (1, 1)
    assert warehouse(root, "select count(*) from item_versions") == [(6,)]
    assert "2022-11-05 10:00:00" in cli("state", "show", "-p", str(root)).output
    quiet = run(Project.load(root))
    assert quiet.ok and quiet.sources["shop"].files_new == 0

    # A full refresh re-reads every row and adds no version twice.
    refreshed = cli("run", "-p", str(root), "-q", "--full-refresh", "item")
    assert refreshed.exit_code == 0, refreshed.output
    assert warehouse(root, "select count(*) from item_versions") == [(6,)]
    assert cli("state", "reset", "shop", "item", "-p", str(root)).exit_code == 0
    assert "no watermarks" in cli("state", "show", "-p", str(root)).output
    assert (
        cli("state", "set", "shop", "item", "2022-11-05 00:00:00", "-p", str(root)).exit_code == 0
    )
    assert "2022-11-05 00:00:00" in cli("state", "show", "shop", "-p", str(root)).output
    bad = cli("state", "show", "nope", "-p", str(root))
    assert bad.exit_code == 2 and "not a sql source" in bad.output


def test_postgres_and_mariadb_give_identical_raw_parquet(
    tmp_path: Path, pg_database: str, mariadb_url: str
) -> None:
    fill_pg(pg_database)
    fill_mysql(mariadb_url)
    pg_root = sql_project(tmp_path / "pg", pg_database)
    my_root = sql_project(tmp_path / "my", mariadb_url)
    assert run(Project.load(pg_root)).ok
    summary = run(Project.load(my_root))
    assert summary.ok, summary.error
    assert raw_hashes(pg_root) == raw_hashes(my_root)
    assert len(raw_hashes(pg_root)) == 1
    pg_raw = next((pg_root / ".headwater" / "lake" / "raw").rglob("*.parquet")).read_bytes()
    my_raw = next((my_root / ".headwater" / "lake" / "raw").rglob("*.parquet")).read_bytes()
    assert hashlib.sha256(pg_raw).digest() == hashlib.sha256(my_raw).digest()


def test_credentials_never_reach_logs_lake_or_errors(tmp_path: Path, pg_database: str) -> None:
    fill_pg(pg_database)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE ROLE hw_reader LOGIN PASSWORD 'Sup3r-S3cret-PW'")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO hw_reader")
    try:
        url = pg_database.replace("postgres@", "hw_reader:Sup3r-S3cret-PW@")
        root = sql_project(tmp_path / "p", url)
        result = cli("run", "-p", str(root), "--json")
        assert result.exit_code == 0, result.output
        assert "Sup3r-S3cret-PW" not in result.output
        wrong = sql_project(tmp_path / "q", url.replace("5432", "1"))
        failed = cli("run", "-p", str(wrong))
        assert failed.exit_code == 1
        assert "Sup3r-S3cret-PW" not in failed.output and "***" in failed.output
        for path in [*root.rglob("*"), *wrong.rglob("*")]:
            if path.is_file() and path.name != ".env":
                assert b"Sup3r-S3cret-PW" not in path.read_bytes(), path
    finally:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute("DROP OWNED BY hw_reader")
            conn.execute("DROP ROLE hw_reader")


@pytest.mark.parametrize("name", ["postgres_scanner", "mysql_scanner", "sqlite_scanner"])
def test_packaged_scanner_loads_and_unsigned_loading_is_switched_off(name: str) -> None:
    from headwater import extensions

    conn = extensions.connect([name])
    try:
        loaded = conn.execute(
            "SELECT loaded FROM duckdb_extensions() WHERE extension_name = ?", [name]
        ).fetchall()
        unsigned = conn.execute("SELECT current_setting('allow_unsigned_extensions')").fetchall()
    finally:
        conn.close()
    assert loaded == [(True,)]
    assert unsigned == [(False,)]


TYPES_DDL = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE wide (
    id bigint PRIMARY KEY, small smallint, big bigint, amount numeric(12,3), loose numeric,
    ratio double precision, approx real, flag boolean, code char(3), label varchar(20),
    body text, day date, at_time time, stamp timestamp(3), stamp6 timestamp,
    zoned timestamptz, span interval, ident uuid, doc json, docb jsonb, blob bytea,
    ints integer[], words text[], feeling mood, last_updated timestamp(3) NOT NULL
);
CREATE TABLE enum_list (id int PRIMARY KEY, feelings mood[], last_updated timestamp NOT NULL);
CREATE TABLE with_domain (id int PRIMARY KEY, qty positive, last_updated timestamp NOT NULL);
CREATE TABLE zoned_cursor (id int PRIMARY KEY, last_updated timestamptz NOT NULL);
CREATE TABLE text_cursor (id int PRIMARY KEY, last_updated varchar(30) NOT NULL);
INSERT INTO wide VALUES
  (1, -3, 9007199254740993, 12.345, 0.000000001, 1.5, 2.25, true, 'ab', 'Grant - O''Hara', 'é ✓',
   '2024-02-29', '23:59:59.5', '2024-01-01 00:00:00.001', '2024-01-01 00:00:00.123456',
   '2024-06-01 12:00:00+02', '1 day 02:03:04', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '{"a": [1, 2]}', '{"b": null}', '\\x00ff', '{1,NULL,3}', '{"x","y z"}', 'happy',
   '2024-03-01 10:00:00.000'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-03-02 10:00:00.000');
INSERT INTO enum_list VALUES (1, '{sad,ok}', '2024-03-01 10:00:00'), (2, NULL, '2024-03-02 10:00');
INSERT INTO with_domain VALUES (1, 5, '2024-03-01 10:00:00'), (2, 7, '2024-03-02 10:00:00');
INSERT INTO zoned_cursor VALUES (1, '2024-03-01 10:00:00+00'), (2, '2024-03-02 10:00:00+00');
INSERT INTO text_cursor VALUES (1, '2024-03-01 10:00:00'), (2, '2024-03-02 10:00:00');
"""


def test_incremental_postgres_read_gives_the_full_reads_parquet(
    tmp_path: Path, pg_database: str
) -> None:
    """An incremental read of a plain table skips the scanner's catalog (one query through
    `postgres_query`); its Parquet must be the one the scanner writes, type for type, value
    for value, byte for byte. Domains and zoned cursors keep the scanner's way."""
    import duckdb
    import pyarrow.parquet as pq

    from headwater.config import SqlSource
    from headwater.sources.sql import SqlSourceReader

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(TYPES_DDL)
    config = SqlSource.model_validate({"kind": "sql", "url": pg_database, "cursor": "last_updated"})
    reader = SqlSourceReader("shop", config, tmp_path)
    plans = {p.name: p for p in reader.plan()}
    assert {n: p.direct for n, p in plans.items()} == {
        "enum_list": False, "text_cursor": True, "wide": True, "with_domain": False,
        "zoned_cursor": False,
    }  # fmt: skip
    assert plans["wide"].key == ["id"] and plans["wide"].cursor == "last_updated"
    conn = reader.connect()
    try:
        for name, plan in plans.items():
            full, since = tmp_path / f"{name}-full.parquet", tmp_path / f"{name}-since.parquet"
            assert reader.extract(conn, plan, None, full).rows == 2
            # Everything since a watermark before both rows, then only the second row.
            got = reader.extract(conn, plan, "2024-02-01 00:00:00", since)
            assert (got.rows, got.max_cursor) == (
                2,
                reader.extract(conn, plan, None, full).max_cursor,
            )
            assert pq.read_schema(since) == pq.read_schema(full), name
            assert pq.read_table(since).to_pylist() == pq.read_table(full).to_pylist(), name
            assert since.read_bytes() == full.read_bytes(), name
            late = tmp_path / f"{name}-late.parquet"
            assert reader.extract(conn, plan, "2024-03-02 00:05:00", late).rows == 1
            [(ident,)] = duckdb.sql(f"select id from read_parquet('{late}')").fetchall()
            assert ident == 2, name
    finally:
        conn.close()


def test_the_inspector_describes_only_the_tables_picked(tmp_path: Path) -> None:
    """Outside PostgreSQL the catalog lists every table but describes only those the
    source extracts (a query per described table): a schema of many tables, of which a
    source takes a few, is not described whole."""
    import sqlite3

    from headwater.sources import sqlcatalog

    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total NUMERIC)")
        conn.execute("CREATE TABLE audit_log (at TEXT, what TEXT)")
    asked: list[list[str]] = []

    def pick(tables: list[str]) -> list[str]:
        asked.append(tables)
        return [t for t in tables if t != "audit_log"]

    catalog = sqlcatalog.read_inspector(f"sqlite:///{db}", None, pick)
    assert asked == [["audit_log", "orders"]]
    assert catalog.tables == ["audit_log", "orders"]
    assert list(catalog.columns) == ["orders"]
    assert [c.name for c in catalog.columns["orders"]] == ["id", "total"]
    assert catalog.keys == {"orders": ["id"]}
