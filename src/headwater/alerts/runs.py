"""Alerts after a run: `failure`, `check`, and the `recovery` of causes a run clears.

Cause keys (the unit of the quiet period and of recovery):

| cause | opened by | closed by |
|---|---|---|
| `source:<name>` | a run that failed extracting or staging the source | a successful run |
| `model:<name>` | a run whose model failed (not on a check) | a successful run |
| `warehouse` | a run whose load failed | a successful run |
| `run` | a run that failed anywhere else (lock, state, killed) | a successful run |
| `config` | a run refused for an invalid project (`config_error`) | a successful run |
| `check:<model>/<check>` | an `error` check that failed | a run publishing the model; any success |

Where a run failed is read from its steps in the state database (the first
failed step, else the step still running when the run was stopped), so a run
killed by the scheduler gets the same cause as one that failed by itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from headwater.alerts import book
from headwater.alerts.channels import Channels, Delivery
from headwater.alerts.message import Alert
from headwater.alerts.notify import as_utc, link, occur, recover, recovery_alert
from headwater.errors import HeadwaterError
from headwater.project import Project
from headwater.state.db import StateDB, runs
from headwater.state.runs import run_steps

log = logging.getLogger("headwater.alerts")

PUBLISHED = ("committed", "already_committed")
STAGE_CAUSE = {"extract": "source", "stage": "source", "model": "model", "view": "model"}
RUN_KINDS = ("failure", "check")


@dataclass(frozen=True)
class StepRow:
    stage: str
    name: str
    batch: int | None
    status: str
    rows_in: int | None
    rows_out: int | None
    rows_quarantined: int | None
    error: str | None

    @property
    def label(self) -> str:
        return f"{self.stage} {self.name}" + (
            "" if self.batch is None else f" (batch {self.batch})"
        )

    @property
    def cause(self) -> str:
        if self.stage == "load":
            return "warehouse"
        return f"{STAGE_CAUSE.get(self.stage, self.stage)}:{self.name}"


def after_run(
    project: Project, summary: Mapping[str, Any], *, now: dt.datetime | None = None
) -> list[Delivery]:
    """Alerts for a finished (or killed, or crashed) run, given its summary.

    Never raises for a delivery or state problem: the run's outcome stands whatever
    happens here; problems are logged as warnings.
    """
    channels = Channels.of(project)
    if channels is None:
        return []
    try:
        db = StateDB.open(project.state_url)
    except HeadwaterError as exc:
        log.warning("alerts for run %s not evaluated: %s", summary.get("run_id"), exc)
        return []
    try:
        return _after_run(db, channels, project.config.name, summary, as_utc(now))
    except (HeadwaterError, SQLAlchemyError) as exc:
        log.warning("alerts for run %s not evaluated: %s", summary.get("run_id"), exc)
        return []
    finally:
        db.dispose()


def _after_run(
    db: StateDB, channels: Channels, project: str, summary: Mapping[str, Any], now: dt.datetime
) -> list[Delivery]:
    run_id = summary.get("run_id")
    run_id = int(run_id) if run_id is not None else None
    if run_id is None and summary.get("transient") and summary.get("status") != "success":
        # The run could not start (another run holds the lock): nothing failed yet.
        log.info("no alert: the run did not start (%s)", summary.get("error"))
        return []
    models: Mapping[str, Any] = summary.get("models") or {}
    open_now = book.open_entries(db, RUN_KINDS)
    out: list[Delivery] = []
    ok = summary.get("status") == "success"
    failed_checks = _failed_checks(models)
    if not ok:
        info = _run_info(db, run_id)
        check_models = {m for m, _ in failed_checks}
        failure = _failure(summary, info, check_models, channels.wants("check"))
        if failure is not None and channels.wants("failure"):
            alert = _failure_alert(channels, project, run_id, summary, info, failure, now)
            out += occur(db, channels, open_now.get(alert.cause), alert, "failure")
    if channels.wants("check"):
        for model, check in failed_checks:
            alert = _check_alert(channels, project, run_id, summary, model, check, now)
            out += occur(db, channels, open_now.get(alert.cause), alert, "check")
    published = {m for m, v in models.items() if v.get("status") in PUBLISHED}
    what = "run" if run_id is None else f"run {run_id}"
    for cause, entry in open_now.items():
        checked = cause.removeprefix("check:").split("/")[0] if entry.kind == "check" else None
        if ok:
            message = f"{cause} is fine again: {what} succeeded"
        elif checked in published:
            message = f"{cause} is fine again: {what} published model {checked}"
        else:
            continue
        alert = recovery_alert(
            channels,
            project,
            entry,
            now=now,
            message=message,
            link_path="/runs" if run_id is None else f"/runs/{run_id}",
            run_id=run_id,
        )
        out += recover(db, channels, entry, alert)
    return out


def _failed_checks(models: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        (name, check)
        for name, model in models.items()
        for check in model.get("checks") or []
        if check.get("severity") == "error" and int(check.get("failed") or 0) > 0
    ]


@dataclass(frozen=True)
class RunInfo:
    trigger: str | None
    started_at: dt.datetime | None
    steps: list[StepRow]


def _run_info(db: StateDB, run_id: int | None) -> RunInfo:
    if run_id is None:
        return RunInfo(None, None, [])
    with db.engine.connect() as conn:
        run = conn.execute(
            sa.select(runs.c.trigger, runs.c.started_at).where(runs.c.run_id == run_id)
        ).first()
    found = [
        StepRow(
            stage=str(r["stage"]),
            name=str(r["name"]),
            batch=r["batch"],
            status=str(r["status"]),
            rows_in=r["rows_in"],
            rows_out=r["rows_out"],
            rows_quarantined=r["rows_quarantined"],
            error=r["error"],
        )
        for r in run_steps(db, run_id)
    ]
    return RunInfo(run[0] if run else None, run[1] if run else None, found)


@dataclass(frozen=True)
class Cause:
    key: str
    step: StepRow | None


def _failure(
    summary: Mapping[str, Any], info: RunInfo, check_models: set[str], checks_sent: bool
) -> Cause | None:
    """Where the run failed; None when its only failures are checks sent as `check` alerts."""
    if summary.get("status") == "config_error":
        return Cause("config", None)
    for row in info.steps:
        if row.status == "failed" and not (
            row.cause.startswith("model:") and row.name in check_models
        ):
            return Cause(row.cause, row)
    running = [r for r in info.steps if r.status in ("running", "abandoned")]
    if running:
        return Cause(running[-1].cause, running[-1])
    models: Mapping[str, Any] = summary.get("models") or {}
    for name, model in models.items():
        if model.get("status") == "failed" and name not in check_models:
            return Cause(f"model:{name}", None)
    if (summary.get("warehouse") or {}).get("status") == "failed":
        return Cause("warehouse", None)
    if check_models:
        return None if checks_sent else Cause(f"model:{sorted(check_models)[0]}", None)
    return Cause("run", None)


def _failure_alert(
    channels: Channels,
    project: str,
    run_id: int | None,
    summary: Mapping[str, Any],
    info: RunInfo,
    cause: Cause,
    now: dt.datetime,
) -> Alert:
    step = cause.step
    what = "run" if run_id is None else f"run {run_id}"
    where = step.label if step is not None else cause.key.replace(":", " ")
    stopped = step is not None and step.status != "failed"
    message = f"{what} {'was stopped during' if stopped else 'failed at'} {where}"
    context: dict[str, str] = {"Where": where}
    rows = _rows(summary, cause, step)
    if rows:
        context["Rows"] = rows
    tries = [
        int(a.get("attempt") or 0)
        for a in summary.get("attempts") or []
        if step is not None
        and a.get("step") == step.stage
        and str(a.get("name")).split(".")[0] == step.name
    ]
    if tries and max(tries) > 1:
        context["Attempts"] = str(max(tries))
    if info.trigger:
        context["Trigger"] = info.trigger
    if info.started_at is not None:
        context["Started"] = info.started_at.replace(microsecond=0).isoformat() + "Z"
    error = summary.get("error") or (step.error if step is not None else None)
    return Alert(
        event="failure",
        cause=cause.key,
        project=project,
        message=message,
        link=link(channels, "/runs" if run_id is None else f"/runs/{run_id}"),
        time=now,
        run_id=run_id,
        error=str(error) if error else None,
        context=context,
    )


def _rows(summary: Mapping[str, Any], cause: Cause, step: StepRow | None) -> str:
    kind, _, name = cause.key.partition(":")
    if kind == "source":
        s = (summary.get("sources") or {}).get(name)
        if s:
            return (
                f"{s.get('files_found', 0)} files found, {s.get('files_new', 0)} new, "
                f"{s.get('rows_read', 0)} rows read, {s.get('rows_quarantined', 0)} quarantined"
            )
    if kind == "model":
        m = (summary.get("models") or {}).get(name)
        if m:
            return f"{m.get('rows_written', 0)} written, {m.get('rows_quarantined', 0)} quarantined"
    if step is not None:
        parts = [
            f"{label} {value}"
            for label, value in (
                ("in", step.rows_in),
                ("out", step.rows_out),
                ("quarantined", step.rows_quarantined),
            )
            if value is not None
        ]
        return ", ".join(parts)
    return ""


def _check_alert(
    channels: Channels,
    project: str,
    run_id: int | None,
    summary: Mapping[str, Any],
    model: str,
    check: Mapping[str, Any],
    now: dt.datetime,
) -> Alert:
    name, failed = str(check.get("name")), int(check.get("failed") or 0)
    what = "" if run_id is None else f" in run {run_id}"
    status = (summary.get("models") or {}).get(model, {}).get("status")
    message = f"error check {name} on model {model} failed for {failed} rows{what}" + (
        "; the model was not published" if status == "failed" else ""
    )
    context = {"Model": model, "Check": name, "Failing rows": str(failed)}
    batches = summary.get("batches") or []
    if batches:
        context["Batches"] = ", ".join(str(b) for b in batches)
    error = (summary.get("models") or {}).get(model, {}).get("error")
    return Alert(
        event="check",
        cause=f"check:{model}/{name}",
        project=project,
        message=message,
        link=link(channels, "/runs" if run_id is None else f"/runs/{run_id}"),
        time=now,
        run_id=run_id,
        error=str(error) if error else None,
        context=context,
    )
