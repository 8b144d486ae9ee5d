"""`headwater query --lake` as a local Athena: the scan plan (`--explain`), file pruning on
dates, the `--max-scan` guard, and the raw zone as relations (`raw.<source>`), on disk and S3."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from headwater.project import Project
from headwater.serve.query import connect, head, lake_query, run_query
from headwater.serve.scan import parse_size
from headwater.templates.cafe.generator import generate
from tests.conftest import CANONICAL, new_project, run_project
from tests.fixtures.servers import Bucket
from tests.fixtures.tiny import cli, run_ok, tiny_project

DAYS = ("01-01-2024", "02-01-2024", "03-01-2024")  # one run per day: one data file each
HEADED = "DataWithMichael__Super-Cafe-ETL-Pipeline/data/leeds_09-05-2023_09-00-00(in).csv"


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cafe project that ran once per day of files: 2 branches, 3 days, 3 runs."""
    base = tmp_path_factory.mktemp("three_days")
    drops = base / "drops"
    generate(drops, branches=2, days=3, seed=7, per_day=25, start=dt.date(2024, 1, 1))
    root = new_project(base / "project")
    for day in DAYS:
        for f in sorted(drops.glob(f"*_{day}_*.csv")):
            shutil.copyfile(f, root / "inbox" / f.name)
        summary = run_project(root)
        assert summary.ok, summary.error
    return root


def explain(root: Path, sql: str) -> dict[str, Any]:
    result = cli("query", "-p", str(root), "--lake", "--explain", "-f", "json", sql)
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def relation(plan: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in plan["relations"] if r["relation"] == name]
    assert len(found) == 1, plan
    return found[0]


def on_disk(folder: Path, pattern: str) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in folder.glob(pattern)}


def unpruned(root: Path, sql: str) -> list[tuple[Any, ...]]:
    """The query over every file (the views `connect` makes without a plan)."""
    with connect(Project.load(root), lake=True) as conn:
        return sorted(conn.execute(sql).fetchall(), key=repr)


def planned(root: Path, sql: str) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """The query over the files its plan keeps, and the plan."""
    with lake_query(Project.load(root), sql) as query:
        query.build()
        table, _ = head(run_query(query.conn, sql), 1_000_000)
        rows = [tuple(r.values()) for r in table.to_pylist()]
        return sorted(rows, key=repr), query.plan.to_dict()


def test_explain_lists_the_files_and_bytes_on_disk(three_days: Path) -> None:
    lake = three_days / ".headwater" / "lake"
    plan = explain(
        three_days,
        "select t.*, r.basket from transactions t join raw.branch_files r using (_file)",
    )
    tx = relation(plan, "transactions")
    data = on_disk(lake / "processed" / "transactions" / "data", "*.parquet")
    assert len(data) == 3
    assert {f["file"]: f["bytes"] for f in tx["scan"]} == data
    assert (tx["files"], tx["files_total"], tx["bytes"]) == (3, 3, sum(data.values()))
    raw = relation(plan, "raw.branch_files")
    landed = on_disk(lake / "raw" / "branch_files", "run=*/*.csv")
    assert {f["file"]: f["bytes"] for f in raw["scan"]} == landed
    inbox = sum(p.stat().st_size for p in (three_days / "inbox").iterdir())
    assert raw["bytes"] == raw["bytes_total"] == inbox  # byte-exact copies
    assert plan["bytes"] == sum(data.values()) + inbox and plan["complete"]
    # The table form names each relation and file; nothing runs.
    shown = cli("query", "-p", str(three_days), "--lake", "--explain", "select * from products")
    assert shown.exit_code == 0, shown.output
    assert "products" in shown.stdout and "1 of 1" in shown.stdout
    assert "┃ product_name" not in shown.stdout
    listed = cli("query", "-p", str(three_days), "--lake", "--explain", "-f", "csv",
                 "select * from raw.branch_files")  # fmt: skip
    assert listed.stdout.splitlines()[0] == "relation,kind,file,bytes"
    assert len(listed.stdout.splitlines()) == 1 + len(landed)


@pytest.mark.parametrize(
    ("sql", "kept"),
    [
        ("select * from transactions where transacted_at >= '2024-01-03'", 1),
        ("select count(*), sum(total) from transactions where transacted_at::date = "
         "DATE '2024-01-02'", 1),
        ("select * from transactions where transacted_at between TIMESTAMP '2024-01-01 12:00' "
         "and '2024-01-02 10:00:00'", 2),
        ("select b.branch_name, count(*) from transactions t join branches b using (branch_id) "
         "where t.transacted_at < DATE '2024-01-02' group by 1", 1),
        ("select count(*) from branches b left join transactions t on t.branch_id = b.branch_id "
         "and t.transacted_at >= '2024-01-03' where t.transaction_id is null", 1),
        ("select transaction_id from transactions where transacted_at < '2024-01-02' union all "
         "select transaction_id from transactions where transacted_at >= '2024-01-03'", 2),
        ("select count(*) from transactions where transacted_at > current_date + 1000", 0),
        ("select * from transactions where transacted_at >= '2024-01-03' "
         "or payment_method = 'CASH'", 3),
    ],
)  # fmt: skip
def test_date_filters_prune_files_and_give_the_same_rows(
    three_days: Path, sql: str, kept: int
) -> None:
    rows, plan = planned(three_days, sql)
    tx = relation(plan, "transactions")
    assert (tx["files"], tx["files_total"]) == (kept, 3)
    assert (tx["pruned_by"] is None) == (kept == 3)
    assert rows == unpruned(three_days, sql)


def test_raw_files_prune_on_their_date_run_and_name(three_days: Path) -> None:
    for sql, kept in [
        ("select * from raw.branch_files where _file_date = '2024-01-02'", 2),
        ("select count(*) from raw.branch_files r where r._run >= 2 and r.total <> '0'", 4),
        ("select count(*) from raw.branch_files where _file like 'leeds%'", 3),
        ("select count(*) from raw.branch_files where _landed_at < '2000-01-01'", 0),
    ]:
        rows, plan = planned(three_days, sql)
        raw = relation(plan, "raw.branch_files")
        assert (raw["files"], raw["files_total"]) == (kept, 6), sql
        assert rows == unpruned_raw(three_days, sql), sql


def unpruned_raw(root: Path, sql: str) -> list[tuple[Any, ...]]:
    """The raw query over every landed file: the same predicate, applied after reading."""
    everything = "select * from raw.branch_files where _run > 0"  # keeps every file
    with lake_query(Project.load(root), everything) as query:
        assert relation(query.plan.to_dict(), "raw.branch_files")["files"] == 6
        query.build()
        return sorted(query.conn.execute(sql).fetchall(), key=repr)


def test_max_scan_refuses_before_running_and_admits_a_narrow_query(three_days: Path) -> None:
    root = str(three_days)
    whole = explain(three_days, "select * from transactions")["bytes"]
    narrow = explain(three_days, "select * from transactions where transacted_at >= '2024-01-03'")
    assert 0 < narrow["bytes"] < whole
    limit = str(narrow["bytes"] + 1)
    refused = cli(
        "query", "-p", root, "--lake", "--max-scan", limit, "select count(*) from transactions"
    )
    assert refused.exit_code == 1
    assert "refused by --max-scan" in refused.output
    assert (
        f"{whole:,} bytes in 3 files" in refused.output
        and f"({int(limit):,} bytes)" in refused.output
    )
    admitted = cli("query", "-p", root, "--lake", "--max-scan", limit, "-f", "csv",
                   "select count(*) as n from transactions where transacted_at >= '2024-01-03'")  # fmt: skip
    assert admitted.exit_code == 0, admitted.output
    assert admitted.stdout.splitlines()[0] == '"n"'
    assert cli("query", "-p", root, "--lake", "--max-scan", "1GB", "select 1").exit_code == 0
    unknown = cli("query", "-p", root, "--lake", "--max-scan", "1GB",
                  "select * from read_csv(concat('in', 'box/*.csv'))")  # fmt: skip
    assert unknown.exit_code == 1 and "cannot be planned" in unknown.output
    for args in (["--lake", "--max-scan", "lots"], ["--max-scan", "1GB"], ["--explain"]):
        bad = cli("query", "-p", root, *args, "select 1")
        assert bad.exit_code == 2, (args, bad.output)
    assert parse_size("500MB") == 500_000_000 and parse_size("10GiB") == 10 * 2**30
    assert parse_size("1.5 gb") == 1_500_000_000 and parse_size("2048") == 2048


def test_raw_csv_view_returns_the_delivered_rows(tmp_path: Path, cafe_data: Path) -> None:
    files = [cafe_data / CANONICAL, cafe_data / HEADED]  # the second has a header line
    root = new_project(tmp_path / "p", files)
    assert run_project(root).ok
    lines = sum(
        len([x for x in p.read_bytes().splitlines() if x.strip()])
        for p in (root / "inbox").iterdir()
    )
    result = cli("query", "-p", str(root), "--lake", "-f", "json",
                 "select _file, count(*) as n, count(card_number) as cards, min(_run) as run "
                 "from raw.branch_files group by 1 order by 1")  # fmt: skip
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert sum(c["n"] for c in counts) == lines - 1 == 268 + 50
    assert {c["_file"]: c["n"] for c in counts} == {
        Path(CANONICAL).name: 268,
        Path(HEADED).name: 50,
    }
    assert all(c["run"] == 1 for c in counts)
    [(first,)] = lake_rows(
        root, "select customer_name from raw.branch_files where _file like 'chester%' limit 1"
    )
    assert first == "Richard Copeland"  # raw: as delivered, personal data included
    # Directly, with the same reader DuckDB uses for any file in the lake.
    raw = root / ".headwater" / "lake" / "raw" / "branch_files"
    [(n,)] = lake_rows(root, f"select count(*) from read_csv('{raw}/*/*.csv', header = false)")
    assert n == lines


def lake_rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    with lake_query(Project.load(root), sql) as query:
        query.build()
        rows: list[tuple[Any, ...]] = query.conn.execute(sql).fetchall()
        return rows


LOG_YAML = """\
name: logs
sources:
  app_logs:
    kind: files
    path: inbox
    glob: "*.log"
    format: log
    log:
      patterns:
        - '^(?P<logged_at>\\S+ \\S+) (?P<level>[A-Z]+) (?P<message>.*)$'
      fields:
        logged_at: {type: timestamp, format: '%Y-%m-%d %H:%M:%S'}
"""


def test_raw_log_view_goes_through_the_source_parser(tmp_path: Path) -> None:
    files = {
        f"app-2024-03-0{d}.log": "".join(
            f"2024-03-0{d} 10:0{i}:00 {'ERROR' if i == 2 else 'INFO'} event {d}.{i}\n"
            for i in range(4)
        )
        for d in (1, 2, 3)
    }
    model = "select * from app_logs\n"
    root = tiny_project(tmp_path / "p", {"events": model}, files, yaml_text=LOG_YAML)
    run_ok(root)
    sql = (
        "select _file, _line, logged_at, level, message from raw.app_logs "
        "where _file_date >= '2024-03-02' and level = 'ERROR' order by 1"
    )
    rows = lake_rows(root, sql)
    assert rows == [
        ("app-2024-03-02.log", 3, dt.datetime(2024, 3, 2, 10, 2), "ERROR", "event 2.2"),
        ("app-2024-03-03.log", 3, dt.datetime(2024, 3, 3, 10, 2), "ERROR", "event 3.2"),
    ]
    plan = explain(root, sql)
    raw = relation(plan, "raw.app_logs")
    assert (raw["kind"], raw["files"], raw["files_total"]) == ("raw log", 2, 3)


def test_s3_lake_explain_raw_view_and_direct_reads(
    tmp_path: Path, cafe_data: Path, s3_bucket: Bucket
) -> None:
    root = new_project(tmp_path / "p", [cafe_data / CANONICAL, cafe_data / HEADED])
    text = (root / "headwater.yaml").read_text()
    (root / "headwater.yaml").write_text(
        text.replace("url: .headwater/lake", f"url: {s3_bucket.url()}")
    )
    assert run_project(root).ok
    client: Any = s3_bucket.client()
    objects = {
        f"s3://{s3_bucket.name}/{o['Key']}": o["Size"]
        for o in client.list_objects_v2(Bucket=s3_bucket.name, Prefix="lake/")["Contents"]
    }
    plan = explain(root, "select count(*) from transactions, raw.branch_files")
    for name in ("transactions", "raw.branch_files"):
        scanned = {f["file"]: f["bytes"] for f in relation(plan, name)["scan"]}
        assert scanned and all(objects[uri] == size for uri, size in scanned.items())
    assert [r["n"] for r in query_json(root, "select count(*) as n from raw.branch_files")] == [318]
    glob = f"s3://{s3_bucket.name}/lake/raw/branch_files/*/*.csv"
    direct = explain(root, f"select * from read_csv('{glob}')")
    assert len(direct["relations"][0]["scan"]) == 2
    rows = query_json(root, f"select count(*) as n from read_csv('{glob}', header = false)")
    assert rows == [{"n": 268 + 51}]
    shown = cli(
        "query", "-p", str(root), "--lake", "--explain", f"select * from read_csv('{glob}')"
    )
    assert "testing-secret" not in shown.output


def query_json(root: Path, sql: str) -> list[dict[str, Any]]:
    result = cli("query", "-p", str(root), "--lake", "-f", "json", sql)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_raw_views_of_json_lines_and_sql_extracts(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table orders (id integer primary key, placed text, amount real)")
        conn.executemany(
            "insert into orders values (?, ?, ?)", [(i, "2024-01-02", i / 2) for i in range(1, 11)]
        )
    conn.close()
    yaml_text = f"""\
name: t
sources:
  shop:
    kind: sql
    url: sqlite:///{db}
    prefix: shop_
  events:
    kind: files
    path: inbox
    glob: "*.jsonl"
    format: jsonl
"""
    files = {
        "e-2024-01-01.jsonl": '{"a": 1, "b": {"c": "x"}}\n{"a": 2}\n',
        "e-2024-01-02.jsonl": '{"a": 3, "d": true}\n',  # a later file adds a key
    }
    root = tiny_project(tmp_path / "p", {"m": "select * from events\n"}, files, yaml_text=yaml_text)
    run_ok(root)
    per_file = ["_file", "_run", "_landed_at", "_file_date"]
    columns = [r[0] for r in lake_rows(root, "describe raw.events")]
    assert columns == [*per_file, "a", "b", "d"]  # no `run` column from the key's run=...
    assert lake_rows(root, "select a, b.c, d from raw.events order by a") == [
        (1, "x", None), (2, None, None), (3, None, True),
    ]  # fmt: skip
    columns = [r[0] for r in lake_rows(root, "describe raw.shop_orders")]
    assert columns == [*per_file, "id", "placed", "amount"]
    assert lake_rows(
        root, "select _file, count(*), sum(amount) from raw.shop_orders group by 1"
    ) == [("orders.parquet", 10, 27.5)]
    plan = explain(root, "select * from raw.events where _file_date = '2024-01-02'")
    assert (plan["files"], plan["files_total"]) == (1, 2)
    result = cli("query", "-p", str(root), "--lake", "select * from raw.nope")
    assert result.exit_code == 1
    assert "raw.events, raw.shop_orders" in result.output
