"""The run summary: what `headwater run --json` prints and the state database keeps."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SourceSummary:
    files_found: int = 0
    files_new: int = 0
    files_unchanged: int = 0
    files_duplicate: int = 0
    duplicates: list[dict[str, str]] = field(default_factory=list)
    bytes_new: int = 0
    files_read: int = 0
    rows_read: int = 0
    rows_quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    header_lines: int = 0
    blank_lines: int = 0
    columns_added: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return self.rows_read - self.rows_quarantined

    def add_quarantine(self, rule: str, count: int) -> None:
        if count:
            self.rows_quarantined += count
            self.quarantined_by_reason[rule] = self.quarantined_by_reason.get(rule, 0) + count

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["rows_loaded"] = self.rows_loaded
        return out


@dataclass
class ModelSummary:
    status: str = "pending"
    materialized: str = "table"
    batches: list[int] = field(default_factory=list)
    rows_written: int = 0
    rows_quarantined: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class WarehouseSummary:
    target: str = "duckdb"
    location: str = ""
    status: str = "unchanged"
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunSummary:
    run_id: int
    project: str
    started_at: dt.datetime
    status: str = "running"
    finished_at: dt.datetime | None = None
    batches: list[int] = field(default_factory=list)
    recovered_runs: list[int] = field(default_factory=list)
    only_sources: list[str] | None = None  # the sources this run extracted, when not all
    attempts: list[dict[str, Any]] = field(default_factory=list)  # failed attempts of steps
    sources: dict[str, SourceSummary] = field(default_factory=dict)
    models: dict[str, ModelSummary] = field(default_factory=dict)
    warehouse: WarehouseSummary = field(default_factory=WarehouseSummary)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def to_json(self) -> dict[str, Any]:
        finished = self.finished_at
        return {
            "run_id": self.run_id,
            "project": self.project,
            "status": self.status,
            "started_at": self.started_at.isoformat() + "Z",
            "finished_at": None if finished is None else finished.isoformat() + "Z",
            "duration_seconds": None
            if finished is None
            else round((finished - self.started_at).total_seconds(), 3),
            "batches": self.batches,
            "recovered_runs": self.recovered_runs,
            "only_sources": self.only_sources,
            "attempts": self.attempts,
            "sources": {k: v.to_json() for k, v in self.sources.items()},
            "models": {k: v.to_json() for k, v in self.models.items()},
            "warehouse": asdict(self.warehouse),
            "error": self.error,
        }
