"""Run and step records: what ran, when, how long, how many rows, what failed."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from headwater.state.db import StateDB, runs, steps, utcnow


@dataclass(frozen=True)
class RunRecord:
    run_id: int
    trigger: str
    status: str
    started_at: Any
    finished_at: Any
    error: str | None
    summary: dict[str, Any] | None


def start_run(db: StateDB, trigger: str) -> int:
    with db.engine.begin() as conn:
        result = conn.execute(
            runs.insert().values(
                trigger=trigger,
                status="running",
                started_at=utcnow(),
                pid=os.getpid(),
                host=socket.gethostname(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_run(
    db: StateDB, run_id: int, status: str, summary: dict[str, Any], error: str | None = None
) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == run_id)
            .values(status=status, finished_at=utcnow(), summary=summary, error=error)
        )


def abandon_stale_runs(db: StateDB) -> list[int]:
    """Mark runs still 'running' as abandoned. Call only while holding the run lock."""
    with db.engine.begin() as conn:
        ids = [
            r[0] for r in conn.execute(sa.select(runs.c.run_id).where(runs.c.status == "running"))
        ]
        if ids:
            conn.execute(
                runs.update()
                .where(runs.c.run_id.in_(ids))
                .values(
                    status="abandoned",
                    finished_at=utcnow(),
                    error="the process stopped before the run finished; the next run recovered",
                )
            )
            conn.execute(
                steps.update()
                .where(steps.c.run_id.in_(ids), steps.c.status == "running")
                .values(status="abandoned", finished_at=utcnow())
            )
        return ids


def start_step(db: StateDB, run_id: int, stage: str, name: str, batch: int | None = None) -> int:
    with db.engine.begin() as conn:
        result = conn.execute(
            steps.insert().values(
                run_id=run_id,
                stage=stage,
                name=name,
                batch=batch,
                status="running",
                started_at=utcnow(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_step(
    db: StateDB,
    step_id: int,
    status: str,
    *,
    rows_in: int | None = None,
    rows_out: int | None = None,
    rows_quarantined: int | None = None,
    detail: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            steps.update()
            .where(steps.c.step_id == step_id)
            .values(
                status=status,
                finished_at=utcnow(),
                rows_in=rows_in,
                rows_out=rows_out,
                rows_quarantined=rows_quarantined,
                detail=detail,
                error=error,
            )
        )


def recent_runs(db: StateDB, limit: int = 10) -> list[RunRecord]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(runs).order_by(runs.c.run_id.desc()).limit(limit)).all()
    return [
        RunRecord(r.run_id, r.trigger, r.status, r.started_at, r.finished_at, r.error, r.summary)
        for r in rows
    ]


def run_steps(db: StateDB, run_id: int) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(steps).where(steps.c.run_id == run_id).order_by(steps.c.step_id)
        ).all()
    return [dict(r._mapping) for r in rows]


def fail_running(db: StateDB, error: str, *, pid: int | None = None) -> list[int]:
    """Mark runs still 'running' (of one process, with `pid`) as failed with `error`.

    For a run whose process was stopped from outside: the scheduler killed it at its
    timeout, or found it left over from a scheduler that was killed. Call only when that
    process is gone or the run lock is held."""
    with db.engine.begin() as conn:
        query = sa.select(runs.c.run_id).where(runs.c.status == "running")
        if pid is not None:
            query = query.where(runs.c.pid == pid, runs.c.host == socket.gethostname())
        ids = [r[0] for r in conn.execute(query)]
        if ids:
            now = utcnow()
            conn.execute(
                runs.update()
                .where(runs.c.run_id.in_(ids))
                .values(status="failed", finished_at=now, error=error)
            )
            conn.execute(
                steps.update()
                .where(steps.c.run_id.in_(ids), steps.c.status == "running")
                .values(status="failed", finished_at=now, error=error)
            )
        return ids
