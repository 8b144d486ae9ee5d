"""The lake browser: `/lake` (every processed table) and `/lake/{table}` (schema, snapshots,
a preview; `?snapshot=<id>` previews the table as of an earlier snapshot: time travel).

Everything comes from the Iceberg metadata (pyiceberg): row and file counts from the
snapshot summaries, the files of a snapshot from `scan(snapshot_id=...).plan_files()`.
The preview reads those Parquet files with DuckDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from headwater.lake.store import DUCKDB_SETTINGS
from headwater.lake.tables import BATCH_PROP, RUN_PROP, Tables, scan_sql
from headwater.project import Project
from headwater.serve.web import project_of, render
from headwater.state.db import StateDB

router = APIRouter()

PREVIEW_ROWS = 50


@dataclass(frozen=True)
class TableRow:
    name: str
    rows: int
    files: int
    snapshots: int
    last_commit: str | None


@dataclass(frozen=True)
class SnapshotRow:
    id: int
    time: str
    operation: str
    batch: str | None
    run: str | None
    added_rows: int | None
    deleted_rows: int | None
    total_rows: int | None
    current: bool


@dataclass(frozen=True)
class Column:
    id: int
    name: str
    type: str
    required: bool
    doc: str | None


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(snap: Snapshot | None) -> dict[str, str]:
    if snap is None or snap.summary is None:
        return {}
    return dict(snap.summary.additional_properties)


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


@contextmanager
def _tables(project: Project) -> Iterator[Tables | None]:
    """The processed zone, or None before the first run."""
    if not StateDB.exists(project.state_url):
        yield None
        return
    tables = Tables.open(project.state_url, project.open_store())
    try:
        yield tables
    finally:
        tables.close()


def table_row(name: str, table: Table) -> TableRow:
    snap = table.current_snapshot()
    summary = _summary(snap)
    return TableRow(
        name=name,
        rows=int(summary.get("total-records", 0)),
        files=int(summary.get("total-data-files", 0)),
        snapshots=len(table.snapshots()),
        last_commit=_time(snap.timestamp_ms) if snap else None,
    )


def snapshot_rows(table: Table) -> list[SnapshotRow]:
    """Every snapshot, newest first."""
    current = table.current_snapshot()
    out = []
    for snap in sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True):
        summary = _summary(snap)
        operation = snap.summary.operation.value if snap.summary else "?"
        out.append(
            SnapshotRow(
                id=int(snap.snapshot_id),
                time=_time(snap.timestamp_ms),
                operation=operation,
                batch=summary.get(BATCH_PROP),
                run=summary.get(RUN_PROP),
                added_rows=_int(summary.get("added-records")),
                deleted_rows=_int(summary.get("deleted-records")),
                total_rows=_int(summary.get("total-records")),
                current=current is not None and snap.snapshot_id == current.snapshot_id,
            )
        )
    return out


def columns(table: Table, snap: Snapshot | None) -> list[Column]:
    """The table's schema as of `snap` (the current schema without one)."""
    schema = table.schema()
    if snap is not None and snap.schema_id is not None:
        schema = table.schemas().get(snap.schema_id, schema)
    return [
        Column(f.field_id, f.name, str(f.field_type), bool(f.required), f.doc)
        for f in schema.fields
    ]


def preview(
    project: Project, files: list[str], limit: int = PREVIEW_ROWS
) -> tuple[list[str], list[list[str | None]]]:
    """The first `limit` rows of these Parquet files: (column names, rows as text)."""
    if not files:
        return [], []
    conn = duckdb.connect(":memory:", config=DUCKDB_SETTINGS)
    try:
        project.open_store().configure_duckdb(conn)
        result = conn.execute(f"SELECT * FROM {scan_sql(files)} LIMIT {int(limit)}")
        names = [d[0] for d in result.description or []]
        rows = [[None if v is None else str(v) for v in row] for row in result.fetchall()]
    finally:
        conn.close()
    return names, rows


def _not_found(request: Request, message: str) -> Any:
    return render(request, "lake.html", {"tables": [], "error": message}, status_code=404)


@router.get("/lake", response_class=HTMLResponse)
def lake_page(request: Request) -> Any:
    """Every processed table: rows, files, snapshots, last commit."""
    project = project_of(request)
    with _tables(project) as tables:
        rows = [table_row(n, tables.load(n)) for n in tables.names()] if tables else []
    return render(request, "lake.html", {"tables": rows, "error": None, "ran": tables is not None})


@router.get("/lake/{name}", response_class=HTMLResponse)
def lake_table_page(request: Request, name: str, snapshot: str | None = None) -> Any:
    """One table: schema, snapshots and a preview, now or as of `snapshot`."""
    project = project_of(request)
    with _tables(project) as tables:
        if tables is None or name not in tables.names():
            return _not_found(request, f"no processed table {name!r} in the lake")
        table = tables.load(name)
        current = table.current_snapshot()
        snap = current
        if snapshot is not None and snapshot != "":
            try:
                snap = table.snapshot_by_id(int(snapshot))
            except ValueError:
                snap = None
            if snap is None:
                return _not_found(request, f"table {name!r} has no snapshot {snapshot!r}")
        tasks = list(table.scan(snapshot_id=snap.snapshot_id).plan_files()) if snap else []
        files = [t.file.file_path for t in tasks]
        context = {
            "name": name,
            "info": table_row(name, table),
            "location": table.location(),
            "columns": columns(table, snap),
            "snapshots": snapshot_rows(table),
            "snapshot": None if snap is None else int(snap.snapshot_id),
            "snapshot_time": None if snap is None else _time(snap.timestamp_ms),
            "time_travel": snap is not None
            and current is not None
            and snap.snapshot_id != current.snapshot_id,
            "snapshot_rows": sum(int(t.file.record_count) for t in tasks),
            "snapshot_files": len(files),
        }
    names, rows = preview(project, files)
    return render(
        request,
        "lake_table.html",
        {**context, "preview_columns": names, "preview_rows": rows, "preview_limit": PREVIEW_ROWS},
    )
