"""The Redshift target without a cluster: staging against a real S3 API, SQL as golden files.

No Redshift cluster is reachable from the tests, so:
- staging (lake Parquet -> DuckDB -> staged Parquet on S3) runs against the
  moto S3 server, and the staged files are read back;
- the SQL of a load is compared with `golden/redshift/<case>.sql` and parsed
  with sqlglot's Redshift dialect (regenerate with `HEADWATER_UPDATE_GOLDEN=1`
  and review the diff like code);
- `load()` runs through a recording fake connection (the only test double):
  statement order, BEGIN ... COMMIT, ROLLBACK on failure, cleanup.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from psycopg.conninfo import conninfo_to_dict
from sqlglot import exp

from headwater.config import RedshiftWarehouseConfig
from headwater.errors import TransientError, WarehouseError
from headwater.lake.store import LocalStore
from headwater.warehouse.base import LoadItem, LoadMode
from headwater.warehouse.redshift import (
    RedshiftWarehouse,
    WarehouseUnavailableError,
    conninfo,
    parse_url,
)
from headwater.warehouse.redshift_sql import (
    Column,
    TableLoad,
    catalog_type,
    columns_sql,
    evolve,
    load_statements,
    redshift_type,
)
from tests.fixtures.servers import Bucket

GOLDEN = Path(__file__).parent / "golden" / "redshift"
UPDATE = os.environ.get("HEADWATER_UPDATE_GOLDEN") == "1"

PASSWORD = "s3cr3t-Pa55"
URL = f"redshift://loader:{PASSWORD}@example-cluster.abc123.eu-west-1.redshift.amazonaws.com:5439/analytics"
ROLE = "arn:aws:iam::123456789012:role/headwater-copy"
STAGED = "s3://hw-staging/headwater/run=00000007"


# ------------------------------------------------------------------ helpers


class RecordingConnection:
    """Stands in for the cluster: records every statement, answers the few queries."""

    def __init__(
        self,
        existing: list[tuple[Any, ...]] | None = None,
        counts: dict[str, int] | None = None,
        fail_on: str | None = None,
        error: Exception | None = None,
    ) -> None:
        self.executed: list[str] = []
        self.existing = existing or []
        self.counts = counts or {}
        self.fail_on = fail_on
        self.error = error or psycopg.errors.InternalError_(
            f"Spectrum Scan Error (password {PASSWORD} must never be echoed)"
        )
        self.closed = False
        self._result: list[tuple[Any, ...]] = []

    def execute(self, sql: str) -> None:
        self.executed.append(sql)
        if self.fail_on is not None and sql.startswith(self.fail_on):
            raise self.error
        if sql.startswith("SELECT table_name, column_name"):
            self._result = self.existing
        elif sql.startswith("SELECT COUNT(*) FROM "):
            self._result = [(self.counts.get(sql.removeprefix("SELECT COUNT(*) FROM "), 0),)]
        else:
            self._result = []

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._result

    def close(self) -> None:
        self.closed = True


def parquet(folder: Path, name: str, select: str) -> str:
    """One lake Parquet file written by DuckDB (with `_batch` and a lineage column)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    conn = duckdb.connect()
    try:
        conn.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)").fetchall()
    finally:
        conn.close()
    return str(path)


def make_config(staging_url: str = "s3://hw-staging/headwater") -> RedshiftWarehouseConfig:
    return RedshiftWarehouseConfig.model_validate(
        {"type": "redshift", "url": URL, "iam_role": ROLE, "staging_url": staging_url}
    )


def target(
    tmp_path: Path, bucket: Bucket | None = None, conn: RecordingConnection | None = None
) -> RedshiftWarehouse:
    config = make_config(bucket.url("staging") if bucket else "s3://hw-staging/headwater")
    connection = conn or RecordingConnection()
    return RedshiftWarehouse(config, LocalStore(tmp_path / "lake"), connect=lambda: connection)


def item(
    table: str, files: list[str], mode: LoadMode = "merge", key: tuple[str, ...] = ("id",)
) -> LoadItem:
    return LoadItem(
        table=table,
        files=files,
        mode=mode,
        unique_key=list(key),
        after_batch=1,
        max_batch=2,
        snapshot_id=5002,
    )


def staged_keys(bucket: Bucket) -> list[str]:
    listing: Any = bucket.client()
    found = listing.list_objects_v2(Bucket=bucket.name, Prefix="staging/")
    return sorted(str(o["Key"]) for o in found.get("Contents", []))


def read_staged(bucket: Bucket, key: str) -> pa.Table:
    client: Any = bucket.client()
    body = client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body))


ORDERS_B1 = (
    "SELECT * FROM (VALUES (1, 'tea', 2.50, 3), (2, 'cake', 4.00, 1)) v(id, name, amount, qty)"
)
ORDERS_B2 = (
    "SELECT * FROM (VALUES (2, 'cake', 4.50, 2), (3, NULL, 1.25, 7)) v(id, name, amount, qty)"
)


def orders_file(folder: Path, name: str, rows: str, batch: int) -> str:
    return parquet(
        folder,
        name,
        f"SELECT id::INTEGER AS id, name, amount::DECIMAL(10,2) AS amount, "
        f"TIMESTAMP '2026-01-0{batch} 09:00:00' AS sold_at, qty::TINYINT AS qty, "
        f"'f{batch}.csv' AS _file, {batch}::BIGINT AS _batch FROM ({rows})",
    )


# ------------------------------------------------------------- (1) staging


def test_staging_writes_the_rows_to_load_in_the_staging_table_column_order(
    s3_bucket: Bucket, tmp_path: Path
) -> None:
    lake = tmp_path / "lake" / "processed" / "orders"
    files = [orders_file(lake, "b1", ORDERS_B1, 1), orders_file(lake, "b2", ORDERS_B2, 2)]
    wh = target(tmp_path, s3_bucket)

    staged = wh.stage(item("orders", files), run_id=7)

    prefix = f"s3://{s3_bucket.name}/staging/run=00000007/orders/"
    assert staged.url == prefix
    assert staged.rows == 2
    assert staged_keys(s3_bucket) == ["staging/run=00000007/orders/data_0.parquet"]
    table = read_staged(s3_bucket, "staging/run=00000007/orders/data_0.parquet")
    # Only batch 2 (after_batch=1), no `_` column, cast to the Redshift types' twins.
    assert table.column_names == ["id", "name", "amount", "sold_at", "qty"]
    assert [str(t) for t in table.schema.types] == [
        "int32",
        "string",
        "decimal128(10, 2)",
        "timestamp[us]",
        "int16",
    ]
    sold = dt.datetime(2026, 1, 2, 9, 0)
    assert sorted(table.to_pylist(), key=lambda r: r["id"]) == [
        {"id": 2, "name": "cake", "amount": Decimal("4.50"), "sold_at": sold, "qty": 2},
        {"id": 3, "name": None, "amount": Decimal("1.25"), "sold_at": sold, "qty": 7},
    ]
    # COPY maps by position: the staging table declares the files' columns, in order.
    assert [(c.name, c.type) for c in staged.columns] == [
        ("id", "INTEGER"),
        ("name", "VARCHAR(65535)"),
        ("amount", "DECIMAL(10,2)"),
        ("sold_at", "TIMESTAMP"),
        ("qty", "SMALLINT"),
    ]
    load = TableLoad("orders", "merge", ["id"], staged.columns, staged.url, 2, 5002)
    create_stage = next(
        s.sql for s in load_statements("public", ROLE, 7, [load]) if "TEMP TABLE" in s.sql
    )
    assert [
        e.name for e in sqlglot.parse_one(create_stage, read="redshift").find_all(exp.ColumnDef)
    ] == table.column_names


def test_staging_all_rows_and_a_retry_replaces_leftovers(s3_bucket: Bucket, tmp_path: Path) -> None:
    lake = tmp_path / "lake" / "processed" / "orders"
    files = [orders_file(lake, "b1", ORDERS_B1, 1), orders_file(lake, "b2", ORDERS_B2, 2)]
    wh = target(tmp_path, s3_bucket)
    everything = LoadItem("orders", files, "replace", [], None, 2, 5002)
    client: Any = s3_bucket.client()
    client.put_object(
        Bucket=s3_bucket.name, Key="staging/run=00000008/orders/stale.parquet", Body=b"old"
    )

    staged = wh.stage(everything, run_id=8)

    assert staged.rows == 4
    assert staged_keys(s3_bucket) == ["staging/run=00000008/orders/data_0.parquet"]
    table = read_staged(s3_bucket, "staging/run=00000008/orders/data_0.parquet")
    assert sorted(table.column("id").to_pylist()) == [1, 2, 2, 3]


def test_nested_and_unmapped_types_stop_naming_table_and_column(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match=r"table 'events', column 'tags': type VARCHAR\[\]"):
        redshift_type("VARCHAR[]", "events", "tags")
    with pytest.raises(WarehouseError, match="table 'events', column 'raw': type BLOB"):
        redshift_type("BLOB", "events", "raw")
    assert redshift_type("TIMESTAMP WITH TIME ZONE", "t", "c") == "TIMESTAMPTZ"
    assert redshift_type("DECIMAL(38,4)", "t", "c") == "DECIMAL(38,4)"
    assert redshift_type("DOUBLE", "t", "c") == "DOUBLE PRECISION"
    assert redshift_type("FLOAT", "t", "c") == "REAL"


def test_catalog_types_are_read_back_as_written() -> None:
    assert catalog_type("character varying", 65535, None, None) == "VARCHAR(65535)"
    assert catalog_type("numeric", None, 10, 2) == "DECIMAL(10,2)"
    assert catalog_type("numeric(12,3)", None, None, None) == "DECIMAL(12,3)"
    assert catalog_type("timestamp without time zone", None, None, None) == "TIMESTAMP"
    assert catalog_type("timestamp with time zone", None, None, None) == "TIMESTAMPTZ"
    assert catalog_type("double precision", None, 53, None) == "DOUBLE PRECISION"
    assert catalog_type("int4", None, 32, 0) == "INTEGER"


# ------------------------------------------------------------ (2) golden SQL


def cols(*pairs: str) -> list[Column]:
    return [Column(*p.split(" ", 1)) for p in pairs]


ORDERS = cols("id INTEGER", "name VARCHAR(65535)", "amount DECIMAL(10,2)", "sold_at TIMESTAMP")

CASES: dict[str, list[TableLoad]] = {
    "append_new_table": [
        TableLoad(
            table="events",
            mode="append",
            unique_key=[],
            columns=cols(
                "flag BOOLEAN",
                "small SMALLINT",
                "n INTEGER",
                "big BIGINT",
                "price DECIMAL(12,4)",
                "ratio DOUBLE PRECISION",
                "score REAL",
                "label VARCHAR(65535)",
                "day DATE",
                "at_time TIME",
                "at TIMESTAMP",
                "at_tz TIMESTAMPTZ",
            ),
            staged_url=f"{STAGED}/events/",
            max_batch=1,
            snapshot_id=4001,
        )
    ],
    "merge": [
        TableLoad(
            table="daily_sales",
            mode="merge",
            unique_key=["branch", "day"],
            columns=cols("branch VARCHAR(65535)", "day DATE", "total DECIMAL(12,2)"),
            staged_url=f"{STAGED}/daily_sales/",
            max_batch=3,
            snapshot_id=4003,
            existing=cols("branch VARCHAR(65535)", "day DATE", "total DECIMAL(12,2)"),
        )
    ],
    "replace": [
        TableLoad(
            table="branches",
            mode="replace",
            unique_key=[],
            columns=cols("branch VARCHAR(65535)", "city VARCHAR(65535)"),
            staged_url=f"{STAGED}/branches/",
            max_batch=2,
            snapshot_id=4002,
            existing=cols("branch VARCHAR(65535)", "city VARCHAR(65535)"),
        )
    ],
    # A new column, a column the model lost, a narrower model type cast into the
    # wider warehouse column, and a VARCHAR going into an existing VARCHAR(256).
    "evolution": [
        TableLoad(
            table="orders",
            mode="merge",
            unique_key=["id"],
            columns=[*ORDERS, Column("channel", "VARCHAR(65535)")],
            staged_url=f"{STAGED}/orders/",
            max_batch=5,
            snapshot_id=4005,
            existing=cols(
                "id BIGINT",
                "name VARCHAR(256)",
                "amount DECIMAL(12,2)",
                "sold_at TIMESTAMP",
                "legacy_code VARCHAR(65535)",
            ),
        )
    ],
}


def golden_text(loads: list[TableLoad]) -> str:
    return "".join(f"{s.sql};\n\n" for s in load_statements("public", ROLE, 7, loads)).rstrip()


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_sql_matches_golden_file(case: str) -> None:
    text = golden_text(CASES[case]) + "\n"
    path = GOLDEN / f"{case}.sql"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with HEADWATER_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"{case} differs from {path}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_sql_parses_as_redshift(case: str) -> None:
    text = (GOLDEN / f"{case}.sql").read_text(encoding="utf-8")
    expected = load_statements("public", ROLE, 7, CASES[case])
    parsed = sqlglot.parse(text, read="redshift")
    assert len(parsed) == len(expected)
    # sqlglot falls back to an opaque Command for syntax it does not understand.
    opaque = [repr(e) for e in parsed if e is None or isinstance(e, exp.Command)]
    assert not opaque, opaque
    kinds = [type(e).__name__ for e in parsed if e is not None]
    assert kinds[0] == "Transaction" and kinds[-1] == "Commit"
    assert "TruncateTable" not in kinds  # TRUNCATE would commit the transaction


def test_merge_matches_keys_null_safely_and_dedups_explicitly() -> None:
    text = golden_text(CASES["merge"])
    assert (
        '("public"."daily_sales"."day" = "hw-dedup-1"."day" OR '
        '("public"."daily_sales"."day" IS NULL AND "hw-dedup-1"."day" IS NULL))'
    ) in text
    assert 'ROW_NUMBER() OVER (PARTITION BY "branch", "day" ORDER BY "total")' in text
    assert 'MERGE INTO "public"."daily_sales"\nUSING "hw-dedup-1"' in text


def test_evolution_adds_casts_and_nulls_lost_columns() -> None:
    (load,) = CASES["evolution"]
    evolution = evolve(load)
    assert [c.name for c in evolution.added] == ["channel"]
    assert evolution.removed == ["legacy_code"]
    assert evolution.casts == {"id": "BIGINT", "amount": "DECIMAL(12,2)"}
    text = golden_text([load])
    assert 'ALTER TABLE "public"."orders" ADD COLUMN "channel" VARCHAR(65535)' in text
    assert '"legacy_code" = NULL' in text
    assert 'CAST("hw-dedup-1"."id" AS BIGINT)' in text


def test_identifiers_and_literals_are_quoted() -> None:
    load = TableLoad(
        table="odd",
        mode="append",
        unique_key=[],
        columns=cols('we"ird VARCHAR(65535)'),
        staged_url="s3://b/it's/",
        max_batch=1,
        snapshot_id=1,
    )
    text = golden_text([load])
    assert '"we""ird" VARCHAR(65535)' in text
    assert "FROM 's3://b/it''s/'" in text
    sqlglot.parse(text, read="redshift")


# ------------------------------------------------- (3) load() through the fake


def orders_existing() -> list[tuple[Any, ...]]:
    return [
        ("orders", "id", "integer", None, 32, 0),
        ("orders", "name", "character varying", 65535, None, None),
        ("orders", "amount", "numeric", None, 10, 2),
        ("orders", "sold_at", "timestamp without time zone", None, None, None),
        ("orders", "qty", "smallint", None, 16, 0),
    ]


def test_load_runs_one_transaction_and_cleans_the_staging(
    s3_bucket: Bucket, tmp_path: Path
) -> None:
    lake = tmp_path / "lake" / "processed"
    orders = [orders_file(lake / "orders", "b2", ORDERS_B2, 2)]
    events = [parquet(lake / "events", "e", "SELECT 1 AS n, 'x' AS _file, 2::BIGINT AS _batch")]
    conn = RecordingConnection(
        existing=orders_existing(),
        counts={
            '"hw-dedup-1"': 2,
            '"public"."orders"': 9,
            '"hw-stage-2"': 1,
            '"public"."events"': 1,
        },
    )
    wh = target(tmp_path, s3_bucket, conn)
    seen: list[str] = []
    items = [item("orders", orders), item("events", events, mode="append", key=())]

    results = wh.load(items, run_id=7, before_commit=lambda: seen.append(conn.executed[-1]))

    assert [
        (r.table, r.mode, r.rows_loaded, r.rows_in_table, r.columns_added) for r in results
    ] == [
        ("orders", "merge", 2, 9, []),
        ("events", "append", 1, 1, []),
    ]
    run = f"s3://{s3_bucket.name}/staging/run=00000007"
    orders_cols = cols(
        "id INTEGER",
        "name VARCHAR(65535)",
        "amount DECIMAL(10,2)",
        "sold_at TIMESTAMP",
        "qty SMALLINT",
    )
    expected = load_statements(
        "public",
        ROLE,
        7,
        [
            TableLoad(
                "orders", "merge", ["id"], orders_cols, f"{run}/orders/", 2, 5002, orders_cols
            ),
            TableLoad("events", "append", [], cols("n INTEGER"), f"{run}/events/", 2, 5002),
        ],
    )
    assert conn.executed == [columns_sql("public", ["orders", "events"])] + [
        s.sql for s in expected
    ]
    assert conn.executed[1] == "BEGIN" and conn.executed[-1] == "COMMIT"
    assert seen == [conn.executed[-2]] and seen[0].startswith(
        'INSERT INTO "public"."_headwater_loads"'
    )
    assert conn.closed
    assert staged_keys(s3_bucket) == []  # cleaned after COMMIT


def test_a_failing_statement_rolls_back_and_keeps_the_staging(
    s3_bucket: Bucket, tmp_path: Path
) -> None:
    lake = tmp_path / "lake" / "processed" / "orders"
    files = [orders_file(lake, "b2", ORDERS_B2, 2)]
    conn = RecordingConnection(existing=orders_existing(), fail_on="MERGE INTO")
    wh = target(tmp_path, s3_bucket, conn)
    called: list[bool] = []

    with pytest.raises(WarehouseError) as info:
        wh.load([item("orders", files)], run_id=7, before_commit=lambda: called.append(True))

    message = str(info.value)
    assert "load rolled back: table 'orders', MERGE failed: Spectrum Scan Error" in message
    assert f"staged files kept under s3://{s3_bucket.name}/staging/run=00000007/" in message
    assert PASSWORD not in message
    assert not isinstance(info.value, TransientError)
    assert conn.executed[-1] == "ROLLBACK" and "COMMIT" not in conn.executed
    assert conn.executed[-2].startswith("MERGE INTO")
    assert not called
    assert staged_keys(s3_bucket) == ["staging/run=00000007/orders/data_0.parquet"]


def test_before_commit_failure_and_lost_connection_roll_back(
    s3_bucket: Bucket, tmp_path: Path
) -> None:
    lake = tmp_path / "lake" / "processed" / "orders"
    files = [orders_file(lake, "b2", ORDERS_B2, 2)]
    conn = RecordingConnection(existing=orders_existing())
    wh = target(tmp_path, s3_bucket, conn)

    def crash() -> None:
        raise RuntimeError("crash point load.before_commit")

    with pytest.raises(RuntimeError, match="crash point"):
        wh.load([item("orders", files)], run_id=7, before_commit=crash)
    assert conn.executed[-1] == "ROLLBACK" and "COMMIT" not in conn.executed

    lost = RecordingConnection(
        existing=orders_existing(),
        fail_on="COPY",
        error=psycopg.OperationalError("server closed the connection unexpectedly"),
    )
    wh = target(tmp_path, s3_bucket, lost)
    with pytest.raises(WarehouseUnavailableError, match="table 'orders', COPY failed") as info:
        wh.load([item("orders", files)], run_id=8, before_commit=lambda: None)
    assert info.value.transient
    assert lost.executed[-1] == "ROLLBACK"


def test_watermarks_and_tables_through_the_connection(tmp_path: Path) -> None:
    class Answers(RecordingConnection):
        def execute(self, sql: str) -> None:
            super().execute(sql)
            if "svv_tables" in sql and "COUNT" in sql:
                self._result = [(1,)]
            elif "svv_tables" in sql:
                self._result = [("orders",)]
            elif sql.startswith('SELECT "table_name"'):
                self._result = [("orders", 4, 9001)]

    assert target(tmp_path).watermarks() == {}  # no _headwater_loads table yet
    conn = Answers()
    wh = target(tmp_path, conn=conn)
    assert wh.tables() == ["orders"]
    marks = wh.watermarks()
    assert (marks["orders"].max_batch, marks["orders"].snapshot_id) == (4, 9001)
    assert (
        conn.executed[-1]
        == 'SELECT "table_name", "max_batch", "snapshot_id" FROM "public"."_headwater_loads"'
    )


# --------------------------------------------------- (4) breaking type change


def test_breaking_type_change_names_table_column_and_types(
    s3_bucket: Bucket, tmp_path: Path
) -> None:
    lake = tmp_path / "lake" / "processed" / "orders"
    files = [orders_file(lake, "b2", ORDERS_B2, 2)]
    existing = orders_existing()
    existing[3] = ("orders", "sold_at", "date", None, None, None)  # model: TIMESTAMP
    conn = RecordingConnection(existing=existing)
    wh = target(tmp_path, s3_bucket, conn)

    with pytest.raises(WarehouseError) as info:
        wh.load([item("orders", files)], run_id=7, before_commit=lambda: None)

    assert "warehouse table 'orders', column 'sold_at': type changed from DATE to TIMESTAMP" in str(
        info.value
    )
    assert conn.executed == [columns_sql("public", ["orders"])]  # nothing was begun


@pytest.mark.parametrize(
    ("old", "new"),
    [("INTEGER", "BIGINT"), ("VARCHAR(65535)", "INTEGER"), ("DECIMAL(10,2)", "DECIMAL(10,3)")],
)
def test_types_the_warehouse_cannot_hold(old: str, new: str) -> None:
    load = TableLoad("t", "append", [], [Column("c", new)], "s3://b/p/", 1, 1, [Column("c", old)])
    with pytest.raises(
        WarehouseError, match=re.escape(f"table 't', column 'c': type changed from {old} to {new}")
    ):
        evolve(load)


# --------------------------------------------------------- (5) no password


def test_location_and_connection_settings_never_show_the_password(tmp_path: Path) -> None:
    wh = target(tmp_path)
    assert (
        wh.location
        == "example-cluster.abc123.eu-west-1.redshift.amazonaws.com:5439/analytics/public"
    )
    assert PASSWORD not in repr(parse_url(URL))
    info = conninfo_to_dict(conninfo(parse_url(URL)))
    assert info["password"] == PASSWORD and info["sslmode"] == "require"
    assert (info["port"], info["dbname"], info["user"]) == ("5439", "analytics", "loader")
    assert (
        conninfo_to_dict(conninfo(parse_url("redshift://h/db?sslmode=verify-full")))["sslmode"]
        == "verify-full"
    )


def test_errors_never_show_the_password(tmp_path: Path) -> None:
    def refuse() -> RecordingConnection:
        raise psycopg.OperationalError(f'connection failed: password "{PASSWORD}" rejected')

    wh = RedshiftWarehouse(make_config(), LocalStore(tmp_path), connect=refuse)
    with pytest.raises(WarehouseUnavailableError) as info:
        wh.watermarks()
    assert PASSWORD not in str(info.value) and "cannot connect" in str(info.value)

    failing = RecordingConnection(fail_on="SELECT")
    wh = target(tmp_path, conn=failing)
    with pytest.raises(WarehouseError) as info2:
        wh.tables()
    assert PASSWORD not in str(info2.value) and "***" in str(info2.value)


def test_real_driver_connection_failure_is_transient(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = RedshiftWarehouseConfig.model_validate(
        {
            "type": "redshift",
            "url": f"redshift://loader:{PASSWORD}@127.0.0.1:{port}/dev",
            "iam_role": ROLE,
            "staging_url": "s3://hw-staging/headwater",
        }
    )
    wh = RedshiftWarehouse.from_config(config, tmp_path, LocalStore(tmp_path))
    with pytest.raises(WarehouseUnavailableError) as info:
        wh.tables()
    assert PASSWORD not in str(info.value)
    assert str(info.value).startswith(f"redshift 127.0.0.1:{port}/dev/public: cannot connect")
