"""Materialisations: table, incremental append/merge (latest_by), view; lineage columns; golden."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ConfigError
from headwater.models.engine import Engine
from headwater.project import Project
from headwater.runs.pipeline import run
from headwater.runs.plan import plan
from tests.fixtures.tiny import (
    BASE_YAML,
    FIXTURES,
    cli,
    copy_fixture,
    drop,
    lake,
    lake_columns,
    lake_tables,
    model,
    run_ok,
    tiny_project,
    warehouse,
    warehouse_columns,
    warehouse_tables,
    write_model,
)

TYPED = "cast(id as integer) as id, name, cast(amount as integer) as amount"


def test_table_rebuilds_from_full_state(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "totals": model(
                "select count(*) as n, sum(cast(amount as integer)) as total, "
                "max(_batch) as last_batch from src",
                publish=True,
            ),
            "ids": model("select cast(id as integer) as id from src", publish=True),
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    first = run_ok(root)
    assert warehouse(root, "select * from totals") == [(2, 30, 1001)]
    drop(root, {"f2.csv": "3,c,5\n"})
    second = run_ok(root)
    assert second.models["totals"].rows_written == 1
    assert second.models["ids"].rows_written == 3
    assert warehouse(root, "select * from totals") == [(3, 35, 2001)]
    assert lake(root, "select n, total, last_batch, _batch from totals") == [(3, 35, 2001, 2001)]
    assert warehouse(root, "select id from ids order by id") == [(1,), (2,), (3,)]
    assert lake(root, "select id, _batch from ids order by id") == [(1, 2001), (2, 2001), (3, 2001)]
    assert second.warehouse.tables["ids"] == {
        "mode": "replace",
        "rows_loaded": 3,
        "rows_in_table": 3,
        "columns_added": [],
    }
    assert first.warehouse.tables["ids"]["rows_in_table"] == 2


def test_incremental_append_sees_only_new_files(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "events": model(
                f"select {TYPED}, _batch as seen_in from src",
                materialized="incremental",
                publish=True,
            ),
            "batch_sizes": model(
                "select count(*) as n, min(cast(id as integer)) as lo from src",
                materialized="incremental",
                publish=True,
            ),
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": "3,c,30\n"})
    second = run_ok(root)
    assert second.models["events"].rows_written == 1
    assert lake(root, "select id, seen_in, _batch from events order by id") == [
        (1, 1001, 1001),
        (2, 1001, 1001),
        (3, 2001, 2001),
    ]
    assert warehouse(root, "select id, name, amount, seen_in from events order by id") == [
        (1, "a", 10, 1001),
        (2, "b", 20, 1001),
        (3, "c", 30, 2001),
    ]
    assert warehouse(root, "select n, lo from batch_sizes order by lo") == [(2, 1), (1, 3)]
    assert second.warehouse.tables["events"]["rows_loaded"] == 1
    assert second.warehouse.tables["events"]["rows_in_table"] == 3


def test_incremental_merge_updates_in_place(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "latest": model(
                f"select {TYPED} from src",
                materialized="incremental",
                strategy="merge",
                unique_key="id",
                publish=True,
            )
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": "2,B,25\n3,c,30\n"})
    second = run_ok(root)
    assert second.models["latest"].rows_written == 2
    expected = [(1, "a", 10), (2, "B", 25), (3, "c", 30)]
    assert warehouse(root, "select id, name, amount from latest order by id") == expected
    assert lake(root, "select id, name, amount, _batch from latest order by id") == [
        (1, "a", 10, 1001),
        (2, "B", 25, 2001),
        (3, "c", 30, 2001),
    ]
    assert second.warehouse.tables["latest"]["mode"] == "merge"
    assert second.warehouse.tables["latest"]["rows_in_table"] == 3


ORDERS_YAML = BASE_YAML.replace("[id, name, amount]", "[id, status, updated_at]")


def test_latest_by_keeps_latest_row_when_older_file_arrives_later(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "order_status": model(
                "select cast(id as integer) as id, status, "
                "cast(updated_at as timestamp) as updated_at from src",
                materialized="incremental",
                strategy="merge",
                unique_key="id",
                latest_by="updated_at",
                publish=True,
            )
        },
        {"a.csv": "1,placed,2024-01-01 10:00:00\n3,placed,2024-01-01 12:00:00\n"},
        ORDERS_YAML,
    )
    run_ok(root)
    drop(root, {"c.csv": "1,shipped,2024-01-03 10:00:00\n"})
    run_ok(root)
    # The update from the 2nd arrives last: it must not overwrite the 3rd's status.
    drop(root, {"b.csv": "1,paid,2024-01-02 10:00:00\n2,placed,2024-01-02 11:00:00\n"})
    run_ok(root)
    expected = [
        (1, "shipped", dt.datetime(2024, 1, 3, 10)),
        (2, "placed", dt.datetime(2024, 1, 2, 11)),
        (3, "placed", dt.datetime(2024, 1, 1, 12)),
    ]
    assert lake(root, "select id, status, updated_at from order_status order by id") == expected
    assert warehouse(root, "select * from order_status order by id") == expected


def test_merge_without_latest_by_lets_the_newest_batch_win(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "order_status": model(
                "select cast(id as integer) as id, status from src",
                materialized="incremental",
                strategy="merge",
                unique_key="id",
                publish=True,
            )
        },
        {"a.csv": "1,shipped,2024-01-03 10:00:00\n"},
        ORDERS_YAML,
    )
    run_ok(root)
    drop(root, {"b.csv": "1,paid,2024-01-02 10:00:00\n"})
    run_ok(root)
    assert warehouse(root, "select * from order_status") == [(1, "paid")]


def test_view_is_computed_but_not_stored(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "doubled": model(
                "select cast(id as integer) as id, cast(amount as integer) * 2 as twice from src",
                materialized="view",
            ),
            "report": model("select sum(twice) as total from doubled", publish=True),
            "per_batch": model(
                "select id, twice from doubled",
                materialized="incremental",
                publish=True,
            ),
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    first = run_ok(root)
    assert first.models["doubled"].status == "computed"
    drop(root, {"f2.csv": "3,c,5\n"})
    run_ok(root)
    assert warehouse(root, "select total from report") == [(70,)]
    # An incremental reader of a view sees only the batch's rows: nothing is doubled up.
    assert warehouse(root, "select id, twice from per_batch order by id") == [
        (1, 20),
        (2, 40),
        (3, 10),
    ]
    assert "doubled" not in lake_tables(root)
    assert "doubled" not in warehouse_tables(root)
    assert not (root / ".headwater" / "lake" / "processed" / "doubled").exists()


def test_published_view_is_a_config_error(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"v": model("select * from src", materialized="view", publish=True)},
    )
    with pytest.raises(ConfigError) as info:
        plan(Project.load(root))
    message = str(info.value)
    assert message.startswith(str(root / "models" / "v.sql"))
    assert "a view model is not stored in the lake, so it cannot be published" in message
    result = cli("check", "-p", str(root))
    assert result.exit_code == 2
    assert "cannot be published" in result.stderr


def test_published_view_from_project_file_is_a_config_error(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"v": model("select * from src", materialized="view")},
        yaml_text="name: t\nsources:\n  src: {kind: files, path: inbox}\n"
        "models:\n  v: {publish: true}\n",
    )
    with pytest.raises(ConfigError, match="cannot be published"):
        plan(Project.load(root))


def test_underscore_columns_stay_in_the_lake(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "items": model(
                f"select {TYPED}, _file, _line, upper(name) as _note from src",
                publish=True,
            )
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    assert lake_columns(root, "items") == [
        "id",
        "name",
        "amount",
        "_file",
        "_line",
        "_note",
        "_batch",
    ]
    assert lake(root, "select id, _file, _line, _note, _batch from items order by id") == [
        (1, "f1.csv", 1, "A", 1001),
        (2, "f1.csv", 2, "B", 1001),
    ]
    assert [c for c, _ in warehouse_columns(root, "items")] == ["id", "name", "amount"]
    assert warehouse(root, "select * from items order by id") == [(1, "a", 10), (2, "b", 20)]


def test_reader_of_incremental_model_sees_only_the_batch(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "events": model(f"select {TYPED} from src", materialized="incremental"),
            "delta_counts": model(
                "select count(*) as n, sum(amount) as amount from events",
                materialized="incremental",
                publish=True,
            ),
            "full_counts": model(
                "select count(*) as n, sum(amount) as amount from events", publish=True
            ),
        },
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": "3,c,30\n4,d,40\n5,e,50\n"})
    run_ok(root)
    assert warehouse(root, "select n, amount from delta_counts order by n") == [(2, 30), (3, 120)]
    assert lake(root, "select n, _batch from delta_counts order by _batch") == [
        (2, 1001),
        (3, 2001),
    ]
    assert warehouse(root, "select n, amount from full_counts") == [(5, 150)]


def test_one_row_first_batch_then_more_rows(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"ids": model("select cast(id as integer) as id from src", publish=True)},
        {"f1.csv": "1,a,10\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": "2,b,20\n3,c,30\n"})
    run_ok(root)
    assert warehouse(root, "select id from ids order by id") == [(1,), (2,), (3,)]


def test_model_edit_making_a_column_nullable(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"names": model("select cast(id as integer) as id, name from src", publish=True)},
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    write_model(
        root,
        "names",
        model("select cast(id as integer) as id, nullif(name, '') as name from src", publish=True),
    )
    drop(root, {"f2.csv": "3,,30\n"})
    run_ok(root)
    assert warehouse(root, "select id, name from names order by id") == [
        (1, "a"),
        (2, "b"),
        (3, None),
    ]


def test_incremental_model_with_an_empty_batch(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "kept": model(
                "select cast(id as integer) as id, name from src where name = 'keep'",
                materialized="incremental",
                publish=True,
            )
        },
        {"f1.csv": "1,keep,1\n2,keep,2\n3,drop,3\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": "4,drop,1\n5,drop,2\n"})
    second = run_ok(root)
    assert second.models["kept"].rows_written == 0
    assert warehouse(root, "select id, name from kept order by id") == [(1, "keep"), (2, "keep")]


def test_two_files_in_one_run_are_one_batch(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"sizes": model("select count(*) as n from src", materialized="incremental", publish=True)},
        {"f1.csv": "1,a,10\n", "f2.csv": "2,b,20\n3,c,30\n"},
    )
    summary = run_ok(root)
    assert summary.batches == [summary.run_id * 1000 + 1]
    assert warehouse(root, "select n from sizes") == [(3,)]


# ------------------------------------------------------------------- golden

GOLDEN = {
    "orders": [
        (1001, dt.datetime(2024, 5, 1, 9, 15), "***ce", "espresso", 2, Decimal("2.50"),
         Decimal("5.00")),
        (1002, dt.datetime(2024, 5, 1, 10, 30), "*ob", "latte", 1, Decimal("3.20"),
         Decimal("3.20")),
        (1003, dt.datetime(2024, 5, 1, 11, 45), "***ce", "muffin", 3, Decimal("1.75"),
         Decimal("5.25")),
        (1004, dt.datetime(2024, 5, 2, 8, 5), "***ol", "latte", 2, Decimal("3.20"),
         Decimal("6.40")),
        (1005, dt.datetime(2024, 5, 2, 12, 0), "*ob", "espresso", 1, Decimal("2.60"),
         Decimal("2.60")),
    ],
    "products": [
        ("espresso", Decimal("2.60"), dt.datetime(2024, 5, 2, 12, 0)),
        ("latte", Decimal("3.20"), dt.datetime(2024, 5, 2, 8, 5)),
        # The quarantined order 1009 still counts here: products reads the source.
        ("muffin", Decimal("1.75"), dt.datetime(2024, 5, 1, 11, 50)),
    ],
    "daily_revenue": [
        (dt.date(2024, 5, 1), 3, Decimal("13.45")),
        (dt.date(2024, 5, 2), 2, Decimal("9.00")),
    ],
    "customers": [
        ("***ce", 2, Decimal("10.25")),
        ("***ol", 1, Decimal("6.40")),
        ("*ob", 2, Decimal("5.80")),
    ],
}  # fmt: skip


def test_golden_shop(tmp_path: Path) -> None:
    root = copy_fixture("shop/project", tmp_path / "shop")
    drops = FIXTURES / "shop" / "drops"
    for day in ("day1", "day2"):
        for f in sorted((drops / day).iterdir()):
            shutil.copyfile(f, root / "inbox" / f.name)
        run_ok(root)
    assert warehouse_tables(root) == {*GOLDEN, "_headwater_loads"}
    for table, rows in GOLDEN.items():
        assert warehouse(root, f"select * from {table} order by all") == rows, table
    assert [c for c, _ in warehouse_columns(root, "orders")] == [
        "order_id",
        "ordered_at",
        "customer",
        "product",
        "qty",
        "unit_price",
        "line_total",
    ]
    assert lake(root, "select name, file, line, rule, reason from quarantine") == [
        ("orders", "2024-05-01.csv", 5, "range(qty)", "qty 0 is outside [1.0, ]")
    ]
    # Nothing new: a third run changes nothing.
    third = run_ok(root)
    assert third.batches == []
    for table, rows in GOLDEN.items():
        assert warehouse(root, f"select * from {table} order by all") == rows, table


TWO_SOURCES_YAML = """\
name: t
sources:
  a:
    kind: files
    path: inbox
    glob: "a_*.csv"
    csv: {columns: [id, name, amount], header: false}
  b:
    kind: files
    path: inbox
    glob: "b_*.csv"
    csv: {columns: [id, name, amount], header: false}
"""


def test_a_model_on_a_source_that_never_delivered_waits(tmp_path: Path) -> None:
    """Source b has no file yet: models on it wait, the rest commit, the run succeeds;
    once b delivers, the waiting table model catches up from full state."""
    root = tiny_project(
        tmp_path / "p",
        {
            "only_a": model("select cast(id as integer) as id from a", publish=True),
            "joined": model(
                "select cast(a.id as integer) as id, b.name from a join b using (id)",
                publish=True,
            ),
            "after_joined": model("select count(*) as n from joined", publish=True),
        },
        {"a_1.csv": "1,x,10\n2,y,20\n"},
        yaml_text=TWO_SOURCES_YAML,
    )
    first = run_ok(root)
    assert first.models["only_a"].status == "committed"
    assert first.models["joined"].status == "waiting"
    assert first.models["joined"].error == "not run: no data yet from b"
    assert first.models["after_joined"].status == "waiting"
    assert warehouse_tables(root) >= {"only_a"} and "joined" not in warehouse_tables(root)
    drop(root, {"b_1.csv": "2,from-b,0\n"})
    second = run_ok(root)
    assert second.models["joined"].status == "committed"
    assert warehouse(root, "select id, name from joined") == [(2, "from-b")]
    assert warehouse(root, "select n from after_joined") == [(1,)]


@pytest.mark.parametrize(
    ("second_file", "fails"),
    [
        ("9,x,10\n", False),  # a new key, outside the earlier range
        ("2,b,20\n", True),  # a key of the first run again: stopped
        ("2,b,21\n", False),  # same id and name, another amount: a new key
        ("1,,10\n", True),  # NULL name in both runs: the key part without a range still checks
        ("0,a,10\n", False),
    ],
)
def test_append_keys_stay_unique_across_runs(tmp_path: Path, second_file: str, fails: bool) -> None:
    """The unique-key check of an append model reads only earlier rows in the new keys'
    ranges; the narrowing never hides a key loaded by an earlier run."""
    sql = (
        "select cast(id as integer) as id, name, cast(amount as decimal(10, 2)) as amount, "
        "date '2025-01-01' + cast(id as integer) as day from src"
    )
    root = tiny_project(
        tmp_path / "p",
        {
            "events": model(
                sql,
                materialized="incremental",
                strategy="append",
                unique_key=["id", "name", "amount", "day"],
                publish=True,
            )
        },
        {"f1.csv": "1,,10\n2,b,20\n5,e,50\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": second_file})
    second = run(Project.load(root))
    assert second.ok is not fails, second.error
    if fails:
        assert "unique(id, name, amount, day) across runs (1 rows)" in (second.error or "")
        assert warehouse(root, "select count(*) from events") == [(3,)]
    else:
        assert warehouse(root, "select count(*) from events") == [(4,)]


def test_the_across_runs_check_reads_only_earlier_files_in_the_new_keys_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Earlier files whose key bounds miss the new keys are not read at all (Iceberg's
    statistics skip them); a file in range is, and its repeated key stops the run."""
    bound: list[list[str]] = []
    original = Engine.bind_parquet

    def spy(self: Engine, name: str, files: list[str], *args: Any, **kwargs: Any) -> None:
        if name == "__hw_existing" and kwargs.get("where"):
            bound.append(list(files))
        original(self, name, files, *args, **kwargs)

    monkeypatch.setattr(Engine, "bind_parquet", spy)
    sql = "select cast(id as integer) as id, name from src"
    header = {"materialized": "incremental", "strategy": "append", "unique_key": "id"}
    root = tiny_project(
        tmp_path / "p",
        {"people": model(sql, **header, publish=True)},
        {"f1.csv": "1,ann,0\n2,bob,0\n"},
    )
    run_ok(root)
    drop(root, {"f2.csv": "100,cyd,0\n101,dan,0\n"})
    run_ok(root)
    assert bound == [[]]  # ids 1 and 2 are outside 100..101: the first file is skipped
    drop(root, {"f3.csv": "2,eve,0\n"})
    third = run(Project.load(root))
    assert not third.ok
    assert "unique(id) across runs (1 rows)" in (third.error or "")
    assert len(bound) == 2 and len(bound[1]) == 1  # the first run's file only
    assert warehouse(root, "select id from people order by id") == [(1,), (2,), (100,), (101,)]


def test_a_second_unique_check_of_an_append_model_sees_every_earlier_row(tmp_path: Path) -> None:
    """Earlier rows are narrowed to those that can collide with the new ones, for every
    `unique` check: a sequential unique_key must not narrow away the earlier row that
    repeats the other check's key (here a name, far outside the new ids' range)."""
    sql = "select cast(id as integer) as id, name from src"
    header = {
        "materialized": "incremental",
        "strategy": "append",
        "unique_key": "id",
        "publish": True,
        "checks": [{"unique": "name"}],
    }
    root = tiny_project(
        tmp_path / "p", {"people": model(sql, **header)}, {"f1.csv": "1,ann,0\n2,bob,0\n"}
    )
    run_ok(root)
    drop(root, {"f2.csv": "100,ann,0\n101,cyd,0\n"})
    second = run(Project.load(root))
    assert not second.ok
    assert "unique(name) across runs (1 rows)" in (second.error or "")
    assert warehouse(root, "select id from people order by id") == [(1,), (2,)]
