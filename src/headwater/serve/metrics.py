"""`GET /metrics`: Prometheus text exposition format (0.0.4), written by hand.

Every value is read from the state database at scrape time, so the numbers are those of
all runs recorded there, whichever process ran them (CLI, cron, another machine):

| metric | type | labels | meaning |
|---|---|---|---|
| `headwater_runs_total` | counter | `status` | runs recorded, by status |
| `headwater_run_duration_seconds` | histogram | | duration of finished runs (success, failed) |
| `headwater_rows_read_total` | counter | `source` | data lines read, all runs |
| `headwater_rows_loaded_total` | counter | `source` | rows that passed parsing and checks |
| `headwater_rows_quarantined_total` | counter | `source`, `reason` | rows quarantined, by rule |
| `headwater_files_landed_total` | counter | `source` | files landed in the raw zone |
| `headwater_source_freshness_age_seconds` | gauge | `source` | time since its last landing |
| `headwater_source_overdue` | gauge | `source` | 1 when overdue (see docs/serve.md) |
| `headwater_last_success_timestamp_seconds` | gauge | | end of the last successful run |
| `headwater_last_run_timestamp_seconds` | gauge | | start of the last run |
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response

from headwater.serve import api
from headwater.serve.web import project_of
from headwater.state.db import files

router = APIRouter()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

Labels = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Metric families in order, each with HELP, TYPE and its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")

    def per_source(
        self, name: str, help_text: str, sources: list[str], values: Mapping[str, float]
    ) -> None:
        """A counter family with one sample per source (0 for a source without any)."""
        self.family(name, "counter", help_text)
        for source in sources:
            self.sample(name, values.get(source, 0), (("source", source),))

    def sample(self, name: str, value: float, labels: Labels = ()) -> None:
        if labels:
            inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels)
            self.lines.append(f"{name}{{{inner}}} {number(value)}")
        else:
            self.lines.append(f"{name} {number(value)}")

    def histogram(self, name: str, help_text: str, values: Iterable[float]) -> None:
        observed = sorted(values)
        self.family(name, "histogram", help_text)
        for bound in BUCKETS:
            count = sum(1 for v in observed if v <= bound)
            self.sample(f"{name}_bucket", count, (("le", number(bound)),))
        self.sample(f"{name}_bucket", len(observed), (("le", "+Inf"),))
        self.sample(f"{name}_sum", round(sum(observed), 3))
        self.sample(f"{name}_count", len(observed))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _unix(value: dt.datetime) -> float:
    """Seconds since the epoch of a naive UTC time."""
    return calendar.timegm(value.utctimetuple()) + value.microsecond / 1e6


def render(request: Request) -> str:
    project = project_of(request)
    out = Exposition()
    with api.open_state(project) as db:
        facts = [] if db is None else api.facts_cache(request).facts(db)
        landed: dict[str, int] = {}
        if db is not None:
            with db.engine.connect() as conn:
                query = sa.select(files.c.source, sa.func.count()).group_by(files.c.source)
                landed = {str(s): int(n) for s, n in conn.execute(query)}
        fresh = api.freshness_report(db, project)

    by_status = dict.fromkeys(api.RUN_STATUSES, 0)
    for f in facts:
        by_status[f.status] = by_status.get(f.status, 0) + 1
    out.family("headwater_runs_total", "counter", "Runs recorded in the state database, by status.")
    for status, count in by_status.items():
        out.sample("headwater_runs_total", count, (("status", status),))

    out.histogram(
        "headwater_run_duration_seconds",
        "Duration of finished runs (success or failed), in seconds.",
        [f.duration_seconds for f in facts if f.duration_seconds is not None],
    )

    read: dict[str, int] = {}
    loaded: dict[str, int] = {}
    quarantined: dict[tuple[str, str], int] = {}
    for f in facts:
        for source, (r, l_, _q) in f.rows.items():
            read[source] = read.get(source, 0) + r
            loaded[source] = loaded.get(source, 0) + l_
        for key, count in f.quarantined.items():
            quarantined[key] = quarantined.get(key, 0) + count
    sources = sorted(set(project.config.sources) | set(read) | set(landed))

    out.per_source(
        "headwater_rows_read_total", "Data lines read from a source, over all runs.", sources, read
    )
    out.per_source(
        "headwater_rows_loaded_total",
        "Rows of a source that passed the parser and every quarantine check, over all runs.",
        sources,
        loaded,
    )
    out.family(
        "headwater_rows_quarantined_total",
        "counter",
        "Rows of a source quarantined, by reason (parser rule or check name), over all runs.",
    )
    for (source, reason), count in sorted(quarantined.items()):
        out.sample(
            "headwater_rows_quarantined_total", count, (("source", source), ("reason", reason))
        )
    out.per_source(
        "headwater_files_landed_total",
        "Files landed in the raw zone, over all runs.",
        sources,
        landed,
    )

    out.family(
        "headwater_source_freshness_age_seconds",
        "gauge",
        "Seconds since the last file of the source was landed.",
    )
    for item in fresh:
        if item.age_seconds is not None:
            out.sample(
                "headwater_source_freshness_age_seconds",
                item.age_seconds,
                (("source", item.source),),
            )
    out.family(
        "headwater_source_overdue",
        "gauge",
        "1 when the last landing is older than twice the usual interval (24 h when unknown).",
    )
    for item in fresh:
        if item.last_landed_at is not None:
            out.sample("headwater_source_overdue", int(item.overdue), (("source", item.source),))

    successes = [f.finished_at for f in facts if f.status == "success" and f.finished_at]
    out.family(
        "headwater_last_success_timestamp_seconds",
        "gauge",
        "When the last successful run finished (Unix time).",
    )
    if successes:
        out.sample("headwater_last_success_timestamp_seconds", _unix(max(successes)))
    if facts:
        out.family(
            "headwater_last_run_timestamp_seconds",
            "gauge",
            "When the last run started (Unix time).",
        )
        out.sample("headwater_last_run_timestamp_seconds", _unix(facts[-1].started_at))
    return out.text()


@router.get(
    "/metrics",
    tags=["metrics"],
    summary="Prometheus metrics (text exposition format 0.0.4)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    return Response(render(request), media_type=CONTENT_TYPE)
