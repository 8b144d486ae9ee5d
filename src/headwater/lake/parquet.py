"""Parquet files written straight from Arrow, when nothing has to be computed on the way.

A staged part whose columns carry no PII policy is written as it is (plus the
`_batch` column) with pyarrow, which takes about half the CPU of sending the
same table through DuckDB's `COPY` (measured on parsed log parts). The file
matches what DuckDB's `COPY ... (FORMAT parquet, COMPRESSION snappy)` writes
for these types (the same Parquet physical and logical types, but for the
signed Int annotation DuckDB adds to plain INT32 and INT64 columns, which means
nothing more; row groups of DuckDB's default size; no Arrow schema in the
footer), so a table's files
read the same whichever way they were written. Anything else (other types,
an S3 path) goes through DuckDB: `plain_types` says which tables can come here.

Dictionary encoding is asked for only where the first rows repeat (at most
one distinct value in four): for a column of mostly distinct values (ids,
messages, addresses) the writer would hash every value into a dictionary it
then abandons for plain encoding, a third of the write's CPU for no smaller
file.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from headwater.errors import LakeError

ROW_GROUP_ROWS = 122_880  # DuckDB's default ROW_GROUP_SIZE, so pruning sees the same groups
PROBE_ROWS = 2_000  # rows looked at to decide a column's encoding


def _plain(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_signed_integer(kind)
        or kind in (pa.float32(), pa.float64(), pa.bool_(), pa.date32())
        or (pa.types.is_timestamp(kind) and kind.unit == "us")
    )


def plain_types(schema: pa.Schema) -> bool:
    """Whether every column has a type pyarrow writes as DuckDB would (flat; not decimal,
    unsigned, NULL-typed or of another timestamp unit)."""
    return all(_plain(f.type) for f in schema)


def repeating(table: pa.Table) -> list[str]:
    """The columns worth a dictionary: among the first rows, at most one distinct in four."""
    out = []
    for name in table.column_names:
        head = table.column(name).slice(0, PROBE_ROWS)
        if pa.types.is_boolean(head.type) or pc.count_distinct(head).as_py() <= len(head) // 4:
            out.append(name)
    return out


def write_plain(table: pa.Table, path: str, context: str) -> int:
    """Write `table` to a local Parquet file (snappy); returns its rows."""
    try:
        pq.write_table(
            table,
            path,
            compression="snappy",
            row_group_size=ROW_GROUP_ROWS,
            store_schema=False,
            use_dictionary=repeating(table),
        )
    except (OSError, pa.ArrowException) as exc:
        raise LakeError(f"{context}: cannot write {path}: {exc}") from None
    return int(table.num_rows)
