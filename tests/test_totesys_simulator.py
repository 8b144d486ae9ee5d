"""The totesys source simulator against real servers: PostgreSQL 15 and MariaDB 10.11.

Schema per spec §1 (information_schema), fixture loading and the 2024-11-20 update
batch, determinism, the §3 invariants checked in SQL over generated data, live mode,
the change batch, and MariaDB giving the same rows as PostgreSQL for the same seed.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from headwater.errors import ConfigError
from headwater.templates.totesys import simulator
from headwater.templates.totesys.simulator import apply_change_batch, live_step, simulate
from headwater.templates.totesys.source_db import (
    TABLES,
    SourceDbError,
    create_schema,
    load_fixture_folder,
    redact,
)
from tests.conftest import shared_data
from tests.fixtures.totesys import MARIADB

Row = tuple[Any, ...]

# ----------------------------------------------------------------------------- helpers


def query(url: str, sql: str, params: Any = None) -> list[Row]:
    """Rows of one query, on a connection opened and closed here."""
    if url.startswith("mysql"):
        database = url.rsplit("/", 1)[1]
        conn = pymysql.connect(**MARIADB, database=database, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        cur = conn.execute(sql, params)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


def scalar(url: str, sql: str, params: Any = None) -> Any:
    return query(url, sql, params)[0][0]


def snapshot(url: str) -> dict[str, list[Row]]:
    """Every table's rows in id order, as Python values (MariaDB's 0/1 `paid` as bool)."""
    quote = "`" if url.startswith("mysql") else '"'
    out = {}
    for table, columns in TABLES.items():
        names = ", ".join(f"{quote}{c.name}{quote}" for c in columns)
        rows = query(url, f"SELECT {names} FROM {quote}{table}{quote} ORDER BY 1")
        kinds = [c.kind for c in columns]
        out[table] = [
            tuple(bool(v) if k == "bool" else v for k, v in zip(kinds, r, strict=True))
            for r in rows
        ]
    return out


def changed_keys(before: dict[str, list[Row]], after: dict[str, list[Row]]) -> set[tuple[str, int]]:
    return {(t, r[0]) for t in after for r in set(after[t]) ^ set(before[t])}


def fixture_rows(folder: Path) -> dict[str, list[Row]]:
    """The JSON Lines of a fixture folder as the Python values the database returns."""
    out = {}
    for path in folder.glob("*.jsonl"):
        columns = TABLES[path.stem]
        rows = []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            values = []
            for c in columns:
                v = record[c.name]
                if v is not None and c.kind in ("ts", "created"):
                    v = datetime.datetime.fromisoformat(v)
                elif v is not None and c.kind == "money":
                    v = Decimal(v)
                values.append(v)
            rows.append(tuple(values))
        out[path.stem] = sorted(rows)
    return out


DATA = shared_data() / "totesys"
SAMPLE = DATA / "sample_2024-11-15_orders_before_2023-03-01"
BATCH = DATA / "update_batch_2024-11-20"
SAMPLE_COUNTS = {
    "address": 30, "counterparty": 20, "currency": 3, "department": 8, "design": 473,
    "payment_type": 4, "staff": 20, "sales_order": 1053, "purchase_order": 591,
    "transaction": 1644, "payment": 1644,
}  # fmt: skip

# ----------------------------------------------------------------------------- schema

# Spec §1, written out independently of the module: `column:type`, `?` = nullable.
SPEC = {
    "address": "address_id:int address_line_1:text address_line_2:text? district:text? "
    "city:text postal_code:text country:text phone:text created_at:ts last_updated:ts",
    "counterparty": "counterparty_id:int counterparty_legal_name:text legal_address_id:int "
    "commercial_contact:text? delivery_contact:text? created_at:ts last_updated:ts",
    "currency": "currency_id:int currency_code:vc3 created_at:ts last_updated:ts",
    "department": "department_id:int department_name:text location:text? manager:text? "
    "created_at:ts last_updated:ts",
    "design": "design_id:int created_at:ts design_name:text file_location:text file_name:text "
    "last_updated:ts",
    "staff": "staff_id:int first_name:text last_name:text department_id:int email_address:text "
    "created_at:ts last_updated:ts",
    "sales_order": "sales_order_id:int created_at:ts last_updated:ts design_id:int staff_id:int "
    "counterparty_id:int units_sold:int unit_price:num currency_id:int "
    "agreed_delivery_date:text agreed_payment_date:text agreed_delivery_location_id:int",
    "purchase_order": "purchase_order_id:int created_at:ts last_updated:ts staff_id:int "
    "counterparty_id:int item_code:text item_quantity:int item_unit_price:num currency_id:int "
    "agreed_delivery_date:text agreed_payment_date:text agreed_delivery_location_id:int",
    "payment_type": "payment_type_id:int payment_type_name:PaymentTypeName created_at:ts "
    "last_updated:ts",
    "transaction": "transaction_id:int transaction_type:TransactionType sales_order_id:int? "
    "purchase_order_id:int? created_at:ts last_updated:ts",
    "payment": "payment_id:int created_at:ts last_updated:ts transaction_id:int "
    "counterparty_id:int payment_amount:num currency_id:int payment_type_id:int paid:bool "
    "payment_date:text company_ac_number:int counterparty_ac_number:int",
}
ENUM_LABELS = {
    "PaymentTypeName": ["SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"],
    "TransactionType": ["SALE", "PURCHASE"],
}
FKS = {
    ("counterparty", "legal_address_id", "address"), ("staff", "department_id", "department"),
    ("sales_order", "design_id", "design"), ("sales_order", "staff_id", "staff"),
    ("sales_order", "counterparty_id", "counterparty"), ("sales_order", "currency_id", "currency"),
    ("sales_order", "agreed_delivery_location_id", "address"),
    ("purchase_order", "staff_id", "staff"), ("purchase_order", "counterparty_id", "counterparty"),
    ("purchase_order", "currency_id", "currency"),
    ("purchase_order", "agreed_delivery_location_id", "address"),
    ("transaction", "sales_order_id", "sales_order"),
    ("transaction", "purchase_order_id", "purchase_order"),
    ("payment", "transaction_id", "transaction"), ("payment", "counterparty_id", "counterparty"),
    ("payment", "currency_id", "currency"), ("payment", "payment_type_id", "payment_type"),
}  # fmt: skip
UNIQUE = {("transaction", "sales_order_id"), ("transaction", "purchase_order_id")}
UNIQUE |= {("payment", "transaction_id")}


def spec_columns(table: str) -> list[tuple[str, str, bool]]:
    out = []
    for word in SPEC[table].split():
        name, kind = word.split(":")
        out.append((name, kind.rstrip("?"), kind.endswith("?")))
    return out


def expected_fks() -> set[Row]:
    return {
        (t, c, ref, f"{ref}_id", "CASCADE", "SET NULL" if t == "transaction" else "RESTRICT")
        for t, c, ref in FKS
    }


PG_TYPES = {
    "int": ("integer", "int4", None, None, None, None),
    "text": ("text", "text", None, None, None, None),
    "ts": ("timestamp without time zone", "timestamp", None, None, 3, None),
    "num": ("numeric", "numeric", 10, 2, None, None),
    "bool": ("boolean", "bool", None, None, None, None),
    "vc3": ("character varying", "varchar", None, None, None, 3),
}


def test_postgres_schema_is_exactly_spec_section_1(pg_database: str) -> None:
    create_schema(pg_database)
    create_schema(pg_database)  # a complete schema is left alone
    url = pg_database
    tables = {r[0] for r in query(url, "SELECT table_name FROM information_schema.tables "
                                       "WHERE table_schema = 'public'")}  # fmt: skip
    assert tables == {*SPEC, "_prisma_migrations"}
    rows = query(
        url,
        "SELECT table_name, column_name, data_type, udt_name, is_nullable, numeric_precision, "
        "numeric_scale, datetime_precision, character_maximum_length, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' "
        "ORDER BY table_name, ordinal_position",
    )
    for table in SPEC:
        actual = [r[1:] for r in rows if r[0] == table]
        expected = []
        for i, (name, kind, nullable) in enumerate(spec_columns(table)):
            types = PG_TYPES.get(kind, ("USER-DEFINED", kind, None, None, None, None))
            numeric = types[2:4] if kind == "num" else (32, 0) if kind == "int" else (None, None)
            default = None
            if i == 0:
                default = f"nextval('{table}_{name}_seq'::regclass)"
            elif name == "created_at":
                default = "CURRENT_TIMESTAMP"
            nulls = "YES" if nullable else "NO"
            expected.append((name, *types[:2], nulls, *numeric, types[4], types[5], default))
        assert actual == expected, table
    sequences = query(url, "SELECT sequence_name FROM information_schema.sequences")
    assert {r[0] for r in sequences} == {f"{t}_{t}_id_seq" for t in SPEC}
    enums = query(
        url,
        "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t "
        "JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY 1",
    )
    assert dict(enums) == ENUM_LABELS
    unique = query(
        url,
        "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE i.indisunique AND NOT i.indisprimary AND n.nspname = 'public'",
    )
    assert set(unique) == UNIQUE
    fks = query(
        url,
        "SELECT k.table_name, k.column_name, u.table_name, u.column_name, r.update_rule, "
        "r.delete_rule FROM information_schema.referential_constraints r "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
        "JOIN information_schema.constraint_column_usage u "
        "USING (constraint_schema, constraint_name) WHERE r.constraint_schema = 'public'",
    )
    assert set(fks) == expected_fks()
    prisma = query(
        url,
        "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_name = '_prisma_migrations' "
        "ORDER BY ordinal_position",
    )
    tz = "timestamp with time zone"
    assert prisma == [
        ("id", "character varying", 36, "NO", None),
        ("checksum", "character varying", 64, "NO", None),
        ("finished_at", tz, None, "YES", None),
        ("migration_name", "character varying", 255, "NO", None),
        ("logs", "text", None, "YES", None),
        ("rolled_back_at", tz, None, "YES", None),
        ("started_at", tz, None, "NO", "now()"),
        ("applied_steps_count", "integer", None, "NO", "0"),
    ]
    assert 1 <= scalar(url, "SELECT count(*) FROM _prisma_migrations") <= 2
    create_schema(url, drop=True)
    assert scalar(url, "SELECT count(*) FROM information_schema.tables "
                       "WHERE table_schema = 'public'") == 12  # fmt: skip


MARIADB_TYPES = {"int": "int(11)", "text": "text", "ts": "datetime(3)", "num": "decimal(10,2)"}
MARIADB_TYPES |= {"bool": "tinyint(1)", "vc3": "varchar(3)"}
MARIADB_TYPES |= {
    n: "enum(" + ",".join(f"'{v}'" for v in vs) + ")" for n, vs in ENUM_LABELS.items()
}


def test_mariadb_schema_is_the_closest_equivalent(mariadb_database: str) -> None:
    url = mariadb_database
    create_schema(url)
    create_schema(url)
    tables = query(url, "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = DATABASE()")  # fmt: skip
    assert {r[0] for r in tables} == {*SPEC, "_prisma_migrations"}
    rows = query(
        url,
        "SELECT table_name, column_name, column_type, is_nullable, extra, column_default "
        "FROM information_schema.columns WHERE table_schema = DATABASE() "
        "ORDER BY table_name, ordinal_position",
    )
    for table in SPEC:
        actual = [r[1:5] for r in rows if r[0] == table]
        expected = [
            (n, MARIADB_TYPES[k], "YES" if null else "NO", "auto_increment" if i == 0 else "")
            for i, (n, k, null) in enumerate(spec_columns(table))
        ]
        assert actual == expected, table
        defaults = {r[1]: r[5] for r in rows if r[0] == table}
        assert defaults["created_at"].lower() == "current_timestamp(3)"
        assert defaults["last_updated"] is None
    fks = query(
        url,
        "SELECT k.table_name, k.column_name, k.referenced_table_name, k.referenced_column_name, "
        "r.update_rule, r.delete_rule FROM information_schema.key_column_usage k "
        "JOIN information_schema.referential_constraints r "
        "ON r.constraint_schema = k.constraint_schema AND r.constraint_name = k.constraint_name "
        "WHERE k.table_schema = DATABASE() AND k.referenced_table_name IS NOT NULL",
    )
    assert set(fks) == expected_fks()
    unique = query(
        url,
        "SELECT table_name, column_name FROM information_schema.statistics "
        "WHERE table_schema = DATABASE() AND non_unique = 0 AND index_name <> 'PRIMARY'",
    )
    assert set(unique) == UNIQUE
    assert 1 <= scalar(url, "SELECT count(*) FROM _prisma_migrations") <= 2


# ----------------------------------------------------------------------------- fixtures


def test_fixture_folders_load_exactly_and_the_update_batch_changes_its_rows(
    pg_database: str, mariadb_database: str
) -> None:
    sample, batch = fixture_rows(SAMPLE), fixture_rows(BATCH)
    for url in (pg_database, mariadb_database):
        create_schema(url)
        assert load_fixture_folder(url, SAMPLE) == SAMPLE_COUNTS
    before = snapshot(pg_database)
    assert {t: len(rows) for t, rows in before.items()} == SAMPLE_COUNTS
    assert before == sample  # ids, timestamps, exact decimals, text dates, NULLs
    assert snapshot(mariadb_database) == before
    # sequences are past the largest id: the next generated id follows it
    for url, q in ((pg_database, '"'), (mariadb_database, "`")):
        query(url, f"INSERT INTO {q}currency{q} (currency_code, last_updated) "
                   "VALUES ('JPY', '2024-01-01 00:00:00')")  # fmt: skip
        assert scalar(url, "SELECT max(currency_id) FROM currency") == 4
        query(url, "DELETE FROM currency WHERE currency_id = 4")

    for url in (pg_database, mariadb_database):
        counts = load_fixture_folder(url, BATCH)
        assert counts == {"address": 2, "department": 1, "counterparty": 3, "staff": 2}
    after = snapshot(pg_database)
    listed = {(t, r[0]) for t, rows in batch.items() for r in rows}
    assert len(listed) == 8
    assert changed_keys(before, after) == listed
    for table, rows in batch.items():
        assert [r for r in after[table] if (table, r[0]) in listed] == rows
    assert snapshot(mariadb_database) == after

    # the simulator continues on loaded data: reference rows kept, ids after the largest
    counts = simulate(pg_database, seed=1, start=datetime.date(2024, 11, 25), days=2)
    assert counts["address"] == 0 and counts["sales_order"] > 0
    latest = snapshot(pg_database)
    assert latest["address"] == after["address"]
    for table in ("sales_order", "purchase_order", "transaction", "payment"):
        new = [r[0] for r in latest[table] if r not in after[table]]
        assert len(new) == counts[table] and min(new) > max(r[0] for r in after[table])


# ----------------------------------------------------------------------------- simulator

START = datetime.date(2024, 1, 1)  # a Monday
DAYS = 84
END = datetime.datetime.combine(START + datetime.timedelta(days=DAYS), datetime.time())

CHAIN = """
SELECT count(*) FROM {order} o
LEFT JOIN transaction t ON t.{order}_id = o.{order}_id
LEFT JOIN payment p ON p.transaction_id = t.transaction_id
WHERE t.transaction_id IS NULL OR p.payment_id IS NULL OR t.transaction_type <> '{kind}'
   OR t.created_at <> o.created_at OR p.created_at <> o.created_at
   OR t.last_updated <> t.created_at OR o.last_updated <> o.created_at
   OR p.counterparty_id <> o.counterparty_id OR p.currency_id <> o.currency_id
   OR p.payment_date <> o.agreed_payment_date OR p.payment_type_id <> {type_id}
   OR p.payment_amount <> o.{quantity} * o.{price}
   OR o.created_at < %(start)s OR o.created_at >= %(end)s
   OR extract(isodow FROM o.created_at) > 5 OR extract(hour FROM o.created_at) NOT BETWEEN 8 AND 18
   OR o.agreed_delivery_date !~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}$'
   OR o.agreed_payment_date !~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}$'
   OR o.agreed_delivery_date::date - o.created_at::date NOT BETWEEN 0 AND 7
   OR o.agreed_payment_date::date - o.created_at::date NOT BETWEEN 0 AND 6
"""
VIOLATIONS = {
    "sales chain": CHAIN.format(
        order="sales_order", kind="SALE", type_id=1, quantity="units_sold", price="unit_price"
    ),
    "purchase chain": CHAIN.format(
        order="purchase_order",
        kind="PURCHASE",
        type_id=3,
        quantity="item_quantity",
        price="item_unit_price",
    ),
    "exactly one order per transaction": """SELECT count(*) FROM transaction
        WHERE (sales_order_id IS NULL) = (purchase_order_id IS NULL)
           OR (transaction_type = 'SALE') <> (sales_order_id IS NOT NULL)""",
    "transactions without payment": """SELECT count(*) FROM transaction t
        WHERE NOT EXISTS (SELECT 1 FROM payment p WHERE p.transaction_id = t.transaction_id)""",
    "paid <=> last_updated <> created_at, 0.5-6 days later, not after now": """
        SELECT count(*) FROM payment WHERE paid <> (last_updated <> created_at)
        OR (paid AND (last_updated - created_at NOT BETWEEN interval '12 hours'
                      AND interval '6 days' OR last_updated > %(end)s))""",
    "sales ranges": """SELECT count(*) FROM sales_order
        WHERE units_sold NOT BETWEEN 1000 AND 100000 OR unit_price NOT BETWEEN 2 AND 4""",
    "purchase ranges and item codes": """SELECT count(*) FROM purchase_order
        WHERE item_quantity NOT BETWEEN 1 AND 1000 OR item_unit_price NOT BETWEEN 3 AND 1000
           OR item_code !~ '^[A-Z0-9]{7}$'""",
    "duplicate item codes": "SELECT count(*) - count(DISTINCT item_code) FROM purchase_order",
    "payment ranges": """SELECT count(*) FROM payment
        WHERE payment_amount NOT BETWEEN 1 AND 1000000 OR payment_type_id NOT IN (1, 3)
           OR company_ac_number NOT BETWEEN 10000000 AND 99999999
           OR counterparty_ac_number NOT BETWEEN 10000000 AND 99999999""",
    "staff emails and department 1": """SELECT count(*) FROM staff WHERE department_id = 1
        OR email_address <> lower(first_name) || '.' || lower(last_name) || '@terrifictotes.com'""",
    "address formats": """SELECT count(*) FROM address
        WHERE postal_code !~ '^\\d{5}(-\\d{4})?$' OR phone !~ '^\\d{4} \\d{6}$'""",
    "design file names": """SELECT count(*) FROM design
        WHERE file_name !~ ('^' || lower(design_name) || '-\\d{8}-[a-z0-9]{4}\\.json$')
           OR substr(file_name, length(design_name) + 2, 8) NOT BETWEEN '20201124' AND '20241026'""",
    "timestamps not naive milliseconds": """SELECT count(*) FROM payment
        WHERE date_trunc('milliseconds', last_updated) <> last_updated""",
}


def violations(url: str, start: datetime.date, end: datetime.datetime) -> dict[str, int]:
    params = {"start": start, "end": end}
    found = {name: scalar(url, sql, params) for name, sql in VIOLATIONS.items()}
    return {name: n for name, n in found.items() if n}


def test_simulation_keeps_every_invariant(pg_database: str) -> None:
    url = pg_database
    create_schema(url)
    counts = simulate(url, seed=3, start=START, days=DAYS)
    assert violations(url, START, END) == {}
    sizes = {t: len(r) for t, r in snapshot(url).items()}
    assert sizes == counts
    reference = {"address": 30, "counterparty": 20, "currency": 3, "department": 8}
    reference |= {"design": 473, "payment_type": 4, "staff": 20}
    assert {t: sizes[t] for t in reference} == reference
    assert (
        sizes["transaction"] == sizes["payment"] == sizes["sales_order"] + sizes["purchase_order"]
    )
    weekdays = DAYS * 5 // 7
    assert 20 <= sizes["sales_order"] / weekdays <= 24
    assert 7.5 <= sizes["purchase_order"] / weekdays <= 10.5
    days_with_orders = scalar(url, "SELECT count(DISTINCT created_at::date) FROM sales_order")
    assert days_with_orders == weekdays

    currencies = query(url, "SELECT currency_id, currency_code FROM currency ORDER BY 1")
    assert currencies == [(1, "GBP"), (2, "USD"), (3, "EUR")]
    types = query(url, "SELECT payment_type_name::text FROM payment_type ORDER BY payment_type_id")
    assert types == [(v,) for v in ENUM_LABELS["PaymentTypeName"]]
    departments = query(
        url, "SELECT department_name, location FROM department ORDER BY department_id"
    )
    assert [d[0] for d in departments] == [
        "Sales", "Purchasing", "Production", "Dispatch", "Finance", "Facilities",
        "Communications", "HR",
    ]  # fmt: skip
    assert ("Dispatch", "Leds") in departments
    assert {d[1] for d in departments} == {"Manchester", "Leeds", "Leds"}
    address = query(
        url,
        "SELECT count(*) FILTER (WHERE address_line_2 IS NULL), "
        "count(*) FILTER (WHERE district IS NULL), count(DISTINCT country), "
        "count(*) FILTER (WHERE postal_code LIKE '0%%'), count(*) FILTER (WHERE phone LIKE '0%%') "
        "FROM address",
    )[0]
    assert address[:3] == (20, 14, 29)
    assert address[3] >= 1 and address[4] >= 1
    assert scalar(url, "SELECT count(*) FROM counterparty WHERE legal_address_id = 17") == 4
    parties = query(url, "SELECT counterparty_legal_name, delivery_contact FROM counterparty")
    assert any(", " in name for name, _ in parties) and any(" - " in n for n, _ in parties)
    assert any("'" in (contact or "") for _, contact in parties)
    assert scalar(url, "SELECT count(DISTINCT design_name) FROM design") == 12
    assert scalar(url, "SELECT count(DISTINCT file_location) FROM design") <= 60
    ids = [r[0] for r in query(url, "SELECT design_id FROM design LIMIT 20")]
    assert ids != sorted(ids)  # designs are not stored in id order
    assert scalar(url, "SELECT count(DISTINCT staff_id) FROM sales_order") == 20

    paid_share = scalar(
        url,
        "SELECT avg(paid::int) FROM payment WHERE created_at < %s",
        [END - datetime.timedelta(days=6)],
    )
    assert 0.5 <= paid_share <= 0.7
    same_id = scalar(url, "SELECT avg((payment_id = transaction_id)::int) FROM payment")
    assert 0.98 <= same_id <= 1


def test_simulation_is_deterministic_and_seed_dependent(
    pg_database: str, other_pg_database: str
) -> None:
    for url in (pg_database, other_pg_database):
        create_schema(url)
        simulate(url, seed=11, start=START, days=21, scale=0.5)
    first = snapshot(pg_database)
    assert first == snapshot(other_pg_database)
    create_schema(other_pg_database, drop=True)
    simulate(other_pg_database, seed=12, start=START, days=21, scale=0.5)
    other = snapshot(other_pg_database)
    assert other["sales_order"] != first["sales_order"]
    assert other["address"] != first["address"]


def test_scale_multiplies_the_orders(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    create_schema(pg_database)
    keys = "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f'"
    before = set(query(pg_database, keys))
    monkeypatch.setattr(simulator, "BULK_ORDERS", 0)  # the bulk path: keys set aside, re-added
    counts = simulate(pg_database, seed=1, start=START, days=7, scale=20)
    assert set(query(pg_database, keys)) == before and len(before) == 17
    assert 20 * 22 * 5 * 0.9 <= counts["sales_order"] <= 20 * 22 * 5 * 1.1
    assert 20 * 9 * 5 * 0.9 <= counts["purchase_order"] <= 20 * 9 * 5 * 1.1
    assert violations(pg_database, START, datetime.datetime(2024, 1, 8)) == {}


def test_live_step_adds_orders_and_flips_payments(pg_database: str) -> None:
    url = pg_database
    create_schema(url)
    simulate(url, seed=5, start=START, days=14)
    before = snapshot(url)
    now = datetime.datetime(2024, 1, 15, 9, 30, 0, 123456)  # a Monday morning
    at = now.replace(microsecond=123000)
    counts = live_step(url, now=now, rng_seed=9)
    assert 1 <= counts["sales_order"] <= 3 and 0 <= counts["purchase_order"] <= 1
    orders = counts["sales_order"] + counts["purchase_order"]
    assert counts["transaction"] == counts["payment"] == orders
    assert counts["paid"] > 0
    after = snapshot(url)
    new = {t: [r for r in after[t] if r not in before[t]] for t in after}
    assert len(new["sales_order"]) == counts["sales_order"]
    assert all(r[1] == r[2] == at for r in new["sales_order"] + new["purchase_order"])
    new_payments = [r for r in new["payment"] if r[1] == at]
    assert len(new_payments) == orders and not any(r[8] for r in new_payments)
    flipped = [r for r in new["payment"] if r[1] != at]
    assert len(flipped) == counts["paid"]
    for row in flipped:
        assert row[8] is True and row[2] == at
        assert datetime.timedelta(hours=12) <= at - row[1] <= datetime.timedelta(days=6)
    assert changed_keys(before, after) == {(t, r[0]) for t, rows in new.items() for r in rows}
    assert violations(url, START, at + datetime.timedelta(milliseconds=1)) == {}


def test_change_batch_touches_addresses_counterparties_and_one_staff(pg_database: str) -> None:
    url = pg_database
    create_schema(url)
    simulate(url, seed=5, start=START, days=5)
    before = snapshot(url)
    at = datetime.datetime(2024, 11, 20, 16, 25, 45, 36000)
    assert apply_change_batch(url, at=at) == {"address": 2, "counterparty": 4, "staff": 1}
    after = snapshot(url)
    changed = changed_keys(before, after)
    users = {("counterparty", r[0]) for r in after["counterparty"] if r[2] == 17}
    assert len(users) == 4
    assert {k for k in changed if k[0] == "counterparty"} == users
    assert {k[0] for k in changed} == {"address", "counterparty", "staff"}
    old = {(t, r[0]): r for t, rows in before.items() for r in rows}
    for table, key in changed:
        row = next(r for r in after[table] if r[0] == key)
        assert row[-1] == at  # last_updated
        diff = {i for i, (a, b) in enumerate(zip(old[table, key], row, strict=True)) if a != b}
        names = {TABLES[table][i].name for i in diff}
        if table == "address" and key == 17:
            assert names == {"address_line_1", "city", "postal_code", "last_updated"}
        elif table == "address":
            assert names == {"phone", "last_updated"}
        elif table == "counterparty":
            assert names == {"last_updated"}
        else:
            assert names == {"department_id", "last_updated"} and row[3] != 1
    assert violations(url, START, END) == {}


# ----------------------------------------------------------------------------- MariaDB


def test_mariadb_gets_the_same_rows_as_postgres(pg_database: str, mariadb_database: str) -> None:
    counts = []
    for url in (pg_database, mariadb_database):
        create_schema(url)
        counts.append(simulate(url, seed=7, start=datetime.date(2024, 3, 4), days=12))
    assert counts[0] == counts[1]
    assert snapshot(mariadb_database) == snapshot(pg_database)
    now = datetime.datetime(2024, 3, 16, 11, 0, 0, 250999)
    steps = [live_step(url, now=now, rng_seed=2) for url in (pg_database, mariadb_database)]
    assert steps[0] == steps[1] and steps[0]["paid"] > 0
    at = datetime.datetime(2024, 3, 17, 8, 0, 0, 5000)
    batches = [apply_change_batch(url, at=at) for url in (pg_database, mariadb_database)]
    assert batches[0] == batches[1] == {"address": 2, "counterparty": 4, "staff": 1}
    assert snapshot(mariadb_database) == snapshot(pg_database)


# ----------------------------------------------------------------------------- URLs


def test_urls_are_redacted_and_checked(mariadb_database: str) -> None:
    assert redact("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert "s3cret" not in redact("postgresql://u@h/db?password=s3cret&sslmode=require")
    url = mariadb_database.replace("root@", "root:s3cret-pw@")
    with pytest.raises(SourceDbError) as failure:
        create_schema(url)
    assert "s3cret-pw" not in str(failure.value) and "***" in str(failure.value)
    with pytest.raises(ConfigError):
        create_schema("sqlite:///x.db")
