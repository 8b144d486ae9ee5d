"""The `sql` source's catalog: the tables of a schema, their columns in order, primary keys.

Two readers give the same `Catalog`:
- PostgreSQL: one query over `pg_catalog` on a plain psycopg connection
  (a few milliseconds; SQLAlchemy's inspector needs about 20 ms and several
  round trips for the same answer, a cost every incremental run pays);
- every other database: SQLAlchemy's inspector, one code path for all dialects.

Both list every table of the schema. The pg_catalog query describes them all at
once; the inspector describes only those `describe` picks from the names (a
query per table it is asked about), since the source extracts a few of many.
Driver errors pass through untranslated: the source names them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa

# Cursor types whose bound PostgreSQL compares exactly as DuckDB would: a number, a
# timestamp without zone or a date against a timestamp, text against text.
DIRECT_CURSOR_TYPES = ("SMALLINT", "INTEGER", "BIGINT", "DATE", "TEXT", "CHARACTER")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the database's type name in upper case ("TIMESTAMP(3) WITHOUT TIME ZONE")
    # DuckDB reads it the same from a query's result as through the scanner's catalog:
    # base types, enums (text either way) and arrays of base types; not domains, composite
    # or range types, nor arrays of enums (a list through the catalog, PostgreSQL's array
    # text through a query). Known for PostgreSQL only.
    plain: bool = False


@dataclass(frozen=True)
class Catalog:
    tables: list[str]  # every table of the schema, sorted
    columns: dict[str, list[Column]]  # per table, in the table's order
    keys: dict[str, list[str]]  # per table, the primary key's columns in key order


def direct_cursor(type_name: str) -> bool:
    """Whether a PostgreSQL cursor column of this type can be filtered in a plain query."""
    kind = type_name.upper()
    if kind.startswith("TIMESTAMP"):
        return kind.endswith("WITHOUT TIME ZONE")
    return kind.startswith(DIRECT_CURSOR_TYPES)


POSTGRES_CATALOG = """
SELECT c.relname, a.attname, upper(format_type(a.atttypid, a.atttypmod)),
       t.typtype = 'e' OR (t.typtype = 'b' AND (t.typcategory <> 'A' OR e.typtype = 'b')),
       array_position(i.indkey::int2[], a.attnum)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a
  ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = coalesce(%s, current_schema()) AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""


def read_postgres(
    conninfo: str, schema: str | None, connected: Callable[[], None] = lambda: None
) -> Catalog:
    """The schema's catalog (the connection's current schema if None) in one query.

    `connected` is called once the connection is open, before the query."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        connected()
        rows = conn.execute(POSTGRES_CATALOG, (schema,)).fetchall()
    tables: list[str] = []
    columns: dict[str, list[Column]] = {}
    positions: dict[str, list[tuple[int, str]]] = {}
    for table, column, type_name, plain, position in rows:  # one row per column, not data
        if table not in columns:
            tables.append(table)
            columns[table] = []
            positions[table] = []
        if column is None:  # a table without columns
            continue
        columns[table].append(Column(column, type_name, bool(plain)))
        if position is not None:
            positions[table].append((position, column))
    keys = {t: [c for _, c in sorted(p)] for t, p in positions.items()}
    return Catalog(sorted(tables), columns, keys)


def read_inspector(
    url: str, schema: str | None, describe: Callable[[list[str]], list[str]] = list
) -> Catalog:
    """The schema's catalog through SQLAlchemy's inspector (any dialect): every table's
    name, and the columns and primary key of the tables `describe` picks from the names."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        tables = sorted(inspector.get_table_names(schema=schema))
        picked = describe(tables)
        if not picked:
            return Catalog(tables, {}, {})
        described = inspector.get_multi_columns(schema=schema, filter_names=picked)
        pks = inspector.get_multi_pk_constraint(schema=schema, filter_names=picked)
        columns = {
            name: [Column(str(c["name"]), str(c["type"]).upper()) for c in found]
            for (_, name), found in described.items()
        }
        keys = {
            name: [str(c) for c in (found.get("constrained_columns") or [])]
            for (_, name), found in pks.items()
        }
        return Catalog(tables, columns, keys)
    finally:
        engine.dispose()
