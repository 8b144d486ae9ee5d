"""Everything one run needs, built once and handed to each stage."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from headwater.config_schedule import RetryConfig
from headwater.lake.quarantine import QuarantineZone
from headwater.lake.store import Store
from headwater.lake.tables import Tables
from headwater.models.dag import Dag
from headwater.models.engine import Engine
from headwater.project import Project
from headwater.quality.pii import LeakSample
from headwater.runs.progress import Progress
from headwater.runs.retry import Retrier
from headwater.runs.summary import RunSummary
from headwater.sources.base import Source
from headwater.sources.sql import SqlSourceReader, SqlTablePlan
from headwater.state.db import StateDB
from headwater.state.runs import finish_step, start_step

log = logging.getLogger("headwater.run")


@dataclass
class RunContext:
    project: Project
    db: StateDB
    store: Store
    tables: Tables
    quarantine: QuarantineZone
    engine: Engine
    sources: dict[str, Source]
    dag: Dag
    run_id: int
    progress: Progress
    summary: RunSummary
    leak_samples: dict[int, dict[str, LeakSample]]  # batch -> source -> sample
    sql_sources: dict[str, SqlSourceReader] = field(default_factory=dict)
    sql_plans: dict[str, dict[str, SqlTablePlan]] = field(default_factory=dict)
    full_refresh: frozenset[str] = frozenset()  # tables to extract whole this run
    only_sources: frozenset[str] | None = None  # extract only these sources (None: all)
    retrier: Retrier = field(default_factory=lambda: Retrier(RetryConfig()))

    def extracts(self, source: str) -> bool:
        """Whether this run extracts `source` (`headwater run --source` may restrict it)."""
        return self.only_sources is None or source in self.only_sources


class Step:
    """One recorded step of a run (a source extracted, a batch staged, a model, the load)."""

    def __init__(self, ctx: RunContext, stage: str, name: str, batch: int | None) -> None:
        self.ctx = ctx
        self.label = f"{stage} {name}" + ("" if batch is None else f" (batch {batch})")
        self.started = time.perf_counter()
        self.id = start_step(ctx.db, ctx.run_id, stage, name, batch)
        log.info("%s: started", self.label)
        self.rows_in: int | None = None
        self.rows_out: int | None = None
        self.rows_quarantined: int | None = None
        self.detail: dict[str, Any] | None = None
        self.error: str | None = None

    def fail(self, message: str) -> None:
        """Record the step as failed without raising (the run goes on)."""
        self.error = message

    def __enter__(self) -> Step:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        error = str(exc) if exc is not None else self.error
        seconds = time.perf_counter() - self.started
        if error is None:
            log.info("%s: done in %.2fs", self.label, seconds)
        else:
            log.warning("%s: failed after %.2fs: %s", self.label, seconds, error)
        finish_step(
            self.ctx.db,
            self.id,
            "failed" if error is not None else "success",
            rows_in=self.rows_in,
            rows_out=self.rows_out,
            rows_quarantined=self.rows_quarantined,
            detail=self.detail,
            error=error,
        )


def step(ctx: RunContext, stage: str, name: str, batch: int | None = None) -> Step:
    """Record a step in the state database: `with step(ctx, "load", "warehouse") as s: ...`."""
    return Step(ctx, stage, name, batch)
