"""The DuckDB warehouse: one transaction per load, schema changes, idempotent reruns, load modes."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import duckdb
import pytest

from headwater.config import DuckDBWarehouseConfig
from headwater.errors import WarehouseError
from headwater.lake.store import LocalStore
from headwater.runs.summary import RunSummary
from headwater.warehouse.base import LoadItem, LoadMode
from headwater.warehouse.duckdb import DuckDBWarehouse
from tests.fixtures.tiny import (
    drop,
    model,
    run_ok,
    run_tiny,
    tiny_project,
    warehouse,
    warehouse_columns,
    write_model,
)

TYPED = "cast(id as integer) as id, name, cast(amount as integer) as amount"


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


# ------------------------------------------------------------ the target alone


def parquet(folder: Path, name: str, select: str) -> str:
    """One Parquet file written by DuckDB from a SELECT (which should carry `_batch`)."""
    path = folder / f"{name}.parquet"
    conn = duckdb.connect()
    try:
        conn.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    finally:
        conn.close()
    return str(path)


def item(
    table: str,
    files: list[str],
    mode: LoadMode = "append",
    batch: int = 1,
    key: list[str] | None = None,
) -> LoadItem:
    return LoadItem(
        table=table,
        files=files,
        mode=mode,
        unique_key=key or [],
        after_batch=None if batch == 1 else batch - 1,
        max_batch=batch,
        snapshot_id=1000 + batch,
    )


def rows(target: DuckDBWarehouse, sql: str) -> list[tuple[object, ...]]:
    conn = duckdb.connect(str(target.path), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def no_op() -> None:
    return None


@pytest.fixture
def target(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "wh" / "warehouse.duckdb")


def test_the_warehouse_connection_takes_the_configured_memory_limit(tmp_path: Path) -> None:
    # DuckDB's own default (80% of RAM) would keep every block a large load wrote.
    root = tmp_path / "p"
    config = DuckDBWarehouseConfig(memory_limit="300MB")
    target = DuckDBWarehouse.from_config(config, root, LocalStore(root / "lake"))
    conn = target._connect()
    try:
        [(limit,)] = conn.execute("SELECT current_setting('memory_limit')").fetchall()
    finally:
        conn.close()
    assert limit == "286.1 MiB"  # 300 MB
    assert DuckDBWarehouseConfig().memory_limit == "512MB"


def test_target_load_and_watermarks(tmp_path: Path, target: DuckDBWarehouse) -> None:
    f1 = parquet(
        tmp_path, "x1", "SELECT 1::INTEGER AS id, 'a' AS name, 'l' AS _file, 1::BIGINT AS _batch"
    )
    results = target.load([item("x", [f1])], run_id=7, before_commit=no_op)
    assert [(r.table, r.mode, r.rows_loaded, r.rows_in_table) for r in results] == [
        ("x", "append", 1, 1)
    ]
    assert target.tables() == ["x"]
    marks = target.watermarks()
    assert (marks["x"].max_batch, marks["x"].snapshot_id) == (1, 1001)
    assert rows(target, "SELECT * FROM x") == [(1, "a")]


def test_target_load_is_one_transaction(tmp_path: Path, target: DuckDBWarehouse) -> None:
    x1 = parquet(tmp_path, "x1", "SELECT 1::INTEGER AS id, 1::BIGINT AS _batch")
    y1 = parquet(tmp_path, "y1", "SELECT 'a' AS code, 1::BIGINT AS _batch")
    target.load([item("x", [x1]), item("y", [y1])], run_id=1, before_commit=no_op)
    before = (rows(target, "SELECT * FROM x"), rows(target, "FROM _headwater_loads ORDER BY 1"))

    x2 = parquet(tmp_path, "x2", "SELECT 2::INTEGER AS id, 2::BIGINT AS _batch")
    y2 = parquet(tmp_path, "y2", "SELECT 5::INTEGER AS code, 2::BIGINT AS _batch")
    with pytest.raises(WarehouseError) as info:
        target.load(
            [item("x", [x2], batch=2), item("y", [y2], batch=2)],
            run_id=2,
            before_commit=no_op,
        )
    assert "warehouse table 'y', column 'code': type changed from VARCHAR to INTEGER" in str(
        info.value
    )
    # x was loaded first in the same transaction: it did not change either.
    assert (rows(target, "SELECT * FROM x"), rows(target, "FROM _headwater_loads ORDER BY 1")) == (
        before
    )
    assert target.watermarks()["x"].max_batch == 1


def test_failure_before_commit_rolls_back(tmp_path: Path, target: DuckDBWarehouse) -> None:
    x1 = parquet(tmp_path, "x1", "SELECT 1::INTEGER AS id, 1::BIGINT AS _batch")
    target.load([item("x", [x1])], run_id=1, before_commit=no_op)

    def crash() -> None:
        raise RuntimeError("crash before commit")

    x2 = parquet(tmp_path, "x2", "SELECT 2::INTEGER AS id, 2::BIGINT AS _batch")
    with pytest.raises(RuntimeError, match="crash before commit"):
        target.load([item("x", [x2], batch=2)], run_id=2, before_commit=crash)
    assert rows(target, "SELECT id FROM x") == [(1,)]
    assert target.watermarks()["x"].max_batch == 1


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("INTEGER", "BIGINT"),
        ("SMALLINT", "INTEGER"),
        ("FLOAT", "DOUBLE"),
        ("DATE", "TIMESTAMP"),
        ("DECIMAL(8,2)", "DECIMAL(12,2)"),
        ("DECIMAL(8,2)", "DECIMAL(10,3)"),
    ],
)
def test_target_accepts_widening(
    tmp_path: Path, target: DuckDBWarehouse, old: str, new: str
) -> None:
    value = "DATE '2024-01-02'" if old == "DATE" else "1"
    f1 = parquet(tmp_path, "g1", f"SELECT CAST({value} AS {old}) AS v, 1::BIGINT AS _batch")
    target.load([item("w", [f1])], run_id=1, before_commit=no_op)
    new_value = "TIMESTAMP '2024-01-03 04:05:06'" if new == "TIMESTAMP" else "2"
    f2 = parquet(tmp_path, "g2", f"SELECT CAST({new_value} AS {new}) AS v, 2::BIGINT AS _batch")
    target.load([item("w", [f2], batch=2)], run_id=2, before_commit=no_op)
    assert rows(target, "SELECT data_type FROM duckdb_columns() WHERE table_name = 'w'") == [(new,)]
    assert len(rows(target, "SELECT * FROM w")) == 2


@pytest.mark.parametrize(
    ("old", "new", "value"),
    [
        ("VARCHAR", "INTEGER", "'a'"),
        ("BIGINT", "VARCHAR", "1"),
        ("INTEGER", "SMALLINT", "1"),
        ("DOUBLE", "INTEGER", "1.5"),
        ("DECIMAL(8,2)", "DECIMAL(8,3)", "1.25"),
    ],
)
def test_target_refuses_breaking_change(
    tmp_path: Path, target: DuckDBWarehouse, old: str, new: str, value: str
) -> None:
    f1 = parquet(tmp_path, "f1", f"SELECT CAST({value} AS {old}) AS v, 1::BIGINT AS _batch")
    target.load([item("w", [f1])], run_id=1, before_commit=no_op)
    f2 = parquet(tmp_path, "f2", f"SELECT CAST(1 AS {new}) AS v, 2::BIGINT AS _batch")
    with pytest.raises(WarehouseError) as info:
        target.load([item("w", [f2], batch=2)], run_id=2, before_commit=no_op)
    assert str(info.value).startswith(
        f"warehouse table 'w', column 'v': type changed from {old} to {new}, "
        "which is not a widening; the load stopped"
    )
    assert rows(target, "SELECT data_type FROM duckdb_columns() WHERE table_name = 'w'") == [(old,)]
    assert target.watermarks()["w"].max_batch == 1


def test_target_merge_replaces_rows_by_key(tmp_path: Path, target: DuckDBWarehouse) -> None:
    f1 = parquet(
        tmp_path,
        "m1",
        "SELECT * FROM (VALUES (1, 'a', 1::BIGINT), (2, 'b', 1::BIGINT)) t(id, name, _batch)",
    )
    target.load([item("m", [f1], mode="merge", key=["id"])], run_id=1, before_commit=no_op)
    f2 = parquet(
        tmp_path,
        "m2",
        "SELECT * FROM (VALUES (2, 'B', 2::BIGINT), (3, 'c', 2::BIGINT)) t(id, name, _batch)",
    )
    [result] = target.load(
        [item("m", [f1, f2], mode="merge", batch=2, key=["id"])], run_id=2, before_commit=no_op
    )
    assert (result.rows_loaded, result.rows_in_table) == (2, 3)
    assert rows(target, "SELECT * FROM m ORDER BY id") == [(1, "a"), (2, "B"), (3, "c")]


# ------------------------------------------------------------- through a run


def test_load_is_one_transaction_in_a_run(tmp_path: Path) -> None:
    # `second` reads `first`, so `first` is loaded first in the same transaction.
    root = tiny_project(
        tmp_path / "p",
        {
            "first": model(f"select {TYPED} from src", materialized="incremental", publish=True),
            "second": model(
                "select id, amount from first", materialized="incremental", publish=True
            ),
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    # Someone changed the warehouse by hand: `second.amount` is now text.
    conn = duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"))
    conn.execute("ALTER TABLE second ALTER amount TYPE VARCHAR")
    conn.close()
    before = (
        warehouse(root, "select * from first order by id"),
        warehouse(root, "select * from _headwater_loads order by 1"),
    )

    drop(root, {"f2.csv": "3,c,30\n"})
    summary = run_tiny(root)
    assert not summary.ok
    assert summary.warehouse.status == "failed"
    assert summary.warehouse.error is not None
    assert (
        "warehouse table 'second', column 'amount': type changed from VARCHAR to INTEGER"
        in summary.warehouse.error
    )
    assert summary.error == summary.warehouse.error
    after = (
        warehouse(root, "select * from first order by id"),
        warehouse(root, "select * from _headwater_loads order by 1"),
    )
    assert after == before

    # Repaired, the next run loads what is missing, with nothing new to extract.
    conn = duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"))
    conn.execute("ALTER TABLE second ALTER amount TYPE INTEGER")
    conn.close()
    again = run_ok(root)
    assert again.batches == []
    assert warehouse(root, "select id, amount from first order by id") == [
        (1, 10),
        (2, 20),
        (3, 30),
    ]
    assert warehouse(root, "select id, amount from second order by id") == [
        (1, 10),
        (2, 20),
        (3, 30),
    ]


def test_new_column_is_added_on_a_later_run(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "events": model(
                "select cast(id as integer) as id, name from src",
                materialized="incremental",
                publish=True,
            )
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    write_model(
        root,
        "events",
        model(f"select {TYPED} from src", materialized="incremental", publish=True),
    )
    # Two rows: with one, DuckDB may write `amount` as REQUIRED (see the xfail below).
    drop(root, {"f2.csv": "3,c,30\n4,d,40\n"})
    summary = run_ok(root)
    assert summary.warehouse.tables["events"]["columns_added"] == ["amount"]
    assert warehouse_columns(root, "events") == [
        ("id", "INTEGER"),
        ("name", "VARCHAR"),
        ("amount", "INTEGER"),
    ]
    assert warehouse(root, "select * from events order by id") == [
        (1, "a", None),
        (2, "b", None),
        (3, "c", 30),
        (4, "d", 40),
    ]


def test_new_pass_through_column_is_added(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"items": model("select cast(id as integer) as id from src", publish=True)},
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    write_model(
        root, "items", model("select cast(id as integer) as id, name from src", publish=True)
    )
    drop(root, {"f2.csv": "3,c,30\n"})
    summary = run_tiny(root)
    assert summary.ok, summary.error
    assert summary.warehouse.tables["items"]["columns_added"] == ["name"]
    assert warehouse(root, "select * from items order by id") == [(1, "a"), (2, "b"), (3, "c")]


def change_type(tmp_path: Path, old: str, new: str) -> tuple[Path, RunSummary]:
    """Run a table model with `amount` cast to `old`, then to `new`; the second summary."""
    root = tiny_project(
        tmp_path / "p",
        {
            "t": model(
                f"select cast(id as integer) as id, cast(amount as {old}) as amount from src",
                publish=True,
            )
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    write_model(
        root,
        "t",
        model(
            f"select cast(id as integer) as id, cast(amount as {new}) as amount from src",
            publish=True,
        ),
    )
    drop(root, {"f2.csv": "3,c,30\n"})
    return root, run_tiny(root)


def test_widening_is_accepted_in_a_run(tmp_path: Path) -> None:
    root, summary = change_type(tmp_path, "integer", "bigint")
    assert summary.ok
    assert warehouse_columns(root, "t") == [("id", "INTEGER"), ("amount", "BIGINT")]
    assert warehouse(root, "select * from t order by id") == [(1, 10), (2, 20), (3, 30)]


@pytest.mark.parametrize(("old", "new"), [("varchar", "integer"), ("bigint", "varchar")])
def test_breaking_change_stops_the_run_with_a_clear_error(
    tmp_path: Path, old: str, new: str
) -> None:
    root, summary = change_type(tmp_path, old, new)
    assert not summary.ok
    error = str(summary.error)
    assert "'t'" in error
    assert "'amount'" in error
    assert old.upper() in error
    assert new.upper() in error
    assert warehouse(root, "select id from t order by id") == [(1,), (2,)]


def test_rerun_with_nothing_new_leaves_warehouse_untouched(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "all_rows": model(f"select {TYPED} from src", publish=True),
            "events": model(
                f"select {TYPED} from src",
                materialized="incremental",
                unique_key="id",
                publish=True,
            ),
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": "3,c,30\n"})
    run_ok(root)
    file = root / ".headwater" / "warehouse.duckdb"
    before = digest(file)
    time.sleep(0.02)
    summary = run_ok(root)
    assert summary.batches == []
    assert summary.warehouse.status == "unchanged"
    assert summary.warehouse.tables == {}
    assert digest(file) == before
    # The same file again under another name is not new either.
    drop(root, {"copy.csv": "1,a,10\n2,b,20\n"})
    summary = run_ok(root)
    assert summary.sources["src"].files_new == 0
    assert {"file": "copy.csv", "same_content_as": "f1.csv"} in summary.sources["src"].duplicates
    assert summary.batches == []
    assert digest(file) == before


def test_replace_mode_for_table_models(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            # Only the largest amount per name: rows are replaced, not accumulated.
            "best": model(
                "select name, max(cast(amount as integer)) as amount from src group by name",
                publish=True,
            ),
            "newest": model(
                f"select {TYPED} from src where _batch = (select max(_batch) from src)",
                publish=True,
            ),
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    first = run_ok(root)
    assert first.warehouse.tables["best"]["mode"] == "replace"
    drop(root, {"f2.csv": "3,a,50\n"})
    second = run_ok(root)
    assert warehouse(root, "select * from best order by name") == [("a", 50), ("b", 20)]
    assert warehouse(root, "select * from newest") == [(3, "a", 50)]
    assert second.warehouse.tables["newest"] == {
        "mode": "replace",
        "rows_loaded": 1,
        "rows_in_table": 1,
        "columns_added": [],
    }


def test_append_model_whose_key_is_enforced_appends_in_warehouse(tmp_path: Path) -> None:
    # The unique_key's own check (severity error) or a quarantining one keeps every key
    # once in the lake, so the load appends: no delete of keys that cannot be there.
    for severity in ("error", "quarantine"):
        root = tiny_project(
            tmp_path / severity,
            {
                "events": model(
                    f"select {TYPED} from src",
                    materialized="incremental",
                    unique_key="id",
                    publish=True,
                    checks=[] if severity == "error" else [{"unique": "id", "severity": severity}],
                )
            },
            {"f1.csv": "1,a,10\n2,b,20\n"},
        )
        run_ok(root)
        drop(root, {"f2.csv": "3,c,30\n4,d,40\n"})
        summary = run_ok(root)
        assert summary.warehouse.tables["events"] == {
            "mode": "append",
            "rows_loaded": 2,
            "rows_in_table": 4,
            "columns_added": [],
        }
        assert warehouse(root, "select * from events order by id") == [
            (1, "a", 10),
            (2, "b", 20),
            (3, "c", 30),
            (4, "d", 40),
        ]


def test_append_model_with_unique_key_merges_in_warehouse(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "events": model(
                f"select {TYPED} from src",
                materialized="incremental",
                unique_key="id",
                publish=True,
                checks=[{"unique": "id", "severity": "warn"}],
            )
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": "2,B,25\n3,c,30\n"})
    summary = run_ok(root)
    assert summary.warehouse.tables["events"]["mode"] == "merge"
    # The lake keeps both versions of key 2 (append); the warehouse keeps the newest.
    assert len(warehouse(root, "select * from events")) == 3
    assert warehouse(root, "select * from events order by id") == [
        (1, "a", 10),
        (2, "B", 25),
        (3, "c", 30),
    ]
