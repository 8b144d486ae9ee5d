"""No customer name or card number reaches the processed zone or the warehouse, in any form."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.errors import PiiLeakError
from headwater.project import Project
from headwater.quality.pii import hmac_hex, install_key
from tests.conftest import CANONICAL, SECRET, TEAM4, run_project, warehouse_rows

FILES = [
    CANONICAL,  # Format A
    f"{TEAM4}/2021-02-23-isle-of-wight.csv",  # Format B: card as "provider,number"
    "Skyeward__cafe-data-generator/research/data_files/aberdeen_11-10-2020_19-49-26.csv",  # 13-17 digits
    "DataWithMichael__Super-Cafe-ETL-Pipeline/data/leeds_09-05-2023_09-00-00(in).csv",  # 7.92528E+15
    "data-engineer-sk__AWS-ETL-Project/data/chesterfield_25-08-2021_09-00-00.csv",  # 6844802140812058.0
]


def protected_values(paths: list[Path]) -> tuple[set[str], set[str]]:
    """Customer names (column 3) and card numbers (column 7, provider stripped) of the inputs."""
    names: set[str] = set()
    cards: set[str] = set()
    for path in paths:
        text = path.read_text(encoding="utf-8-sig")
        for row in csv.reader(io.StringIO(text)):
            if len(row) != 7 or not any(ch.isdigit() for ch in row[0]):
                continue
            names.add(row[2].strip())
            card = row[6].strip().split(",")[-1]
            if card and card != "None":
                cards.add(card)
    return names, cards


@pytest.fixture(scope="module")
def scrubbed(
    tmp_path_factory: pytest.TempPathFactory, cafe_data: Path
) -> tuple[Path, set[str], set[str]]:
    from tests.conftest import new_project

    paths = [cafe_data / f for f in FILES]
    root = new_project(tmp_path_factory.mktemp("pii") / "p", paths)
    summary = run_project(root)
    assert summary.ok, summary.error
    names, cards = protected_values(paths)
    assert len(names) > 1000 and len(cards) > 700
    return root, names, cards


def _string_columns(conn: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        if "VARCHAR" in r[1]
    ]


def _scan(
    conn: duckdb.DuckDBPyConnection, relation: str, values: set[str]
) -> list[tuple[str, int]]:
    """(column, hits) where a protected value occurs anywhere inside a string column."""
    conn.register("protected", __import__("pyarrow").table({"v": sorted(values)}))
    hits = []
    for column in _string_columns(conn, relation):
        [(n,)] = conn.execute(
            f'SELECT count(*) FROM (SELECT DISTINCT "{column}" AS c FROM {relation}) t '
            "JOIN protected p ON contains(t.c, p.v)"
        ).fetchall()
        if n:
            hits.append((column, int(n)))
    return hits


def test_no_protected_value_in_processed_zone(scrubbed: tuple[Path, set[str], set[str]]) -> None:
    root, names, cards = scrubbed
    processed = root / ".headwater" / "lake" / "processed"
    files = sorted(processed.rglob("*.parquet"))
    assert len(files) >= 5
    conn = duckdb.connect()
    for f in files:
        relation = f"read_parquet('{f}')"
        assert _scan(conn, relation, names | cards) == [], f
    # Iceberg metadata keeps column bounds; none may be a name or card number.
    for f in processed.rglob("*"):
        if f.is_file() and f.suffix != ".parquet":
            data = f.read_bytes()
            assert not any(v.encode() in data for v in names | cards if len(v) >= 6), f


def test_no_protected_value_in_warehouse_or_quarantine(
    scrubbed: tuple[Path, set[str], set[str]],
) -> None:
    root, names, cards = scrubbed
    conn = duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True)
    tables = [r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    assert {"transactions", "branches", "products", "transaction_items"} <= set(tables)
    for table in tables:
        assert _scan(conn, table, names | cards) == [], table
    conn.close()
    quarantine = root / ".headwater" / "lake" / "quarantine"
    conn = duckdb.connect()
    for f in quarantine.rglob("*.parquet"):
        assert _scan(conn, f"read_parquet('{f}')", names | cards) == [], f


def test_returning_customers_share_a_key(scrubbed: tuple[Path, set[str], set[str]]) -> None:
    root, _, _ = scrubbed
    [(keys, with_key)] = warehouse_rows(
        root, "SELECT count(DISTINCT customer_key), count(customer_key) FROM transactions"
    )
    assert 0 < keys < with_key  # the same names recur across files and get the same key
    # The key is the HMAC of the normalised name under the project secret.
    expected = hmac_hex(SECRET, "richard copeland")
    [(found,)] = warehouse_rows(
        root, f"SELECT count(*) FROM transactions WHERE customer_key = '{expected}'"
    )
    assert found >= 1


@settings(max_examples=60, deadline=None)
@given(secret=st.text(min_size=1, max_size=100), value=st.text(max_size=200))
def test_sql_hmac_matches_python(secret: str, value: str) -> None:
    conn = duckdb.connect()
    install_key(conn, secret)
    [(got,)] = conn.execute("SELECT hw_hmac(?)", [value]).fetchall()
    assert got == hmac_hex(secret, value)


def test_secret_is_not_in_sql_text() -> None:
    conn = duckdb.connect()
    install_key(conn, "s3cr3t-value")
    macros = conn.execute(
        "SELECT macro_definition FROM duckdb_functions() WHERE function_name = 'hw_hmac'"
    ).fetchall()
    assert macros and all("s3cr3t" not in str(m) for m in macros)


def _add_model(root: Path, name: str, sql: str) -> None:
    (root / "models" / f"{name}.sql").write_text(sql)


def test_leak_check_fails_a_model_that_republishes_a_name(
    make_project: Callable[..., Path], cafe_data: Path
) -> None:
    root = make_project([cafe_data / CANONICAL])
    _add_model(
        root,
        "leaky",
        "/* headwater\npublish: true\n*/\nselect 'Richard Copeland' as who from branches",
    )
    summary = run_project(root)
    assert not summary.ok
    assert summary.models["leaky"].status == "failed"
    assert "leaky" in (summary.models["leaky"].error or "")
    assert "protected source value" in (summary.models["leaky"].error or "")
    # The other models are published; the leaky one is not.
    tables = {r[0] for r in warehouse_rows(root, "SELECT table_name FROM duckdb_tables()")}
    assert "transactions" in tables and "leaky" not in tables


def test_leak_check_fails_a_dropped_column_name(
    make_project: Callable[..., Path], cafe_data: Path
) -> None:
    root = make_project([cafe_data / CANONICAL])
    _add_model(root, "cards", "select branch_id, '' as card_number from branches")
    summary = run_project(root)
    assert not summary.ok
    assert "card_number" in (summary.models["cards"].error or "")
    assert issubclass(PiiLeakError, Exception)
    assert Project.load(root).config.sources["branch_files"].pii["card_number"].policy == "drop"


NAMES = st.one_of(st.none(), st.sampled_from(["", "  ", "Ann  Lee", "ann lee", " Bob"]), st.text())


@given(
    names=st.lists(NAMES, max_size=40),
    normalize=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_hashing_in_arrow_equals_hashing_in_sql(names: list[str | None], normalize: bool) -> None:
    """The staging path hashes a dictionary in Arrow (`scrub_arrow`); it must give the
    values the SQL path (`scrub_query`, hashing distinct values joined back) gives, row
    for row, with dropped columns gone and the others untouched."""
    import pyarrow as pa

    from headwater.config import PiiPolicy
    from headwater.quality.pii import HashMemo, scrub_arrow, scrub_query

    policies = {
        "name": PiiPolicy(policy="hash", normalize=normalize),
        "card": PiiPolicy(policy="drop"),
    }
    rows = pa.table(
        {
            "_line": pa.array(range(len(names)), pa.int64()),
            "name": pa.array(names, pa.string()),
            "card": pa.array(["4111"] * len(names), pa.string()),
            "total": pa.array(["1.50"] * len(names), pa.string()),
        }
    )
    conn = duckdb.connect()
    try:
        install_key(conn, SECRET)
        got = scrub_arrow(conn, rows, policies)
        # In parts sharing a memo (as staging does), past its limit too: the same values.
        memo = HashMemo(limit=3)
        half = len(names) // 2
        parts = [scrub_arrow(conn, rows.slice(0, half), policies, memo)]
        parts.append(scrub_arrow(conn, rows.slice(half), policies, memo))
        conn.register("rows_in", rows)
        sql = scrub_query("rows_in", ["_line"], ["name", "card", "total"], policies)
        expected = conn.execute(f"{sql} ORDER BY _line").to_arrow_table()
    finally:
        conn.close()
    assert got is not None
    assert got.column_names == ["_line", "name", "total"] == expected.column_names
    assert got.to_pylist() == expected.to_pylist()
    assert [r for part in parts if part is not None for r in part.to_pylist()] == got.to_pylist()
    masked = {"name": PiiPolicy(policy="mask")}
    assert scrub_arrow(duckdb.connect(), rows, masked) is None  # masks keep the SQL path
