"""The golden numbers of ../shared/specs/cafe.md, asserted on the real sample files."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CANONICAL, TEAM4, run_project, warehouse_rows


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory, cafe_data: Path) -> Path:
    from tests.conftest import new_project

    root = new_project(tmp_path_factory.mktemp("canonical") / "p", [cafe_data / CANONICAL])
    summary = run_project(root)
    assert summary.ok, summary.error
    return root


def test_file_is_the_canonical_blob(cafe_data: Path) -> None:
    assert (cafe_data / CANONICAL).stat().st_size == 46_811


def test_transactions_by_payment(canonical: Path) -> None:
    rows = warehouse_rows(
        canonical,
        "SELECT payment_method, count(*), sum(total) FROM transactions GROUP BY 1 ORDER BY 1",
    )
    assert rows == [("CARD", 183, Decimal("1413.30")), ("CASH", 85, Decimal("675.35"))]


def test_revenue_and_items(canonical: Path) -> None:
    [(count, revenue)] = warehouse_rows(canonical, "SELECT count(*), sum(total) FROM transactions")
    assert (count, revenue) == (268, Decimal("2088.65"))
    [(items, distinct, line_total)] = warehouse_rows(
        canonical,
        "SELECT sum(quantity), count(DISTINCT product_id), sum(line_total) FROM transaction_items",
    )
    assert (items, distinct, line_total) == (779, 12, Decimal("2088.65"))
    [(products,)] = warehouse_rows(canonical, "SELECT count(*) FROM products")
    assert products == 12


def test_top_products(canonical: Path) -> None:
    by_units = warehouse_rows(
        canonical,
        "SELECT size, product_name, variant, sum(quantity) FROM transaction_items "
        "JOIN products USING (product_id) GROUP BY ALL ORDER BY 4 DESC LIMIT 1",
    )
    assert by_units == [("Large", "Latte", None, 78)]
    by_revenue = warehouse_rows(
        canonical,
        "SELECT size, product_name, variant, sum(line_total) FROM transaction_items "
        "JOIN products USING (product_id) GROUP BY ALL ORDER BY 4 DESC LIMIT 1",
    )
    assert by_revenue == [("Large", "Flavoured latte", "Hazelnut", Decimal("205.20"))]


def test_transactions_by_hour(canonical: Path) -> None:
    rows = warehouse_rows(
        canonical, "SELECT hour(transacted_at), count(*) FROM transactions GROUP BY 1 ORDER BY 1"
    )
    assert rows == [(9, 29), (10, 61), (11, 23), (12, 13), (13, 29), (14, 47), (15, 48), (16, 18)]


def test_warehouse_shape(canonical: Path) -> None:
    columns = warehouse_rows(
        canonical,
        "SELECT table_name, list(column_name || ' ' || data_type ORDER BY column_index) "
        "FROM duckdb_columns() WHERE schema_name = 'main' AND NOT internal "
        "AND table_name <> '_headwater_loads' GROUP BY 1 ORDER BY 1",
    )
    assert dict(columns) == {
        "branches": ["branch_id BIGINT", "branch_name VARCHAR"],
        "products": [
            "product_id BIGINT",
            "product_name VARCHAR",
            "variant VARCHAR",
            "size VARCHAR",
            "price DECIMAL(10,2)",
        ],
        "transactions": [
            "transaction_id BIGINT",
            "branch_id BIGINT",
            "transacted_at TIMESTAMP",
            "total DECIMAL(10,2)",
            "payment_method VARCHAR",
            "customer_key VARCHAR",
        ],
        "transaction_items": [
            "transaction_id BIGINT",
            "product_id BIGINT",
            "quantity INTEGER",
            "unit_price DECIMAL(10,2)",
            "line_total DECIMAL(10,2)",
        ],
    }


def test_keys_are_unique(canonical: Path) -> None:
    checks = {
        "branches": "branch_name",
        "products": "product_name, variant, size",
        "transactions": "transaction_id",
        "transaction_items": "transaction_id, product_id",
    }
    for table, key in checks.items():
        [(dupes,)] = warehouse_rows(
            canonical,
            f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY ALL HAVING count(*) > 1)",
        )
        assert dupes == 0, table


def test_team4_folder(make_project: Callable[..., Path], cafe_data: Path) -> None:
    folder = cafe_data / TEAM4
    files = sorted(folder.glob("*.csv"))
    assert len(files) == 154
    root = make_project(files)
    summary = run_project(root)
    assert summary.ok, summary.error
    source = summary.sources["branch_files"]
    assert (source.files_new, source.rows_read, source.rows_quarantined) == (154, 46_541, 0)
    rows = warehouse_rows(
        root,
        "SELECT branch_name = 'Isle of Wight' AS iow, count(DISTINCT transaction_id), sum(quantity) "
        "FROM transactions JOIN branches USING (branch_id) JOIN transaction_items USING (transaction_id) "
        "GROUP BY 1 ORDER BY 1",
    )
    format_a, isle_of_wight = rows
    assert format_a[1:] == (46_001, 126_510)
    assert isle_of_wight[1] == 540
