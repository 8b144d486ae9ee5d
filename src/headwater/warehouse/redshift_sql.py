"""The Redshift target's SQL, as pure functions of a load plan (golden-tested).

Types: a model column's DuckDB type maps to one Redshift type (`redshift_type`);
the staged Parquet column is cast to the DuckDB twin of that type
(`staging_cast_type`), so the file holds exactly what the staging table
declares. A column that exists in the warehouse keeps its type: the model's
type must fit in it (`evolve`), else the load stops.

One load is one transaction (`load_statements`): BEGIN, the watermark table,
then per table: create or evolve the table, a temporary staging table,
`COPY ... FORMAT AS PARQUET` from the staged prefix, explicit deduplication on
the unique key (Redshift does not enforce keys), the mode's write, the
table's watermark row, and COMMIT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from headwater.errors import WarehouseError
from headwater.sql import literal, quote_ident
from headwater.warehouse.base import LoadMode

LOADS = "_headwater_loads"
VARCHAR_MAX = "VARCHAR(65535)"

# DuckDB type, as DESCRIBE prints it -> Redshift type.
SCALARS: dict[str, str] = {
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "SMALLINT",
    "UTINYINT": "SMALLINT",
    "SMALLINT": "SMALLINT",
    "USMALLINT": "INTEGER",
    "INTEGER": "INTEGER",
    "UINTEGER": "BIGINT",
    "BIGINT": "BIGINT",
    "UBIGINT": "DECIMAL(20,0)",
    "HUGEINT": "DECIMAL(38,0)",
    "FLOAT": "REAL",
    "DOUBLE": "DOUBLE PRECISION",
    "VARCHAR": VARCHAR_MAX,
    "UUID": "VARCHAR(36)",
    "DATE": "DATE",
    "TIME": "TIME",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP_S": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_NS": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
}

# Redshift catalog names (SVV_COLUMNS.data_type, or their short forms) -> DDL names.
CATALOG: dict[str, str] = {
    "smallint": "SMALLINT",
    "int2": "SMALLINT",
    "integer": "INTEGER",
    "int": "INTEGER",
    "int4": "INTEGER",
    "bigint": "BIGINT",
    "int8": "BIGINT",
    "real": "REAL",
    "float4": "REAL",
    "double precision": "DOUBLE PRECISION",
    "float8": "DOUBLE PRECISION",
    "float": "DOUBLE PRECISION",
    "boolean": "BOOLEAN",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMPTZ",
    "timestamptz": "TIMESTAMPTZ",
    "time without time zone": "TIME",
    "time": "TIME",
    "time with time zone": "TIMETZ",
    "timetz": "TIMETZ",
    "super": "SUPER",
}
STRINGS = {"character varying", "varchar", "nvarchar", "text"}
CHARS = {"character", "char", "bpchar", "nchar"}
NUMERICS = {"numeric", "decimal"}

INT_RANK = {"SMALLINT": 1, "INTEGER": 2, "BIGINT": 3}
HOLDS = {("REAL", "DOUBLE PRECISION"), ("DATE", "TIMESTAMP")}  # (model type, warehouse type)
DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Redshift type, as written in DDL


@dataclass(frozen=True)
class TableLoad:
    """Everything one table's part of the transaction depends on."""

    table: str
    mode: LoadMode
    unique_key: list[str]
    columns: list[Column]  # the model's columns, in the staged files' column order
    staged_url: str  # s3://bucket/prefix/run=<run>/<table>/
    max_batch: int
    snapshot_id: int
    existing: list[Column] | None = None  # the warehouse table's columns; None: no table


@dataclass(frozen=True)
class Evolution:
    added: list[Column] = field(default_factory=list)  # ALTER TABLE ... ADD COLUMN
    removed: list[str] = field(default_factory=list)  # warehouse columns the model lost
    casts: dict[str, str] = field(default_factory=dict)  # model column -> warehouse type


@dataclass(frozen=True)
class Statement:
    sql: str
    table: str | None = None  # the table it loads, named in errors
    result: Literal["rows_loaded", "rows_in_table"] | None = None  # a count to fetch


# ---------------------------------------------------------------------- types


def redshift_type(duckdb_type: str, table: str, column: str) -> str:
    """The Redshift column type for a model column's DuckDB type."""
    name = duckdb_type.strip().upper()
    if name in SCALARS:
        return SCALARS[name]
    decimal = DECIMAL.fullmatch(name)
    if decimal:
        return f"DECIMAL({decimal[1]},{decimal[2]})"
    if name.startswith("ENUM("):
        return VARCHAR_MAX
    if name.endswith("]") or name.startswith(("STRUCT", "MAP", "UNION")):
        raise WarehouseError(
            f"warehouse table {table!r}, column {column!r}: type {duckdb_type} is nested, which "
            "the redshift target does not load (no SUPER mapping); convert it in the model, "
            "for example to_json(column)::VARCHAR"
        )
    raise WarehouseError(
        f"warehouse table {table!r}, column {column!r}: type {duckdb_type} has no Redshift "
        "mapping; cast it in the model (for example to VARCHAR, BIGINT or DOUBLE)"
    )


def staging_cast_type(redshift: str) -> str:
    """The DuckDB type a staged Parquet column is written as, for a Redshift column type."""
    if redshift.startswith(("VARCHAR", "CHAR")):
        return "VARCHAR"
    return {"REAL": "FLOAT", "DOUBLE PRECISION": "DOUBLE"}.get(redshift, redshift)


def catalog_type(
    data_type: str, length: int | None, precision: int | None, scale: int | None
) -> str:
    """A type as Redshift's catalog reports it, written as this module writes DDL."""
    name = data_type.strip().lower()
    sized = re.fullmatch(r"(.*?)\s*\((\d+)(?:\s*,\s*(\d+))?\)", name)
    if sized:
        name, length = sized[1], int(sized[2])
        precision, scale = length, int(sized[3]) if sized[3] else 0
    if name in CATALOG:
        return CATALOG[name]
    if name in STRINGS:
        return f"VARCHAR({length or 256})"
    if name in CHARS:
        return f"CHAR({length or 1})"
    if name in NUMERICS:
        return f"DECIMAL({precision or 18},{scale or 0})"
    return name.upper()


def _is_string(t: str) -> bool:
    return t.startswith(("VARCHAR(", "CHAR("))


def _holds(warehouse: str, model: str) -> bool:
    """Whether a warehouse column of type `warehouse` holds every value of type `model`."""
    if warehouse == model or (_is_string(warehouse) and _is_string(model)):
        return True
    if warehouse in INT_RANK and model in INT_RANK:
        return INT_RANK[model] <= INT_RANK[warehouse]
    if (model, warehouse) in HOLDS:
        return True
    old, new = DECIMAL.fullmatch(warehouse), DECIMAL.fullmatch(model)
    if old and new:
        op, os_, np_, ns = int(old[1]), int(old[2]), int(new[1]), int(new[2])
        return os_ >= ns and op - os_ >= np_ - ns
    return False


def evolve(load: TableLoad) -> Evolution:
    """New columns to add, lost columns, and casts into wider warehouse types.

    Redshift folds unquoted and (by default) quoted identifiers to lower case,
    so names are compared case-insensitively. Redshift cannot change a
    column's type in place, so a model type the warehouse column cannot hold
    stops the load, naming table, column and both types.
    """
    if load.existing is None:
        return Evolution()
    have = {c.name.lower(): c for c in load.existing}
    model = {c.name.lower() for c in load.columns}
    added: list[Column] = []
    casts: dict[str, str] = {}
    for column in load.columns:
        old = have.get(column.name.lower())
        if old is None:
            added.append(column)
        elif not _holds(old.type, column.type):
            raise WarehouseError(
                f"warehouse table {load.table!r}, column {column.name!r}: type changed from "
                f"{old.type} to {column.type}, which the Redshift column cannot hold (Redshift "
                "cannot change a column's type in place); the load stopped (change the model "
                "back, or rebuild the column in Redshift)"
            )
        elif old.type != column.type and not _is_string(old.type):
            casts[column.name] = old.type
    removed = [c.name for c in load.existing if c.name.lower() not in model]
    return Evolution(added, removed, casts)


# ------------------------------------------------------------------ statements


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def _column_list(columns: list[Column]) -> str:
    return ",\n".join(f"  {quote_ident(c.name)} {c.type}" for c in columns)


def loads_table_sql(schema: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified(schema, LOADS)} (\n"
        '  "table_name" VARCHAR(127),\n'
        '  "max_batch" BIGINT,\n'
        '  "snapshot_id" BIGINT,\n'
        '  "run_id" BIGINT,\n'
        '  "loaded_at" TIMESTAMP\n'
        ")"
    )


def columns_sql(schema: str, tables: list[str]) -> str:
    """The warehouse columns of these tables, in column order (SVV_COLUMNS)."""
    names = ", ".join(literal(t.lower()) for t in tables)
    return (
        "SELECT table_name, column_name, data_type, character_maximum_length, "
        "numeric_precision, numeric_scale FROM svv_columns "
        f"WHERE table_schema = {literal(schema)} AND table_name IN ({names}) "
        "ORDER BY table_name, ordinal_position"
    )


def tables_sql(schema: str) -> str:
    return (
        f"SELECT table_name FROM svv_tables WHERE table_schema = {literal(schema)} "
        f"AND table_type = 'BASE TABLE' AND table_name <> {literal(LOADS)} ORDER BY 1"
    )


def loads_exist_sql(schema: str) -> str:
    return (
        f"SELECT COUNT(*) FROM svv_tables WHERE table_schema = {literal(schema)} "
        f"AND table_name = {literal(LOADS)}"
    )


def watermarks_sql(schema: str) -> str:
    return f'SELECT "table_name", "max_batch", "snapshot_id" FROM {qualified(schema, LOADS)}'


def _null_safe_equal(left: str, right: str) -> str:
    return f"({left} = {right} OR ({left} IS NULL AND {right} IS NULL))"


def table_statements(
    schema: str, iam_role: str, run_id: int, load: TableLoad, n: int
) -> list[Statement]:
    """One table's statements inside the load transaction (`n` numbers its temp tables)."""
    evolution = evolve(load)
    names = {c.name.lower() for c in load.columns}
    missing = [k for k in load.unique_key if k.lower() not in names]
    if missing:
        raise WarehouseError(
            f"warehouse table {load.table!r}: unique_key column {missing[0]!r} is not a column "
            "of the model's output"
        )
    if load.mode == "merge" and not load.unique_key:
        raise WarehouseError(f"warehouse table {load.table!r}: merge needs a unique_key")
    target = qualified(schema, load.table)
    # Hyphens never occur in model names, so these never shadow a warehouse table.
    stage = quote_ident(f"hw-stage-{n}")
    out: list[str | Statement] = []
    if load.existing is None:
        out.append(f"CREATE TABLE IF NOT EXISTS {target} (\n{_column_list(load.columns)}\n)")
    out += [
        f"ALTER TABLE {target} ADD COLUMN {quote_ident(c.name)} {c.type}" for c in evolution.added
    ]
    out.append(f"CREATE TEMP TABLE {stage} (\n{_column_list(load.columns)}\n)")
    out.append(
        f"COPY {stage}\nFROM {literal(load.staged_url)}\n"
        f"IAM_ROLE {literal(iam_role)}\nFORMAT AS PARQUET"
    )
    cols = [quote_ident(c.name) for c in load.columns]
    source = stage
    temps = [stage]
    if load.unique_key:
        dedup = quote_ident(f"hw-dedup-{n}")
        keys = [quote_ident(k) for k in load.unique_key]
        key_set = {k.lower() for k in load.unique_key}
        order = [quote_ident(c.name) for c in load.columns if c.name.lower() not in key_set]
        out.append(
            f"CREATE TEMP TABLE {dedup} AS\n"
            f"SELECT {', '.join(cols)}\n"
            f"FROM (\n  SELECT {', '.join(cols)},\n"
            f"    ROW_NUMBER() OVER (PARTITION BY {', '.join(keys)} "
            f'ORDER BY {", ".join(order or keys)}) AS "hw_row"\n'
            f'  FROM {stage}\n) AS "ranked"\nWHERE "hw_row" = 1'
        )
        source, temps = dedup, [dedup, stage]
    out.append(Statement(f"SELECT COUNT(*) FROM {source}", load.table, "rows_loaded"))

    def value(column: Column) -> str:
        ref = f"{source}.{quote_ident(column.name)}"
        cast = evolution.casts.get(column.name)
        return f"CAST({ref} AS {cast})" if cast else ref

    insert_select = (
        f"INSERT INTO {target} ({', '.join(cols)})\n"
        f"SELECT {', '.join(value(c) for c in load.columns)}\nFROM {source}"
    )
    if load.mode == "replace":
        # TRUNCATE commits the transaction in Redshift: DELETE keeps the load atomic.
        out += [f"DELETE FROM {target}", insert_select]
    elif load.mode == "append":
        out.append(insert_select)
    else:
        key_set = {k.lower() for k in load.unique_key}
        on = "\n  AND ".join(
            _null_safe_equal(f"{target}.{quote_ident(k)}", f"{source}.{quote_ident(k)}")
            for k in load.unique_key
        )
        updated = [c for c in load.columns if c.name.lower() not in key_set] or [
            c for c in load.columns if c.name.lower() in key_set
        ]
        sets = [f"{quote_ident(c.name)} = {value(c)}" for c in updated]
        sets += [f"{quote_ident(name)} = NULL" for name in evolution.removed]
        out.append(
            f"MERGE INTO {target}\nUSING {source}\nON {on}\n"
            f"WHEN MATCHED THEN UPDATE SET {', '.join(sets)}\n"
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)})\n"
            f"VALUES ({', '.join(value(c) for c in load.columns)})"
        )
    out.append(Statement(f"SELECT COUNT(*) FROM {target}", load.table, "rows_in_table"))
    out += [f"DROP TABLE {t}" for t in temps]
    loads = qualified(schema, LOADS)
    out.append(f'DELETE FROM {loads} WHERE "table_name" = {literal(load.table)}')
    out.append(
        f'INSERT INTO {loads} ("table_name", "max_batch", "snapshot_id", "run_id", "loaded_at")\n'
        f"VALUES ({literal(load.table)}, {load.max_batch}, {load.snapshot_id}, {run_id}, "
        "GETDATE())"
    )
    return [s if isinstance(s, Statement) else Statement(s, load.table) for s in out]


def load_statements(
    schema: str, iam_role: str, run_id: int, loads: list[TableLoad]
) -> list[Statement]:
    """Every statement of one load, BEGIN to COMMIT, in order."""
    out = [Statement("BEGIN"), Statement(loads_table_sql(schema))]
    for n, load in enumerate(loads, start=1):
        out += table_statements(schema, iam_role, run_id, load, n)
    out.append(Statement("COMMIT"))
    return out
