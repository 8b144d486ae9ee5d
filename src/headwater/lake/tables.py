"""The processed zone: Apache Iceberg tables (pyiceberg, SQL catalog in the state DB).

Engines write Parquet files into the zone; `commit` registers them in one
Iceberg snapshot, so a table changes all at once or not at all. Every snapshot
carries `headwater.batch` and `headwater.run` in its summary: a retried batch
sees it was already committed and skips the work, which makes the transform
stage idempotent after a crash.

Every row of a headwater table carries `_batch`, the run that landed its
input; readers ask for the files that may hold a given batch range and filter
on the column.
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
    ResolveError,
    ValidationError,
)
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    LessThanOrEqual,
    Reference,
)
from pyiceberg.expressions.literals import literal
from pyiceberg.io import load_file_io
from pyiceberg.table import Table

from headwater.errors import LakeError, TransientError
from headwater.lake.store import Store

NAMESPACE = "lake"
BATCH_PROP = "headwater.batch"
RUN_PROP = "headwater.run"
BATCH_COLUMN = "_batch"


def scan_sql(files: list[str] | str) -> str:
    """DuckDB table function reading Parquet files (a list, or one glob) of the lake."""
    if isinstance(files, str):
        listing = "'" + files.replace("'", "''") + "'"
    else:
        listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    return f"read_parquet({listing}, union_by_name = true, hive_partitioning = false)"


@dataclass(frozen=True)
class CommitInfo:
    snapshot_id: int
    files: int
    rows: int


class Tables:
    """All processed-zone tables of one project."""

    def __init__(self, catalog: Catalog, store: Store, prefix: str = "processed") -> None:
        self.catalog = catalog
        self.store = store
        self.prefix = prefix
        self._batches: dict[str, set[int]] = {}
        # Loaded tables and planned files, valid until this object commits to the table.
        self._tables: dict[str, Table] = {}
        self._files: dict[tuple[str, int | None], list[str]] = {}

    @classmethod
    def open(cls, state_url: str, store: Store) -> Tables:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            catalog = SqlCatalog(
                "headwater",
                uri=state_url,
                warehouse=store.uri("processed"),
                **store.iceberg_properties(),
            )
        catalog.create_namespace_if_not_exists(NAMESPACE)
        return cls(catalog, store)

    def close(self) -> None:
        """Release the catalog's database connections."""
        engine = getattr(self.catalog, "engine", None)
        if engine is not None:
            engine.dispose()

    def _footer(self, path: str) -> pq.FileMetaData:
        """A lake Parquet file's footer, read through the catalog's FileIO (disk or S3)."""
        with load_file_io(self.catalog.properties, path).new_input(path).open() as stream:
            return pq.read_metadata(stream)

    def _id(self, name: str) -> str:
        return f"{NAMESPACE}.{name}"

    def names(self) -> list[str]:
        return sorted(ident[-1] for ident in self.catalog.list_tables(NAMESPACE))

    def exists(self, name: str) -> bool:
        return name in self._tables or bool(self.catalog.table_exists(self._id(name)))

    def _forget(self, name: str) -> None:
        self._tables.pop(name, None)
        for key in [k for k in self._files if k[0] == name]:
            del self._files[key]

    def load(self, name: str) -> Table:
        """The table as of its latest commit (cached; a run is the only writer)."""
        cached = self._tables.get(name)
        if cached is not None:
            return cached
        try:
            table = self.catalog.load_table(self._id(name))
            self._tables[name] = table
            return table
        except NoSuchTableError:
            raise LakeError(
                f"processed table {name!r} does not exist yet (no run has written it)"
            ) from None

    def new_file_key(self, name: str, batch: int, run_id: int) -> str:
        return (
            f"{self.prefix}/{name}/data/b{batch:08d}-r{run_id:08d}-{uuid.uuid4().hex[:12]}.parquet"
        )

    def committed_batches(self, name: str) -> set[int]:
        """Batches whose output this table has committed (from snapshot summaries)."""
        if name in self._batches:
            return self._batches[name]
        found: set[int] = set()
        if self.exists(name):
            for snap in self.load(name).snapshots():
                value = snap.summary.additional_properties.get(BATCH_PROP) if snap.summary else None
                if value is not None:
                    found.add(int(value))
        self._batches[name] = found
        return found

    def data_files(self, name: str, after_batch: int | None = None) -> list[str]:
        """Files of the current snapshot; with `after_batch`, those that may hold newer rows."""
        key = (name, after_batch)
        if key in self._files:
            return self._files[key]
        table = self.load(name)
        if table.current_snapshot() is None:
            return []
        row_filter = "true" if after_batch is None else f"{BATCH_COLUMN} > {int(after_batch)}"
        files = [task.file.file_path for task in table.scan(row_filter=row_filter).plan_files()]
        self._files[key] = files
        return files

    def files_overlapping(self, name: str, ranges: dict[str, tuple[Any, Any]]) -> list[str]:
        """Files of the current snapshot whose column bounds (Iceberg manifest statistics)
        overlap every `column: (low, high)` range; a file without bounds is kept.

        Pruning only: a range Iceberg cannot bind to its column (a type it does not
        have) prunes nothing, so the result always holds every file that may match.
        """
        files = self.data_files(name)
        if not ranges or not files:
            return files
        terms: list[BooleanExpression] = []
        try:
            for column, (low, high) in ranges.items():
                ref = Reference(column)
                terms.append(GreaterThanOrEqual(term=ref, value=literal(low)))
                terms.append(LessThanOrEqual(term=ref, value=literal(high)))
            tasks = self.load(name).scan(row_filter=And(*terms)).plan_files()
        except (ValueError, TypeError, ResolveError, ValidationError):
            return files
        return [task.file.file_path for task in tasks]

    def current_snapshot_id(self, name: str) -> int | None:
        snap = self.load(name).current_snapshot()
        return None if snap is None else int(snap.snapshot_id)

    def commit(
        self,
        name: str,
        files: list[str],
        *,
        mode: Literal["append", "replace"],
        batch: int,
        run_id: int,
    ) -> CommitInfo:
        """Register Parquet files as one new snapshot: appended, or replacing all rows."""
        if not files:
            raise LakeError(
                f"commit to {name!r} needs at least one data file (it may hold no rows)"
            )
        props = {BATCH_PROP: str(batch), RUN_PROP: str(run_id)}
        footers = [self._footer(f) for f in files]  # each read once: schema and row counts
        schema = nullable(_union(name, [f.schema.to_arrow_schema() for f in footers]))
        self._forget(name)
        try:
            table = self._table_for(name, schema, mode)
            with table.transaction() as txn:
                if mode == "replace" and table.current_snapshot() is not None:
                    txn.delete(AlwaysTrue(), snapshot_properties=props)
                txn.add_files(files, snapshot_properties=props, check_duplicate_files=False)
        except CommitFailedException as exc:
            raise TransientError(f"commit to processed table {name!r} conflicted: {exc}") from None
        except ValueError as exc:
            raise LakeError(
                f"processed table {name!r}: new data does not fit the table: {exc}"
            ) from None
        self._forget(name)
        self._batches.setdefault(name, set()).add(batch)
        snap = self.load(name).current_snapshot()
        rows = sum(f.num_rows for f in footers)
        return CommitInfo(
            snapshot_id=int(snap.snapshot_id) if snap else 0, files=len(files), rows=rows
        )

    def _create(self, name: str, schema: pa.Schema) -> Table:
        location = self.store.uri(f"{self.prefix}/{name}")
        return self.catalog.create_table(self._id(name), schema=schema, location=location)

    def _table_for(self, name: str, schema: pa.Schema, mode: str) -> Table:
        """The table, created or evolved to take files of `schema`.

        New columns are added and types widened (int to long, float to double,
        decimal precision). A change Iceberg cannot express stops an append;
        a `replace` commit starts the table over with the new schema.
        """
        if not self.exists(name):
            return self._create(name, schema)
        table = self.load(name)
        current = {f.name: _plain(f.type) for f in table.schema().as_arrow()}
        changed = [f.name for f in schema if current.get(f.name) != _plain(f.type)]
        if not changed:
            return table
        try:
            with table.update_schema() as update:
                update.union_by_name(schema)
            self._forget(name)
        except (ValueError, TypeError, ResolveError, ValidationError) as exc:
            if mode == "replace":
                self.catalog.drop_table(self._id(name))
                self._batches.pop(name, None)
                self._forget(name)
                return self._create(name, schema)
            column = changed[0]
            raise LakeError(
                f"processed table {name!r}, column {column!r}: type changed from "
                f"{current.get(column)} to {schema.field(column).type}, which Iceberg cannot "
                f"widen; the commit stopped ({exc})"
            ) from None
        return self.load(name)


def _union(name: str, schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for files of one commit: the first file's columns, then new ones in order.

    Files of a commit may differ in columns (a log source's later files can
    bring new fields); a column missing from a file reads as NULL there.
    """
    if all(s.equals(schemas[0]) for s in schemas[1:]):
        return schemas[0]
    try:
        return pa.unify_schemas(schemas)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise LakeError(
            f"processed table {name!r}: the new files disagree on a column's type: {exc}"
        ) from None


def _plain(t: pa.DataType) -> pa.DataType:
    """Arrow type without offset width (string = large_string), to compare schemas."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_plain(t.value_type))
    return t


def nullable(schema: pa.Schema) -> pa.Schema:
    """The schema with every field (and list element) optional.

    DuckDB marks a column required when the rows it wrote had no NULL; the
    table must still accept later files where that column has NULLs.
    """

    def loosen(t: pa.DataType) -> pa.DataType:
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            item = t.value_field
            return pa.list_(pa.field(item.name, loosen(item.type), nullable=True))
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, loosen(f.type), nullable=True) for f in t])
        return t

    return pa.schema([pa.field(f.name, loosen(f.type), nullable=True) for f in schema])
