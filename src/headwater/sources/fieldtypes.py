"""Per-field types of the log formats, applied in DuckDB; a value that does not convert
rejects its record (rule `type`) instead of failing the run.

Every field is text until typed. An empty or missing value is NULL whatever
the type; any other value that does not convert makes a reject whose reason
names the field, the value (unless the field is PII) and the expected type.
Timestamps are stored without time zone, in UTC: an offset in the text
(`+02:00`, `%z`) is applied.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from headwater.config_formats import FieldType
from headwater.sql import literal, quote_ident

VALUE_CHARS = 60  # of a bad value shown in a reason

# The Unicode space separators (category Zs): what DuckDB's trim() removes, tabs kept.
# Trimmed by Arrow before DuckDB sees a value (trim() costs more than the conversion).
SPACES = " \u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u202f\u205f\u3000"

_SQL_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
}


def sql_type(field: FieldType) -> str:
    return _SQL_TYPES[field.type]


def connect() -> duckdb.DuckDBPyConnection:
    """A small private DuckDB connection: one thread (workers already run in parallel), UTC."""
    conn = duckdb.connect(":memory:", config={"threads": 1})
    conn.execute("SET TimeZone = 'UTC'").fetchall()
    return conn


def _convert(value: str, field: FieldType) -> str:
    """SQL turning a trimmed, non-empty text value into the field's type (NULL if it does not)."""
    if field.type == "integer":
        digits = f"regexp_full_match({value}, '[+-]?[0-9]+')"
        return f"CASE WHEN {digits} THEN TRY_CAST({value} AS BIGINT) END"
    if field.type == "double":
        return f"TRY_CAST({value} AS DOUBLE)"
    if field.type == "boolean":
        return f"TRY_CAST({value} AS BOOLEAN)"
    if field.type == "timestamp":
        if field.format is None:
            return f"TRY_CAST(TRY_CAST({value} AS TIMESTAMPTZ) AS TIMESTAMP)"
        return f"TRY_CAST(try_strptime({value}, {literal(field.format)}) AS TIMESTAMP)"
    return value


def _expected(field: FieldType) -> str:
    if field.type == "timestamp":
        fmt = field.format or "ISO 8601"
        return f"is not a timestamp ({fmt})"
    return {
        "integer": "is not an integer",
        "double": "is not a number",
        "boolean": "is not a boolean",
    }.get(field.type, "is not text")


def apply_types(
    conn: duckdb.DuckDBPyConnection,
    rows: pa.Table,
    fields: Mapping[str, FieldType],
    hidden: Collection[str],
) -> tuple[pa.Table, pa.Table]:
    """Typed rows, and rejects (`_fidx`, `_line`, `rule`, `reason`) of values that do not convert.

    `rows` has `_fidx`, `_line` and text columns; the typed fields among them
    are replaced in place. Values of `hidden` (PII) fields never reach a reason.
    Only the typed columns pass through DuckDB.
    """
    typed = {n: f for n, f in fields.items() if f.type != "string" and n in rows.column_names}
    if not typed:
        return rows, REJECT_SCHEMA.empty_table()
    exprs, checks = [], []
    text = {name: rows.column(name) for name in typed}
    for i, (name, field) in enumerate(typed.items()):
        col = quote_ident(name)
        trimmed = f"__hw_trimmed_{i}"
        text[trimmed] = pc.utf8_trim(rows.column(name), SPACES)
        value = f"nullif({trimmed}, '')"
        converted = _convert(value, field)
        exprs.append(f"CAST({converted} AS {sql_type(field)}) AS {col}")
        shown = (
            "' (value hidden: PII)'"
            if name in hidden
            else f"' \"' || left({col}, {VALUE_CHARS}) || '\"'"
        )
        checks.append(
            f"CASE WHEN {value} IS NOT NULL AND ({converted}) IS NULL THEN "
            f"'field {name}' || {shown} || ' {_expected(field)}' END"
        )
    conn.register("__hw_text", pa.table(text))
    try:
        converted_table = conn.execute(
            f"SELECT {', '.join(exprs)}, coalesce({', '.join(checks)}) AS __hw_reason "
            "FROM __hw_text"
        ).to_arrow_table()
    finally:
        conn.unregister("__hw_text")
    out = rows
    for name in typed:
        out = out.set_column(out.schema.get_field_index(name), name, converted_table.column(name))
    reason = converted_table.column("__hw_reason")
    if reason.null_count == len(reason):
        return out, REJECT_SCHEMA.empty_table()
    bad = pc.is_valid(reason)
    count = len(reason) - reason.null_count
    rejects = pa.table(
        {
            "_fidx": out.column("_fidx").filter(bad),
            "_line": out.column("_line").filter(bad),
            "rule": pa.array(["type"] * count, pa.string()),
            "reason": reason.filter(bad),
        },
        schema=REJECT_SCHEMA,
    )
    return out.filter(pc.invert(bad)), rejects


_local = threading.local()


def typed(
    rows: pa.Table, fields: Mapping[str, FieldType], hidden: Collection[str]
) -> tuple[pa.Table, pa.Table]:
    """`apply_types` on a private connection of the calling thread, opened when first needed
    (opening one costs more than typing a small chunk)."""
    if not any(f.type != "string" and n in rows.column_names for n, f in fields.items()):
        return rows, REJECT_SCHEMA.empty_table()
    conn: duckdb.DuckDBPyConnection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect()
    return apply_types(conn, rows, fields, hidden)


REJECT_SCHEMA = pa.schema(
    [("_fidx", pa.int32()), ("_line", pa.int64()), ("rule", pa.string()), ("reason", pa.string())]
)
