"""The totesys template end to end on real PostgreSQL, with the sample fixtures of
../shared/data/totesys: warehouse numbers equal the ones computed straight from the
fixtures; the 2024-11-20 change batch reaches the dimensions; a paid flip adds exactly one
fact version; a rerun with no change writes nothing."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from headwater.project import Project
from headwater.runs.pipeline import run
from headwater.serve.dashboards import load_dashboards, panel_rows
from headwater.templates import init_project
from headwater.templates.totesys.source_db import create_schema, load_fixture_folder
from tests.conftest import SECRET, shared_data

SAMPLE = "sample_2024-11-15_orders_before_2023-03-01"
CHANGES = "update_batch_2024-11-20"


def fixtures(folder: str) -> Path:
    return shared_data() / "totesys" / folder


def fixture_sql(sql: str) -> list[tuple[object, ...]]:
    """Run SQL over the fixture JSON Lines (tables as views) with DuckDB: the reference."""
    conn = duckdb.connect()
    try:
        for path in sorted(fixtures(SAMPLE).glob("*.jsonl")):
            conn.execute(
                f"CREATE VIEW \"{path.stem}\" AS SELECT * FROM read_json('{path}', "
                "format = 'newline_delimited')"
            ).fetchall()
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def wh(root: Path, sql: str) -> list[tuple[object, ...]]:
    conn = duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def totesys(tmp_path: Path, pg_database: str) -> tuple[Path, str]:
    create_schema(pg_database)
    counts = load_fixture_folder(pg_database, fixtures(SAMPLE))
    assert counts["sales_order"] == 1053 and counts["payment"] == 1644
    root = tmp_path / "t"
    init_project(root, "totesys")
    (root / ".env").write_text(f"TOTESYS_DB_URL={pg_database}\nHEADWATER_PII_SECRET={SECRET}\n")
    return root, pg_database


def test_totesys_from_fixtures_then_the_change_batch(totesys: tuple[Path, str]) -> None:
    root, url = totesys
    summary = run(Project.load(root))
    assert summary.ok, summary.error
    assert summary.sources["totesys"].files_found == 11  # _prisma_migrations left out

    counts = {
        t: wh(root, f"select count(*) from {t}")[0][0]
        for t in ("fact_sales_order", "fact_purchase_order", "fact_payment", "dim_location",
                  "dim_counterparty", "dim_currency", "dim_design", "dim_staff",
                  "dim_payment_type", "dim_transaction")
    }  # fmt: skip
    assert counts == {
        "fact_sales_order": 1053, "fact_purchase_order": 591, "fact_payment": 1644,
        "dim_location": 30, "dim_counterparty": 20, "dim_currency": 3, "dim_design": 473,
        "dim_staff": 20, "dim_payment_type": 4, "dim_transaction": 1644,
    }  # fmt: skip
    # payment_amount per currency and units_sold per design, straight from the fixtures.
    expected = fixture_sql(
        "select c.currency_code, sum(p.payment_amount::decimal(18,2)) from payment p "
        "join currency c using (currency_id) group by 1 order by 1"
    )
    assert wh(root, "select currency_code, sum(payment_amount) from fact_payment "
                    "join dim_currency using (currency_id) group by 1 order by 1") == expected  # fmt: skip
    expected_units = fixture_sql(
        "select d.design_name, sum(s.units_sold) from sales_order s join design d "
        "using (design_id) group by 1 order by 1"
    )
    assert wh(root, "select design_name, sum(units_sold) from fact_sales_order "
                    "join dim_design using (design_id) group by 1 order by 1") == expected_units  # fmt: skip
    assert wh(root, "select currency_code, currency_name from dim_currency order by 1") == [
        ("EUR", "Euro"), ("GBP", "Pound Sterling"), ("USD", "US Dollar")
    ]  # fmt: skip
    assert wh(root, "select count(*), min(day_of_week), max(day_of_week) from dim_date "
                    "where date_id between '2022-11-07' and '2022-11-13'") == [(7, 1, 7)]  # fmt: skip
    assert wh(root, "select day_of_week, day_name from dim_date where date_id = '2022-11-07'") == [
        (1, "Monday")
    ]

    # The 2024-11-20 change batch: dims follow, facts do not change.
    load_fixture_folder(url, fixtures(CHANGES))
    changed = run(Project.load(root))
    assert changed.ok, changed.error
    at_17 = wh(root, "select counterparty_id, counterparty_legal_address_line_1, "
                     "counterparty_legal_city from dim_counterparty where counterparty_id in "
                     "(11, 15, 17, 18) order by 1")  # fmt: skip
    assert at_17 == [(i, "27 Maisel Underpass", "Blotsworth") for i in (11, 15, 17, 18)]
    assert wh(root, "select counterparty_legal_name from dim_counterparty "
                    "where counterparty_id = 11") == [("Nienow and Newpartner",)]  # fmt: skip
    assert wh(root, "select staff_id, location from dim_staff where staff_id in (2, 3, 16) "
                    "order by 1") == [(2, "Liverpool"), (3, "Liverpool"), (16, "Liverpool")]  # fmt: skip
    assert wh(root, "select count(*) from fact_payment") == [(1644,)]
    assert wh(root, "select count(*) from fact_sales_order") == [(1053,)]

    # Every dashboard panel runs; the headline numbers equal the fixtures'.
    project = Project.load(root)
    boards = load_dashboards(project)
    assert set(boards) == {"sales", "purchases", "payments"}
    for board in boards.values():
        for panel in board.panels:
            assert panel_rows(project, panel).num_rows > 0, panel.title
    [value] = panel_rows(project, boards["sales"].panels[0]).to_pylist()
    assert (
        value["sales_value"]
        == fixture_sql("select sum(units_sold * unit_price::decimal(10,2)) from sales_order")[0][0]
    )
    paid = {
        r["status"]: r["payments"]
        for r in panel_rows(project, boards["payments"].panels[0]).to_pylist()
    }
    assert paid == dict(fixture_sql(
        "select case when paid then 'paid' else 'unpaid' end, count(*) from payment group by 1"
    ))  # fmt: skip

    # A payment flips to paid: exactly one new fact version.
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "UPDATE payment SET paid = true, last_updated = now()::timestamp(3) "
            "WHERE payment_id = (SELECT min(payment_id) FROM payment WHERE NOT paid) "
            "RETURNING payment_id"
        ).fetchone()
    assert row is not None
    flipped = run(Project.load(root))
    assert flipped.ok, flipped.error
    assert wh(root, "select count(*) from fact_payment") == [(1645,)]
    versions = wh(root, f"select paid from fact_payment where payment_id = {row[0]} "
                        "order by payment_record_id")  # fmt: skip
    assert versions == [(False,), (True,)]

    # Nothing new: nothing landed, the warehouse is not even opened for writing.
    quiet = run(Project.load(root))
    assert quiet.ok and quiet.sources["totesys"].files_new == 0
    assert quiet.warehouse.status == "unchanged"
    assert wh(root, "select sum(payment_amount) from fact_payment")[0][0] > Decimal(0)


def test_generate_then_run_then_live_and_change_batch(tmp_path: Path, pg_database: str) -> None:
    from tests.fixtures.tiny import cli

    made = cli("generate", "totesys", "--db", pg_database, "--days", "20", "--seed", "3")
    assert made.exit_code == 0, made.output
    root = tmp_path / "t"
    assert cli("init", str(root), "--template", "totesys").exit_code == 0
    with (root / ".env").open("a") as env:
        env.write(f"TOTESYS_DB_URL={pg_database}\n")
    assert run(Project.load(root)).ok
    with psycopg.connect(pg_database) as conn:
        [(orders,)] = conn.execute("select count(*) from sales_order").fetchall()
        [(unpaid,)] = conn.execute("select count(*) from payment where not paid").fetchall()
    assert orders > 100
    assert wh(root, "select count(*) from fact_sales_order") == [(orders,)]

    assert cli("generate", "totesys", "--db", pg_database, "--change-batch").exit_code == 0
    after = run(Project.load(root))
    assert after.ok, after.error
    # Only the changed dimension rows were extracted: 2 addresses, 4 counterparties, 1 staff.
    assert after.sources["totesys"].rows_read == 7
    assert wh(root, "select count(*) from fact_sales_order") == [(orders,)]
    with psycopg.connect(pg_database) as conn:
        [(unpaid_now,)] = conn.execute("select count(*) from payment where not paid").fetchall()
    assert unpaid_now == unpaid
    missing = cli("generate", "totesys")
    assert missing.exit_code == 2 and "--db" in missing.output


def test_the_same_tables_in_mariadb_extract_to_identical_raw_parquet(
    tmp_path: Path, pg_database: str, mariadb_database: str
) -> None:
    hashes = {}
    for label, url in (("pg", pg_database), ("maria", mariadb_database)):
        create_schema(url)
        load_fixture_folder(url, fixtures(SAMPLE))
        root = tmp_path / label
        init_project(root, "totesys")
        (root / ".env").write_text(f"TOTESYS_DB_URL={url}\nHEADWATER_PII_SECRET={SECRET}\n")
        summary = run(Project.load(root))
        assert summary.ok, summary.error
        raw = sorted((root / ".headwater" / "lake" / "raw" / "totesys").rglob("*.parquet"))
        assert len(raw) == 11
        hashes[label] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw}
    assert hashes["pg"] == hashes["maria"]
