"""Everything one run needs, built once and handed to each stage."""

from __future__ import annotations

from dataclasses import dataclass

from headwater.lake.quarantine import QuarantineZone
from headwater.lake.store import Store
from headwater.lake.tables import Tables
from headwater.models.dag import Dag
from headwater.models.engine import Engine
from headwater.project import Project
from headwater.quality.pii import LeakSample
from headwater.runs.progress import Progress
from headwater.runs.summary import RunSummary
from headwater.sources.base import Source
from headwater.state.db import StateDB


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
