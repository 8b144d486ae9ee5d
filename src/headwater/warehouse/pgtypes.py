"""DuckDB columns -> PostgreSQL columns, for the `postgres` warehouse target.

`pg_column` maps a type as DuckDB's DESCRIBE spells it to

- the PostgreSQL type, spelled as `format_type()` reports it, so that it
  compares equal with the column of a table created earlier, and
- the DuckDB type the value is cast to before DuckDB's postgres extension
  writes it with `COPY ... (FORMAT binary)`: the type the extension reads the
  PostgreSQL column as (TINYINT goes as SMALLINT, TIMESTAMP_NS as TIMESTAMP,
  ENUM and JSON as VARCHAR, lists as lists of those).

HUGEINT and UHUGEINT have no mapping: they would need `numeric(39,0)`, which
the extension reads (and so writes) as DOUBLE. They never reach the warehouse
from the lake anyway: DuckDB writes them to Parquet as DOUBLE.

`pg_columns` maps the columns of a table's lake files, `evolve` gives the
DDL that fits an existing table to them, and `widens` says whether an
existing column's type may be altered to a new one without losing any value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from headwater.errors import WarehouseError
from headwater.sql import quote_ident

MAX_IDENTIFIER = 63  # bytes; PostgreSQL truncates longer names

# DuckDB type -> (PostgreSQL type, DuckDB type the extension writes it from).
SCALARS: dict[str, tuple[str, str]] = {
    "BOOLEAN": ("boolean", "BOOLEAN"),
    "TINYINT": ("smallint", "SMALLINT"),
    "UTINYINT": ("smallint", "SMALLINT"),
    "SMALLINT": ("smallint", "SMALLINT"),
    "USMALLINT": ("integer", "INTEGER"),
    "INTEGER": ("integer", "INTEGER"),
    "UINTEGER": ("bigint", "BIGINT"),
    "BIGINT": ("bigint", "BIGINT"),
    "UBIGINT": ("numeric(20,0)", "DECIMAL(20,0)"),
    "FLOAT": ("real", "FLOAT"),
    "DOUBLE": ("double precision", "DOUBLE"),
    "VARCHAR": ("text", "VARCHAR"),
    "DATE": ("date", "DATE"),
    "TIME": ("time without time zone", "TIME"),
    "TIME WITH TIME ZONE": ("time with time zone", "TIME WITH TIME ZONE"),
    "TIMESTAMP": ("timestamp without time zone", "TIMESTAMP"),
    # Other precisions: cast to microseconds (PostgreSQL's precision).
    "TIMESTAMP_S": ("timestamp without time zone", "TIMESTAMP"),
    "TIMESTAMP_MS": ("timestamp without time zone", "TIMESTAMP"),
    "TIMESTAMP_NS": ("timestamp without time zone", "TIMESTAMP"),
    "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", "TIMESTAMP WITH TIME ZONE"),
    "BLOB": ("bytea", "BLOB"),
    "UUID": ("uuid", "UUID"),
    "INTERVAL": ("interval", "INTERVAL"),
    "JSON": ("jsonb", "VARCHAR"),
}

DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
LIST = re.compile(r"(.+?)\[(\d*)\]")

WIDENINGS = {
    ("smallint", "integer"),
    ("smallint", "bigint"),
    ("integer", "bigint"),
    ("real", "double precision"),
    ("date", "timestamp without time zone"),
}


@dataclass(frozen=True)
class PgColumn:
    name: str
    duck_type: str
    pg_type: str
    carrier: str  # DuckDB type the value is cast to before the extension writes it

    @property
    def select(self) -> str:
        """DuckDB expression of the value the extension writes, aliased to the column."""
        ident = quote_ident(self.name)
        return f"CAST({ident} AS {self.carrier}) AS {ident}"


def _scalar(duck_type: str) -> tuple[str, str] | None:
    """(PostgreSQL type, carrier) of a non-list DuckDB type, None if there is none."""
    if duck_type in SCALARS:
        return SCALARS[duck_type]
    if duck_type.startswith("ENUM("):
        return "text", "VARCHAR"
    if m := DECIMAL.fullmatch(duck_type):
        return f"numeric({m[1]},{m[2]})", f"DECIMAL({m[1]},{m[2]})"
    return None


def pg_column(name: str, duck_type: str) -> PgColumn | None:
    """The PostgreSQL column for a DuckDB column; None for STRUCT, MAP, HUGEINT and such."""
    if m := LIST.fullmatch(duck_type):
        element = m[1]
        scalar = _scalar(element)
        if scalar is None or LIST.fullmatch(element):
            return None
        pg_type, carrier = scalar
        return PgColumn(name, duck_type, f"{pg_type}[]", f"{carrier}[]")
    scalar = _scalar(duck_type)
    if scalar is None:
        return None
    return PgColumn(name, duck_type, *scalar)


def widens(old: str, new: str) -> bool:
    """Whether a column of PostgreSQL type `old` may become `new` without losing a value."""
    if old == new or (old, new) in WIDENINGS:
        return True
    if old.endswith("[]") and new.endswith("[]"):
        return widens(old[:-2], new[:-2])
    old_numeric, new_numeric = NUMERIC.fullmatch(old), NUMERIC.fullmatch(new)
    if old_numeric and new_numeric:
        op, os_ = int(old_numeric[1]), int(old_numeric[2])
        np_, ns = int(new_numeric[1]), int(new_numeric[2])
        return ns >= os_ and np_ - ns >= op - os_
    return False


def pg_columns(table: str, described: list[tuple[str, str]]) -> list[PgColumn]:
    """The columns to load from (name, DuckDB type) pairs: `_`-prefixed lineage left out."""
    columns: list[PgColumn] = []
    for name, duck_type in described:
        if name.startswith("_"):
            continue
        column = pg_column(name, duck_type)
        if column is None:
            raise WarehouseError(
                f"warehouse table {table!r}, column {name!r}: DuckDB type {duck_type} "
                "has no PostgreSQL equivalent here (STRUCT, MAP, UNION, HUGEINT and nested "
                "lists are not loaded); cast or drop the column in the model"
            )
        columns.append(column)
    for ident in (table, *(c.name for c in columns)):
        if len(ident.encode()) > MAX_IDENTIFIER:
            raise WarehouseError(
                f"warehouse table {table!r}: name {ident!r} is longer than PostgreSQL's "
                f"{MAX_IDENTIFIER} bytes"
            )
    return columns


def evolve(
    table: str, target: str, have: dict[str, str], columns: list[PgColumn]
) -> tuple[list[str], list[str]]:
    """(DDL fitting table `target`, whose columns have types `have`, to `columns`; names added).

    New columns are added, widened types altered; any other type change raises.
    """
    ddl: list[str] = []
    added: list[str] = []
    for c in columns:
        old = have.get(c.name)
        if old is None:
            ddl.append(f"ALTER TABLE {target} ADD COLUMN {quote_ident(c.name)} {c.pg_type}")
            added.append(c.name)
        elif old != c.pg_type:
            if not widens(old, c.pg_type):
                raise WarehouseError(
                    f"warehouse table {table!r}, column {c.name!r}: type changed from {old} "
                    f"to {c.pg_type}, which is not a widening; the load stopped (change the "
                    "model back, or alter the column in the warehouse)"
                )
            ddl.append(f"ALTER TABLE {target} ALTER COLUMN {quote_ident(c.name)} TYPE {c.pg_type}")
    return ddl, added
