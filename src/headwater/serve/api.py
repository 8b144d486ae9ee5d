"""The JSON API of `headwater serve` (`/health`, `/api/*`), and the read side behind it.

Everything the operations pages, the API and `/metrics` show comes from here: run
records of the state database (`hw_runs`, `hw_steps`, `hw_files`), freshness per source,
and the tables of the processed zone and of a DuckDB warehouse. Each request opens the
state database and closes it again, so the server always shows what the last run wrote.

No secret leaves through this module: configuration URLs are never returned, and every
string taken from the state database (errors, warehouse locations) goes through
`Secrets.scrub`, which replaces the project's secret values (the PII secret, passwords
of database URLs, S3 keys) with `***`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, overload
from urllib.parse import unquote, urlsplit

import duckdb
import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy.exc import SQLAlchemyError

from headwater.errors import HeadwaterError
from headwater.lake.tables import Tables
from headwater.project import Project
from headwater.serve.web import project_of
from headwater.state.db import StateDB, files, runs, steps, watermarks
from headwater.state.db import utcnow as _state_utcnow

router = APIRouter()

RUN_STATUSES = ("running", "success", "failed", "abandoned")
FINISHED = ("success", "failed", "abandoned")
# Freshness: a source is overdue when its last landing is older than twice its usual
# interval between landings (at least MIN_OVERDUE_AFTER), or than UNKNOWN_OVERDUE_AFTER
# when it has landed only once.
UNKNOWN_OVERDUE_AFTER = dt.timedelta(hours=24)
MIN_OVERDUE_AFTER = dt.timedelta(hours=1)
INTERVALS_KEPT = 10  # the usual interval is the median of the last 10
MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words


def utcnow() -> dt.datetime:
    """Naive UTC now (a module attribute, so tests can move the clock)."""
    return _state_utcnow()


@overload
def aware(value: dt.datetime) -> dt.datetime: ...
@overload
def aware(value: dt.datetime | None) -> dt.datetime | None: ...
def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A naive UTC time of the state database as an aware one (JSON shows it with `Z`)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# ------------------------------------------------------------------ secrets


class Secrets:
    """The secret values of a project's configuration, to blank out of any text shown.

    A secret database URL becomes the URL with `***` for its password; any other secret
    value (the PII secret, a password, an S3 key) becomes `***`.
    """

    def __init__(self, values: Iterable[str | tuple[str, str]]) -> None:
        pairs: dict[str, str] = {}
        for value in values:
            secret, replacement = value if isinstance(value, tuple) else (value, "***")
            if len(secret) >= MIN_SECRET_LENGTH:
                pairs.setdefault(secret, replacement)
        self.pairs = sorted(pairs.items(), key=lambda item: len(item[0]), reverse=True)

    @property
    def values(self) -> list[str]:
        return [secret for secret, _ in self.pairs]

    @classmethod
    def of(cls, project: Project) -> Secrets:
        values: list[str | tuple[str, str]] = []
        _collect(project.config, values)
        return cls(values)

    def text(self, value: str | None) -> str | None:
        if value is None:
            return None
        for secret, replacement in self.pairs:
            if secret in value:
                value = value.replace(secret, replacement)
        return value

    def scrub(self, value: Any) -> Any:
        """`value` (JSON-like data) with every secret replaced in every string."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value


def _url_password(text: str) -> str | None:
    if "://" not in text:
        return None
    try:
        password = urlsplit(text).password
    except ValueError:
        return None
    return password or None


def _collect(node: Any, out: list[str | tuple[str, str]]) -> None:
    """Secret values under a configuration object: `SecretStr`s and URL passwords."""
    if isinstance(node, SecretStr | str):
        text = node.get_secret_value() if isinstance(node, SecretStr) else node
        password = _url_password(text)
        if password:
            out.extend([password, unquote(password)])
            if isinstance(node, SecretStr):
                out.append((text, text.replace(f":{password}@", ":***@", 1)))
        elif isinstance(node, SecretStr):
            out.append(text)
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            _collect(getattr(node, name), out)
    elif isinstance(node, dict):
        for value in node.values():
            _collect(value, out)
    elif isinstance(node, list | tuple):
        for value in node:
            _collect(value, out)


# ----------------------------------------------------------- state database


@contextmanager
def open_state(project: Project) -> Iterator[StateDB | None]:
    """The project's state database, or None when no run has created it yet."""
    if not StateDB.exists(project.state_url):
        yield None
        return
    db = StateDB.open(project.state_url, create=False)
    try:
        yield db
    finally:
        db.dispose()


# --------------------------------------------------------------------- runs


class SourceRows(BaseModel):
    """What one run did with one source."""

    files_new: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantined_by_reason: dict[str, int] = Field(
        default_factory=dict, description="rows_quarantined by rule (parser rule or check name)"
    )


class WarehouseRun(BaseModel):
    target: str | None = None
    status: str | None = Field(default=None, description="loaded, unchanged or failed")
    error: str | None = None


class Run(BaseModel):
    """One run, from `hw_runs` and its run summary."""

    run_id: int
    trigger: str
    status: str = Field(description="running, success, failed or abandoned")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_seconds: float | None
    error: str | None = Field(description="why the run failed; null on success")
    rows_read: int = Field(description="sum over sources")
    rows_loaded: int = Field(description="sum over sources")
    rows_quarantined: int = Field(description="sum over sources")
    sources: dict[str, SourceRows]
    warehouse: WarehouseRun | None


class Check(BaseModel):
    name: str
    severity: str = Field(description="warn, quarantine or error")
    failed: int


class ModelRun(BaseModel):
    """What one run did with one model (`models.<model>` of the run summary)."""

    status: str
    materialized: str
    batches: list[int] = []
    rows_written: int = 0
    rows_quarantined: int = 0
    checks: list[Check] = []
    error: str | None = None
    seconds: float = 0.0


class Step(BaseModel):
    """One step of a run (`hw_steps`): a source extracted or staged, a model, the load."""

    step_id: int
    stage: str
    name: str
    batch: int | None
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    seconds: float | None
    rows_in: int | None
    rows_out: int | None
    rows_quarantined: int | None
    detail: dict[str, Any] | None
    error: str | None


class WarehouseTableLoad(BaseModel):
    mode: str | None = None
    rows_loaded: int = 0
    rows_in_table: int | None = None
    columns_added: list[str] = []


class WarehouseLoad(WarehouseRun):
    location: str | None = None
    tables: dict[str, WarehouseTableLoad] = {}


class RunDetail(Run):
    """A run with everything its summary and steps say."""

    batches: list[int]
    recovered_runs: list[int]
    error_detail: str | None = Field(
        description="the recorded error when it says more than `error` (a traceback)"
    )
    source_files: dict[str, dict[str, Any]] = Field(
        description="per source, the file counts of the run summary"
    )
    models: dict[str, ModelRun] = Field(description="in DAG order")
    load: WarehouseLoad | None
    steps: list[Step]


class RunList(BaseModel):
    runs: list[Run] = Field(description="newest first")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _duration(row: Any, summary: dict[str, Any]) -> float | None:
    value = summary.get("duration_seconds")
    if isinstance(value, int | float):
        return float(value)
    if row.finished_at is not None and row.status != "abandoned":
        return round(float((row.finished_at - row.started_at).total_seconds()), 3)
    return None


def _summary_time(summary: dict[str, Any], key: str) -> dt.datetime | None:
    """A time of the run summary (the one `headwater run --json` printed), when it has one."""
    value = summary.get(key)
    if not isinstance(value, str):
        return None
    try:
        return aware(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _short_error(row: Any, summary: dict[str, Any]) -> str | None:
    """The run's error in one message: the summary's, else the record's last line."""
    error = summary.get("error") or row.error
    if not error:
        return None
    text = str(error).strip()
    if "Traceback (most recent call last)" in text:
        text = text.splitlines()[-1]
    return text


def _source_rows(summary: dict[str, Any]) -> dict[str, SourceRows]:
    out = {}
    for name, s in (summary.get("sources") or {}).items():
        reasons = s.get("quarantined_by_reason") or {}
        out[name] = SourceRows(
            files_new=_int(s.get("files_new")),
            rows_read=_int(s.get("rows_read")),
            rows_loaded=_int(s.get("rows_loaded")),
            rows_quarantined=_int(s.get("rows_quarantined")),
            quarantined_by_reason={str(k): _int(v) for k, v in reasons.items()},
        )
    return out


def run_of(row: Any, secrets: Secrets) -> Run:
    summary = secrets.scrub(row.summary or {})
    sources = _source_rows(summary)
    wh = summary.get("warehouse")
    return Run(
        run_id=row.run_id,
        trigger=row.trigger,
        status=row.status,
        started_at=_summary_time(summary, "started_at") or aware(row.started_at),
        finished_at=_summary_time(summary, "finished_at") or aware(row.finished_at),
        duration_seconds=_duration(row, summary),
        error=secrets.text(_short_error(row, summary)),
        rows_read=sum(s.rows_read for s in sources.values()),
        rows_loaded=sum(s.rows_loaded for s in sources.values()),
        rows_quarantined=sum(s.rows_quarantined for s in sources.values()),
        sources=sources,
        warehouse=None
        if not isinstance(wh, dict)
        else WarehouseRun(target=wh.get("target"), status=wh.get("status"), error=wh.get("error")),
    )


def list_runs(
    db: StateDB,
    secrets: Secrets,
    *,
    limit: int = 50,
    status: str | None = None,
    before: int | None = None,
) -> list[Run]:
    query = sa.select(runs).order_by(runs.c.run_id.desc()).limit(limit)
    if status is not None:
        query = query.where(runs.c.status == status)
    if before is not None:
        query = query.where(runs.c.run_id < before)
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [run_of(r, secrets) for r in rows]


def _step(row: Any, secrets: Secrets) -> Step:
    seconds = (
        None
        if row.finished_at is None
        else round((row.finished_at - row.started_at).total_seconds(), 3)
    )
    return Step(
        step_id=row.step_id,
        stage=row.stage,
        name=row.name,
        batch=row.batch,
        status=row.status,
        started_at=aware(row.started_at),
        finished_at=aware(row.finished_at),
        seconds=seconds,
        rows_in=row.rows_in,
        rows_out=row.rows_out,
        rows_quarantined=row.rows_quarantined,
        detail=secrets.scrub(row.detail) if isinstance(row.detail, dict) else None,
        error=secrets.text(row.error),
    )


def get_run(db: StateDB, secrets: Secrets, run_id: int) -> RunDetail | None:
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            return None
        step_rows = conn.execute(
            sa.select(steps).where(steps.c.run_id == run_id).order_by(steps.c.step_id)
        ).all()
    base = run_of(row, secrets)
    summary = secrets.scrub(row.summary or {})
    recorded = secrets.text(str(row.error).strip()) if row.error else None
    models = {
        name: ModelRun.model_validate(m)
        for name, m in (summary.get("models") or {}).items()
        if isinstance(m, dict)
    }
    wh = summary.get("warehouse")
    file_keys = ("files_found", "files_new", "files_unchanged", "files_duplicate", "files_read")
    return RunDetail(
        **base.model_dump(),
        batches=[_int(b) for b in summary.get("batches") or []],
        recovered_runs=[_int(b) for b in summary.get("recovered_runs") or []],
        error_detail=recorded if recorded and recorded != base.error else None,
        source_files={
            name: {k: s.get(k) for k in file_keys if k in s}
            | {"duplicates": s.get("duplicates") or []}
            for name, s in (summary.get("sources") or {}).items()
        },
        models=models,
        load=WarehouseLoad.model_validate(wh) if isinstance(wh, dict) else None,
        steps=[_step(r, secrets) for r in step_rows],
    )


def check_history(
    db: StateDB, secrets: Secrets, *, limit: int = 50, model: str | None = None
) -> list[dict[str, Any]]:
    """Per run (newest first) and model, the checks it ran: name, severity, failed rows."""
    query = (
        sa.select(runs.c.run_id, runs.c.status, runs.c.started_at, runs.c.summary)
        .order_by(runs.c.run_id.desc())
        .limit(limit)
    )
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        models = (secrets.scrub(row.summary or {}).get("models")) or {}
        for name, m in models.items():
            if model is not None and name != model:
                continue
            for check in m.get("checks") or []:
                out.append(
                    {
                        "run_id": row.run_id,
                        "run_status": row.status,
                        "started_at": aware(row.started_at),
                        "model": name,
                        "model_status": m.get("status"),
                        "check": check.get("name"),
                        "severity": check.get("severity"),
                        "failed": _int(check.get("failed")),
                    }
                )
    return out


# ---------------------------------------------------------------- run facts


@dataclass(frozen=True)
class RunFacts:
    """What `/metrics` needs of one run (finished runs never change, so they are cached)."""

    run_id: int
    status: str
    duration_seconds: float | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    rows: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # read, loaded, quar.
    quarantined: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, reason)


class FactsCache:
    """Run facts by run id, kept across requests for finished runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished: dict[int, RunFacts] = {}

    def _cached(self, head: Any) -> RunFacts | None:
        """The cached facts of a run, unless the state database was replaced since."""
        cached = self.finished.get(head.run_id)
        return cached if cached is not None and cached.started_at == head.started_at else None

    def facts(self, db: StateDB) -> list[RunFacts]:
        with db.engine.connect() as conn:
            heads = conn.execute(
                sa.select(
                    runs.c.run_id, runs.c.status, runs.c.started_at, runs.c.finished_at
                ).order_by(runs.c.run_id)
            ).all()
            with self.lock:
                missing = [h.run_id for h in heads if not self._cached(h)]
            fetched: dict[int, Any] = {}
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                query = sa.select(runs).where(runs.c.run_id.in_(chunk))
                fetched.update({r.run_id: r for r in conn.execute(query)})
        out = []
        with self.lock:
            for head in heads:
                cached = self._cached(head)
                if cached is None:
                    row = fetched.get(head.run_id)
                    if row is None:  # deleted meanwhile
                        continue
                    cached = _facts(row)
                    if row.status in FINISHED:
                        self.finished[row.run_id] = cached
                out.append(cached)
        return out


def _facts(row: Any) -> RunFacts:
    summary = row.summary or {}
    sources = _source_rows(summary)
    return RunFacts(
        run_id=row.run_id,
        status=row.status,
        duration_seconds=_duration(row, summary) if row.status in ("success", "failed") else None,
        started_at=row.started_at,
        finished_at=row.finished_at,
        rows={n: (s.rows_read, s.rows_loaded, s.rows_quarantined) for n, s in sources.items()},
        quarantined={
            (n, reason): count
            for n, s in sources.items()
            for reason, count in s.quarantined_by_reason.items()
        },
    )


def facts_cache(request: Request) -> FactsCache:
    cache = getattr(request.app.state, "headwater_run_facts", None)
    if not isinstance(cache, FactsCache):
        cache = FactsCache()
        request.app.state.headwater_run_facts = cache
    return cache


# ---------------------------------------------------------------- freshness


class SourceFreshness(BaseModel):
    """How recent one source's data is, from the file ledger (`hw_files`)."""

    source: str
    kind: str = Field(description="files or sql; unknown for a source no longer configured")
    files: int = Field(description="files (or extracted tables) landed, all runs")
    rows_read: int | None
    last_landed_at: dt.datetime | None = Field(description="when its last file was landed")
    newest_data_at: dt.datetime | None = Field(
        description="files sources: modification time of the newest file; sql sources: the "
        "highest cursor timestamp extracted (its watermark)"
    )
    age_seconds: float | None = Field(description="now - last_landed_at")
    usual_interval_seconds: float | None = Field(
        description="median of the last intervals between runs that landed its files"
    )
    overdue_after_seconds: float
    overdue: bool


def _timestamp(value: str) -> dt.datetime | None:
    """A watermark as naive UTC, when it is a timestamp (not a number or other text)."""
    if not any(c in value for c in "-:T ") or value.lstrip("-").replace(".", "").isdigit():
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo is None else when.astimezone(dt.UTC).replace(tzinfo=None)


def freshness_report(
    db: StateDB | None, project: Project, now: dt.datetime | None = None
) -> list[SourceFreshness]:
    """Freshness of every configured source (and of any other source in the ledger)."""
    now = now or utcnow()
    landings: dict[str, dict[int, dt.datetime]] = {}
    totals: dict[str, tuple[int, int | None, dt.datetime | None]] = {}
    marks: dict[str, dt.datetime] = {}
    if db is not None:
        with db.engine.connect() as conn:
            for source, batch, first in conn.execute(
                sa.select(files.c.source, files.c.batch, sa.func.min(files.c.landed_at)).group_by(
                    files.c.source, files.c.batch
                )
            ):
                by_run = landings.setdefault(source, {})
                run = int(batch) // 1000
                by_run[run] = min(first, by_run.get(run, first))
            for source, count, rows_read, newest in conn.execute(
                sa.select(
                    files.c.source,
                    sa.func.count(),
                    sa.func.sum(files.c.rows_read),
                    sa.func.max(files.c.modified_at),
                ).group_by(files.c.source)
            ):
                totals[source] = (int(count), None if rows_read is None else int(rows_read), newest)
            for source, value in conn.execute(sa.select(watermarks.c.source, watermarks.c.value)):
                when = _timestamp(value)
                if when is not None and (source not in marks or when > marks[source]):
                    marks[source] = when
    configured = project.config.sources
    out = []
    for name in [*configured, *sorted(set(totals) - set(configured))]:
        times = sorted(landings.get(name, {}).values())
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        usual = statistics.median(gaps[-INTERVALS_KEPT:]) if gaps else None
        after = (
            UNKNOWN_OVERDUE_AFTER.total_seconds()
            if usual is None
            else max(2 * usual, MIN_OVERDUE_AFTER.total_seconds())
        )
        last = times[-1] if times else None
        age = None if last is None else max((now - last).total_seconds(), 0.0)
        count, rows_read, newest = totals.get(name, (0, None, None))
        if name in marks and (newest is None or marks[name] > newest):
            newest = marks[name]
        out.append(
            SourceFreshness(
                source=name,
                kind=configured[name].kind if name in configured else "unknown",
                files=count,
                rows_read=rows_read,
                last_landed_at=aware(last),
                newest_data_at=aware(newest),
                age_seconds=None if age is None else round(age, 3),
                usual_interval_seconds=None if usual is None else round(usual, 3),
                overdue_after_seconds=after,
                overdue=age is not None and age > after,
            )
        )
    return out


# ------------------------------------------------------------------- tables


class Column(BaseModel):
    name: str
    type: str


class LakeTable(BaseModel):
    """A processed-zone Iceberg table (a source or a stored model)."""

    name: str
    rows: int | None = Field(description="total-records of the current snapshot's summary")
    snapshots: int
    current_snapshot_id: int | None
    current_snapshot_at: dt.datetime | None
    columns: list[Column]


class WarehouseTable(BaseModel):
    name: str
    rows: int
    columns: list[Column]


class WarehouseTables(BaseModel):
    target: str = Field(description="duckdb, postgres or redshift")
    tables: list[WarehouseTable] | None = Field(
        description="the DuckDB warehouse's tables; null for other targets (not queried)"
    )
    error: str | None = Field(default=None, description="why the tables could not be listed")


class TableList(BaseModel):
    processed: list[LakeTable]
    warehouse: WarehouseTables


def lake_tables(project: Project) -> list[LakeTable]:
    if not StateDB.exists(project.state_url):
        return []
    tables = Tables.open(project.state_url, project.open_store())
    try:
        out = []
        for name in tables.names():
            table = tables.load(name)
            snap = table.current_snapshot()
            rows = None
            if snap is not None and snap.summary is not None:
                total = snap.summary.additional_properties.get("total-records")
                rows = int(total) if total is not None else None
            out.append(
                LakeTable(
                    name=name,
                    rows=rows if snap is not None else 0,
                    snapshots=len(table.snapshots()),
                    current_snapshot_id=None if snap is None else int(snap.snapshot_id),
                    current_snapshot_at=None
                    if snap is None
                    else dt.datetime.fromtimestamp(snap.timestamp_ms / 1000, dt.UTC),
                    columns=[
                        Column(name=f.name, type=str(f.field_type)) for f in table.schema().fields
                    ],
                )
            )
        return out
    finally:
        tables.close()


def warehouse_tables(project: Project, secrets: Secrets) -> WarehouseTables:
    target = project.config.warehouse.type
    if target != "duckdb":
        return WarehouseTables(target=target, tables=None)
    path = project.warehouse_path
    if not path.exists():
        return WarehouseTables(target=target, tables=[])
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:  # a run holds the file for writing
        return WarehouseTables(
            target=target, tables=None, error=secrets.text(f"warehouse not readable now: {exc}")
        )
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                "AND NOT starts_with(table_name, '_headwater') ORDER BY table_name"
            ).fetchall()
        ]
        out = []
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            count = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()
            columns = conn.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index",
                [name],
            ).fetchall()
            out.append(
                WarehouseTable(
                    name=name,
                    rows=int(count[0]) if count else 0,
                    columns=[Column(name=c, type=t) for c, t in columns],
                )
            )
        return WarehouseTables(target=target, tables=out)
    finally:
        conn.close()


# ------------------------------------------------------------------- routes


class ErrorBody(BaseModel):
    status: int
    message: str


class ErrorResponse(BaseModel):
    """The shape of every API error (400, 401, 404, 422, 500, 503)."""

    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No valid access token"},
    422: {"model": ErrorResponse, "description": "Invalid parameter"},
    500: {"model": ErrorResponse, "description": "Internal error"},
}


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    project: str
    state: Literal["ok", "missing", "unavailable"] = Field(
        description="missing: no run has created the state database yet"
    )


@router.get(
    "/health",
    response_model=Health,
    tags=["api"],
    summary="Liveness and state database check",
    responses={503: {"model": Health, "description": "state database unreachable"}},
)
def health(request: Request, response: Response) -> Health:
    project = project_of(request)
    name = project.config.name
    if not StateDB.exists(project.state_url):
        return Health(status="ok", project=name, state="missing")
    try:
        with open_state(project) as db:
            assert db is not None
            with db.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
    except (SQLAlchemyError, HeadwaterError):
        response.status_code = 503
        return Health(status="degraded", project=name, state="unavailable")
    return Health(status="ok", project=name, state="ok")


@router.get(
    "/api/runs",
    response_model=RunList,
    tags=["api"],
    summary="Recent runs, newest first",
    responses=ERRORS,
)
def api_runs(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many runs")] = 50,
    status: Annotated[
        Literal["running", "success", "failed", "abandoned"] | None,
        Query(description="only runs with this status"),
    ] = None,
    before: Annotated[
        int | None, Query(ge=1, description="only runs with a smaller run_id (paging)")
    ] = None,
) -> RunList:
    project = project_of(request)
    with open_state(project) as db:
        if db is None:
            return RunList(runs=[])
        return RunList(
            runs=list_runs(db, Secrets.of(project), limit=limit, status=status, before=before)
        )


@router.get(
    "/api/runs/{run_id}",
    response_model=RunDetail,
    tags=["api"],
    summary="One run: summary, models, checks, load and steps",
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No such run"}},
)
def api_run(request: Request, run_id: int) -> RunDetail:
    project = project_of(request)
    with open_state(project) as db:
        detail = None if db is None else get_run(db, Secrets.of(project), run_id)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return detail


@router.get(
    "/api/freshness",
    response_model=list[SourceFreshness],
    tags=["api"],
    summary="Freshness per source, overdue ones flagged",
    responses=ERRORS,
)
def api_freshness(request: Request) -> list[SourceFreshness]:
    project = project_of(request)
    with open_state(project) as db:
        return freshness_report(db, project)


@router.get(
    "/api/tables",
    response_model=TableList,
    tags=["api"],
    summary="Processed-zone tables, and the tables of a DuckDB warehouse",
    responses=ERRORS,
)
def api_tables(request: Request) -> TableList:
    project = project_of(request)
    secrets = Secrets.of(project)
    return TableList(processed=lake_tables(project), warehouse=warehouse_tables(project, secrets))
