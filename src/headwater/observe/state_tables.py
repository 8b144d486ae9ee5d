"""The state database's run records as Arrow tables, for SQL over runs and files.

Operations dashboards and ad-hoc questions ("which runs failed this week?")
query `hw_runs` and `hw_files` with DuckDB; this reads them from the state
database (SQLite or PostgreSQL) once per query session.
"""

from __future__ import annotations

import json

import pyarrow as pa
import sqlalchemy as sa

from headwater.state.db import StateDB, files, runs

RUN_COLUMNS = ["run_id", "trigger", "status", "started_at", "finished_at", "error"]


def state_tables(db: StateDB) -> dict[str, pa.Table]:
    """`hw_runs` (summary as JSON text) and `hw_files` from the state database."""
    with db.engine.connect() as conn:
        run_rows = conn.execute(sa.select(runs).order_by(runs.c.run_id)).all()
        file_rows = conn.execute(sa.select(files).order_by(files.c.file_id)).all()
    run_table = pa.table(
        {
            **{c: pa.array([getattr(r, c) for r in run_rows]) for c in RUN_COLUMNS},
            "summary": pa.array(
                [json.dumps(r.summary) if r.summary else None for r in run_rows], pa.string()
            ),
        }
    )
    file_table = (
        pa.Table.from_pylist([dict(r._mapping) for r in file_rows])
        if file_rows
        else pa.table({c.name: pa.array([], pa.string()) for c in files.columns})
    )
    return {"hw_runs": run_table, "hw_files": file_table}
