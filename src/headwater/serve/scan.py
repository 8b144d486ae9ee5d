"""What a lake query will read, planned before it runs: relations, files, bytes.

`plan(project, sql, conn)` finds the relations the query names (see
`headwater.serve.prune`) and, for each, the files its view will read:

- a processed table: pyiceberg plans the scan of its current snapshot with a
  row filter made of the query's simple predicates on its columns; data files
  whose column bounds (or partitions) exclude the filter are skipped, and the
  view reads only the files left. Bounds are relaxed, never tightened (`>` is
  planned as `>=`, a timestamp with a time zone against a naive one is widened
  by a day), so a skipped file never held a row the query could return;
- a raw relation (`raw.<source>`): predicates on its per-file columns
  (`_file`, `_run`, `_landed_at`, `_file_date`) are evaluated exactly, by
  DuckDB, on the list of landed files;
- `quarantine` and direct reads (`read_csv('s3://...')`, `FROM 'x.parquet'`):
  the files their globs match, sized by DuckDB's `read_blob` (no data read).

Bytes are the sizes of the files; out of Parquet DuckDB reads only the
columns and row groups it needs, so a query often transfers less.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
    UUIDType,
)

from headwater.errors import ConfigError, LakeError
from headwater.lake.quarantine import QuarantineZone
from headwater.lake.store import Store
from headwater.lake.tables import Tables, scan_sql
from headwater.project import Project
from headwater.serve import rawzone
from headwater.serve.prune import Analysis, Ref, analyse
from headwater.serve.rowfilter import Constants, describe, iceberg_filter
from headwater.sql import literal, quote_ident

UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str, option: str = "--max-scan") -> int:
    """`500MB`, `1.5GB`, `10GiB` or a number of bytes (KB = 1000 bytes, KiB = 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise ConfigError(f"{option}: expected a size such as 500MB or 10GB, got {text!r}")
    return int(Decimal(match.group(1)) * UNITS[(match.group(2) or "").upper()])


def human(size: int) -> str:
    """A byte count for people: `3.6 KB`, `1.2 GB` (powers of 1000)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ScanFile:
    uri: str
    size: int


@dataclass
class RelationPlan:
    name: str  # as the query names it: `transactions`, `raw.branch_files`, `read_csv(...)`
    kind: str  # processed, raw csv|jsonl|log|parquet, quarantine, files
    files: list[ScanFile]
    total_files: int
    total_bytes: int
    pruned_by: str | None = None  # the filter that skipped files
    unknown: str | None = None  # why its files cannot be known before it runs

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.name,
            "kind": self.kind,
            "files": len(self.files),
            "files_total": self.total_files,
            "bytes": self.bytes,
            "bytes_total": self.total_bytes,
            "pruned_by": self.pruned_by,
            "unknown": self.unknown,
            "scan": [{"file": f.uri, "bytes": f.size} for f in self.files],
        }


@dataclass(frozen=True)
class KeptFiles:
    """The data files of a processed table left after pruning, and its view's columns.

    `columns` are the table's columns that some current file holds, in schema
    order; a column none of the kept files holds has a DuckDB type, read as NULL.
    """

    files: list[str]
    columns: list[tuple[str, str | None]]

    def select(self) -> str:
        cols = ", ".join(
            quote_ident(c) if t is None else f"NULL::{t} AS {quote_ident(c)}"
            for c, t in self.columns
        )
        if not self.files:
            return f"SELECT {cols} WHERE false"
        return f"SELECT {cols} FROM {scan_sql(self.files)}"


@dataclass
class ScanPlan:
    relations: list[RelationPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    complete: bool = True  # False: something read cannot be known before it runs
    processed: dict[str, KeptFiles] = field(default_factory=dict)  # pruned tables
    raw: dict[str, rawzone.RawRelation] = field(default_factory=dict)  # raw views to make

    @property
    def files(self) -> int:
        return sum(len(r.files) for r in self.relations)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.relations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "files_total": sum(r.total_files for r in self.relations),
            "bytes": self.bytes,
            "bytes_total": sum(r.total_bytes for r in self.relations),
            "complete": self.complete,
            "notes": self.notes,
            "relations": [r.to_dict() for r in self.relations],
        }


def plan(project: Project, sql: str, conn: duckdb.DuckDBPyConnection, store: Store) -> ScanPlan:
    """The plan of one read-only query over the lake (`conn` can read the store)."""
    found = analyse(sql)
    result = ScanPlan()
    if found.error is not None:
        result.notes.append(f"sqlglot cannot parse the query ({found.error}): nothing is pruned")
        result.complete = False
        for name in conn.get_table_names(sql, qualified=False):
            found.named.add(("raw", name.lower()))
            found.named.add(("main", name.lower()))
    consts = Constants(conn)
    tables = Tables.open(project.state_url, store)
    try:
        processed = set(tables.names())
        for key in sorted(found.named):
            schema, name = key
            if schema == "main" and name in processed:
                table_plan, kept = _processed(tables, name, found.prunable(key), consts)
                result.relations.append(table_plan)
                if kept is not None:
                    result.processed[name] = kept
    finally:
        tables.close()
    raw_wanted = sorted(n for s, n in found.named if s == rawzone.SCHEMA)
    if raw_wanted:
        available = rawzone.relations(project, store)
        for name in raw_wanted:
            rel = available.get(name)
            if rel is None:
                if found.error is not None:
                    continue
                listing = ", ".join(f"raw.{n}" for n in sorted(available)) or "none"
                raise LakeError(f"raw.{name} is not a raw relation (the raw zone has: {listing})")
            rel_plan, kept_rel = _raw(rel, found.prunable((rawzone.SCHEMA, name)), conn)
            result.relations.append(rel_plan)
            result.raw[name] = kept_rel
    if ("main", "quarantine") in found.named and "quarantine" not in processed:
        zone = QuarantineZone(store)
        sized = _sizes(conn, [zone.glob()]) if zone.has_files() else []
        result.relations.append(
            RelationPlan("quarantine", "quarantine", sized, len(sized), sum(f.size for f in sized))
        )
    for key, name in sorted(found.file_names.items()):
        if key[1] not in processed:
            result.relations.append(_direct(conn, f"'{name}'", (name,)))
    for read in found.reads:
        if read.patterns != ():
            result.relations.append(_direct(conn, read.text, read.patterns))
    result.complete = result.complete and all(r.unknown is None for r in result.relations)
    return result


def _direct(
    conn: duckdb.DuckDBPyConnection, text: str, patterns: tuple[str, ...] | None
) -> RelationPlan:
    if patterns is None:
        why = "its files are not literal strings"
        return RelationPlan(text, "files", [], 0, 0, unknown=why)
    sized = _sizes(conn, list(patterns))
    return RelationPlan(text, "files", sized, len(sized), sum(f.size for f in sized))


def _sizes(conn: duckdb.DuckDBPyConnection, patterns: list[str]) -> list[ScanFile]:
    """Files matching globs, with sizes (read_blob without its content reads no data)."""
    listing = "[" + ", ".join(literal(p) for p in patterns) + "]"
    rows = conn.execute(f"SELECT filename, size FROM read_blob({listing}) ORDER BY 1").fetchall()
    return [ScanFile(str(uri), int(size)) for uri, size in rows]


# ------------------------------------------------------------------ processed tables


def _processed(
    tables: Tables, name: str, refs: list[Ref] | None, consts: Constants
) -> tuple[RelationPlan, KeptFiles | None]:
    table = tables.load(name)
    if table.current_snapshot() is None:
        return RelationPlan(name, "processed", [], 0, 0), None
    every = list(table.scan().plan_files())
    sized = [ScanFile(t.file.file_path, t.file.file_size_in_bytes) for t in every]
    whole = RelationPlan(name, "processed", sized, len(sized), sum(f.size for f in sized))
    row_filter = iceberg_filter(table.schema(), refs, consts) if refs else None
    if row_filter is None:
        return whole, None
    kept = list(table.scan(row_filter=row_filter).plan_files())
    columns = _view_columns(table.schema(), [t.file for t in every], [t.file for t in kept])
    if columns is None:
        return whole, None
    files = [ScanFile(t.file.file_path, t.file.file_size_in_bytes) for t in kept]
    pruned = RelationPlan(
        name, "processed", files, whole.total_files, whole.total_bytes, describe(row_filter)
    )
    return pruned, KeptFiles([f.uri for f in files], columns)


DUCKDB_TYPES: dict[type[Any], str] = {
    BooleanType: "BOOLEAN",
    IntegerType: "INTEGER",
    LongType: "BIGINT",
    FloatType: "FLOAT",
    DoubleType: "DOUBLE",
    DateType: "DATE",
    TimeType: "TIME",
    TimestampType: "TIMESTAMP",
    TimestamptzType: "TIMESTAMPTZ",
    StringType: "VARCHAR",
    UUIDType: "UUID",
    BinaryType: "BLOB",
}


def _view_columns(
    schema: Schema, every: list[DataFile], kept: list[DataFile]
) -> list[tuple[str, str | None]] | None:
    """Columns of a pruned view (see `KeptFiles`); None when that cannot be told."""
    if any(not f.value_counts for f in every):
        return None  # files without column statistics: which columns they hold is unknown
    held = {i for f in every for i in f.value_counts}
    held_kept = {i for f in kept for i in f.value_counts}
    columns: list[tuple[str, str | None]] = []
    for f in schema.fields:
        if f.field_id not in held:
            continue
        if f.field_id in held_kept:
            columns.append((f.name, None))
            continue
        kind = f.field_type
        if isinstance(kind, DecimalType):
            columns.append((f.name, f"DECIMAL({kind.precision}, {kind.scale})"))
        elif type(kind) in DUCKDB_TYPES:
            columns.append((f.name, DUCKDB_TYPES[type(kind)]))
        else:
            return None
    return columns


# ------------------------------------------------------------------ raw relations


def _raw(
    rel: rawzone.RawRelation, refs: list[Ref] | None, conn: duckdb.DuckDBPyConnection
) -> tuple[RelationPlan, rawzone.RawRelation]:
    every = [ScanFile(f.uri, f.size) for f in rel.files]
    total = sum(f.size for f in every)
    kind = f"raw {rel.kind}"
    condition = _raw_condition(refs) if refs else None
    if condition is None:
        return RelationPlan(f"raw.{rel.name}", kind, every, len(every), total), rel
    try:
        rows = conn.execute(
            f"SELECT uri FROM ({rawzone.meta_sql(rel)}) WHERE {condition}"
        ).fetchall()
    except duckdb.Error:
        return RelationPlan(f"raw.{rel.name}", kind, every, len(every), total), rel
    kept = rel.keep({str(r[0]) for r in rows})
    files = [ScanFile(f.uri, f.size) for f in kept.files]
    return RelationPlan(f"raw.{rel.name}", kind, files, len(every), total, condition), kept


def _raw_condition(refs: list[Ref]) -> str | None:
    """The predicates on per-file columns, OR-ed across readings (None: every file)."""
    per_ref: list[str] = []
    for ref in refs:
        preds = ref.predicates(set(rawzone.PER_FILE))
        if not preds:
            return None
        per_ref.append(" AND ".join(p.sql for p in preds))
    if len(per_ref) == 1:
        return per_ref[0]
    return " OR ".join(f"({p})" for p in per_ref)


__all__ = [
    "Analysis",
    "KeptFiles",
    "RelationPlan",
    "ScanFile",
    "ScanPlan",
    "human",
    "parse_size",
    "plan",
]
