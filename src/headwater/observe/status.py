"""What `headwater status` shows: recent runs with their counts, and freshness per source."""

from __future__ import annotations

import datetime as dt
from typing import Any

from headwater.project import Project
from headwater.state.db import StateDB, utcnow
from headwater.state.ledger import freshness
from headwater.state.runs import recent_runs


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat() + "Z"


def status_report(project: Project, limit: int = 10) -> dict[str, Any]:
    """Recent runs and per-source freshness, as plain JSON-able data."""
    if not StateDB.exists(project.state_url):
        return {"project": project.config.name, "runs": [], "sources": {}, "note": "no run yet"}
    db = StateDB.open(project.state_url, create=False)
    try:
        runs = []
        for r in recent_runs(db, limit):
            summary = r.summary or {}
            sources = summary.get("sources", {})
            models = summary.get("models", {})
            runs.append(
                {
                    "run_id": r.run_id,
                    "status": r.status,
                    "trigger": r.trigger,
                    "started_at": _iso(r.started_at),
                    "duration_seconds": summary.get("duration_seconds"),
                    "files_new": sum(s.get("files_new", 0) for s in sources.values()),
                    "rows_read": sum(s.get("rows_read", 0) for s in sources.values()),
                    "rows_loaded": sum(s.get("rows_loaded", 0) for s in sources.values()),
                    "rows_quarantined": sum(s.get("rows_quarantined", 0) for s in sources.values()),
                    "rows_written": {k: v.get("rows_written", 0) for k, v in models.items()},
                    "error": r.error,
                }
            )
        now = utcnow()
        fresh = {}
        for name, f in freshness(db).items():
            last = f["last_landed_at"]
            age = (now - last).total_seconds() if isinstance(last, dt.datetime) else None
            fresh[name] = {
                "files": f["files"],
                "rows_read": f["rows_read"],
                "rows_quarantined": f["rows_quarantined"],
                "last_file_landed_at": _iso(last),
                "newest_file_modified_at": _iso(f["newest_file_modified_at"]),
                "age_seconds": None if age is None else round(age),
            }
        for name in project.config.sources:
            fresh.setdefault(name, {"files": 0, "last_file_landed_at": None, "age_seconds": None})
        return {"project": project.config.name, "runs": runs, "sources": fresh}
    finally:
        db.dispose()
