"""The scheduler: triggers in, at most one run per project at a time, results out.

Each scheduled project is a *pipeline*. Triggers add a reason to the pipeline's pending
run; while a run is going, whatever fires is coalesced into the one run that follows it.
Cron expressions fire once per due time; file arrivals pass through a debounce window so
a burst of files makes a few runs, not one per file; `after` triggers fire when a run of
another pipeline succeeds. Runs happen in child processes (`worker.py`) with the
project's `schedule.timeout_minutes`; a run still going then is killed and recorded as
failed.

`Scheduler.poll()` is one pass over all of this and returns how long it may sleep; the
loop thread calls it, tests call it directly with a hand-moved `Clock`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.connection
import multiprocessing.queues
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headwater.config import FilesSource
from headwater.config_schedule import AfterTrigger, CronTrigger, FilesTrigger
from headwater.errors import LockHeldError
from headwater.project import Project
from headwater.schedule import worker
from headwater.schedule.triggers import Clock, CronSchedule, Debounce
from headwater.schedule.worker import RunHandle, RunRequest

log = logging.getLogger("headwater.schedule")

IDLE_WAKE = 1.0  # seconds between passes when nothing is due sooner
RETRY_PAUSE = 30.0  # after a run that could not start (lock held elsewhere, state down)


@dataclass
class Pending:
    reasons: list[str] = field(default_factory=list)
    sources: set[str] | None = field(default_factory=set)  # None: every source

    def add(self, reason: str, sources: list[str] | None) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        if sources is None or self.sources is None:
            self.sources = None
        else:
            self.sources |= set(sources)

    @property
    def trigger(self) -> str:
        text = "+".join(self.reasons)
        return text if len(text) <= 32 else text[:31] + "…"


@dataclass
class Pipeline:
    name: str
    project: Project
    crons: list[tuple[CronSchedule, CronTrigger]]
    files: list[tuple[Debounce, FilesTrigger]]
    afters: list[AfterTrigger]
    timeout: float
    pending: Pending | None = None
    running: RunHandle | None = None
    runs_started: int = 0
    last: dict[str, Any] | None = None
    not_before: float = 0.0


@dataclass(frozen=True)
class RunEvent:
    """What the scheduler did, for callbacks (tests, the bench, the UI)."""

    kind: str  # started | finished
    pipeline: str
    trigger: str
    at: float  # time.monotonic()
    result: dict[str, Any] | None = None


class Scheduler:
    def __init__(
        self,
        projects: list[Project],
        *,
        clock: Clock | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.on_event = on_event
        self.pipelines: dict[str, Pipeline] = {}
        for project in projects:
            self._add(project)
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = False  # no trigger fires and no run starts any more

    def _add(self, project: Project) -> None:
        config = project.config
        name = config.name
        if name in self.pipelines:
            raise ValueError(f"two scheduled projects are named {name!r}")
        crons, files, afters = [], [], []
        for trigger in config.schedule.triggers:
            if isinstance(trigger, CronTrigger):
                crons.append((CronSchedule(trigger.cron, trigger.timezone), trigger))
            elif isinstance(trigger, FilesTrigger):
                files.append((Debounce(trigger.settle_seconds, trigger.max_wait_seconds), trigger))
            elif isinstance(trigger, AfterTrigger):
                afters.append(trigger)
        self.pipelines[name] = Pipeline(
            name, project, crons, files, afters, config.schedule.timeout_minutes * 60
        )

    # ----------------------------------------------------------- trigger side

    def fire(self, name: str, reason: str, sources: list[str] | None = None) -> None:
        """Ask for a run of pipeline `name` (coalesced with any already pending)."""
        with self._lock:
            pipeline = self.pipelines[name]
            if pipeline.pending is None:
                pipeline.pending = Pending()
            pipeline.pending.add(reason, sources)
        log.info("%s: %s trigger", name, reason, extra={"project": name})
        self._wake.set()

    def arrived(self, name: str, index: int, names: set[str]) -> None:
        """Files arrived for the files trigger `index` of pipeline `name`."""
        with self._lock:
            debounce = self.pipelines[name].files[index][0]
            debounce.arrived(time.monotonic(), names)
        self._wake.set()

    # ----------------------------------------------------------------- a pass

    def poll(self) -> float:
        """Fire what is due, reap finished runs, start pending ones. Seconds to sleep."""
        self._wake.clear()
        now, mono = self.clock.now(), time.monotonic()
        sleep = IDLE_WAKE
        with self._lock:
            for pipeline in self.pipelines.values():
                if self._stopping:
                    break
                for cron, trigger in pipeline.crons:
                    if cron.due(now):
                        self.fire(pipeline.name, "cron", trigger.sources)
                for debounce, files in pipeline.files:
                    if debounce.ready(mono):
                        names = debounce.take()
                        log.info(
                            "%s: %d file(s) arrived in %s",
                            pipeline.name,
                            len(names),
                            files.files,
                            extra={"project": pipeline.name},
                        )
                        self.fire(pipeline.name, f"files:{files.files}", files.sources)
                    wake = debounce.wake_in(mono)
                    if wake is not None:
                        sleep = min(sleep, wake)
            for pipeline in self.pipelines.values():
                if pipeline.running is not None:
                    self._watch_run(pipeline, mono)
                if (
                    pipeline.running is None
                    and pipeline.pending is not None
                    and mono >= pipeline.not_before
                    and not self._stopping
                ):
                    self._start(pipeline)
        return max(sleep, 0.01)

    def _start(self, pipeline: Pipeline) -> None:
        pending = pipeline.pending
        assert pending is not None
        pipeline.pending = None
        sources = None if pending.sources is None else tuple(sorted(pending.sources))
        if sources == ():
            sources = None
        request = RunRequest(str(pipeline.project.root), pending.trigger, sources)
        pipeline.running = handle = worker.start(request)
        pipeline.runs_started += 1
        sentinel = handle.process.sentinel

        def wake_when_done() -> None:  # wake the loop the moment the run's process ends
            multiprocessing.connection.wait([sentinel])
            self.wake()

        threading.Thread(target=wake_when_done, name=f"{pipeline.name} run", daemon=True).start()
        log.info(
            "%s: run started (%s)", pipeline.name, pending.trigger, extra={"project": pipeline.name}
        )
        self._emit(RunEvent("started", pipeline.name, pending.trigger, time.monotonic()))

    def _watch_run(self, pipeline: Pipeline, mono: float) -> None:
        handle = pipeline.running
        assert handle is not None
        if not handle.finished():
            if mono - handle.started <= pipeline.timeout:
                return
            handle.kill()
            handle.finished()
            minutes = pipeline.timeout / 60
            result = handle.result or self._stopped_from_outside(  # a result: it was alerting
                pipeline, handle, f"timed out after {minutes:g} minutes; the run was stopped"
            )
        elif handle.result is None:
            code = handle.process.exitcode
            result = self._stopped_from_outside(
                pipeline, handle, f"the run's process ended without a result (exit code {code})"
            )
        else:
            result = handle.result
        pipeline.running = None
        pipeline.last = result
        status = result.get("status")
        log.info(
            "%s: run %s %s",
            pipeline.name,
            result.get("run_id", "-"),
            status,
            extra={"project": pipeline.name},
        )
        if status != "success" and not result.get("alerted"):
            # The run's process could not alert (its project file broke, it died).
            result["alerted"] = True
            self._alert(pipeline.project, result)
        if status != "success" and result.get("transient"):
            # Failed before doing anything (another process holds the run lock, the state
            # database did not answer): the same trigger again, after a pause.
            sources = handle.request.sources
            self.fire(
                pipeline.name, handle.request.trigger, None if sources is None else [*sources]
            )
            pipeline.not_before = mono + RETRY_PAUSE
        self._emit(
            RunEvent("finished", pipeline.name, handle.request.trigger, time.monotonic(), result)
        )
        if status == "success":
            self._after(pipeline.name, result)

    def _stopped_from_outside(
        self, pipeline: Pipeline, handle: RunHandle, error: str
    ) -> dict[str, Any]:
        """Record a run whose process was killed or died, and alert on it."""
        from headwater.state.db import StateDB
        from headwater.state.runs import fail_running

        db = StateDB.open(pipeline.project.state_url)
        try:
            ids = fail_running(db, error, pid=handle.pid)
        finally:
            db.dispose()
        result: dict[str, Any] = {"status": "failed", "error": error}
        if ids:
            result["run_id"] = ids[-1]
        log.error("%s: %s", pipeline.name, error, extra={"project": pipeline.name})
        return result

    def _after(self, name: str, result: dict[str, Any]) -> None:
        sources = result.get("sources") or {}
        for pipeline in self.pipelines.values():
            for trigger in pipeline.afters:
                upstream, _, source = trigger.after.partition(".")
                if upstream != name:
                    continue
                if source:
                    got = sources.get(source) or {}
                    if not (got.get("files_new") or got.get("rows_read")):
                        continue
                self.fire(pipeline.name, f"after:{trigger.after}", trigger.sources)

    @staticmethod
    def _alert(project: Project, result: dict[str, Any]) -> None:
        """Alerts for a run the scheduler saw end badly, sent on their own thread: a slow
        mail server must not hold the scheduler (and every other project) up."""

        def send() -> None:
            try:
                from headwater import alerts

                alerts.after_run(project, result)
            except Exception as exc:  # alerts never stop the scheduler
                log.warning("alerts failed: %s", exc)

        threading.Thread(target=send, name="alerts", daemon=True).start()

    def _emit(self, event: RunEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    # ------------------------------------------------------------- lifecycle

    def recover(self) -> None:
        """Runs left `running` by a scheduler that was killed: mark them failed and alert."""
        from headwater.runs.lock import run_lock
        from headwater.state.db import StateDB
        from headwater.state.runs import fail_running

        for pipeline in self.pipelines.values():
            project = pipeline.project
            error = (
                "the process running it stopped before the run finished "
                "(scheduler killed or machine restarted); the next run recovers"
            )
            try:
                with run_lock(project.home, project.state_url, project.config.name):
                    db = StateDB.open(project.state_url)
                    try:
                        ids = fail_running(db, error)
                    finally:
                        db.dispose()
            except LockHeldError:
                continue  # a run is going elsewhere: it is not stale
            for run_id in ids:
                log.warning("%s: run %d was left unfinished; marked failed", pipeline.name, run_id)
                self._alert(project, {"run_id": run_id, "status": "failed", "error": error})

    def wait(self, timeout: float) -> None:
        """Sleep until `timeout` passes or something fires."""
        self._wake.wait(timeout)

    def wake(self) -> None:
        self._wake.set()

    def running(self) -> bool:
        with self._lock:
            return any(p.running is not None for p in self.pipelines.values())

    def stop_runs(self, grace: float) -> None:
        """Let running runs finish for up to `grace` seconds, then kill them. Nothing
        pending starts any more."""
        self._stopping = True
        deadline = time.monotonic() + grace
        while self.running() and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.1)
        with self._lock:
            for pipeline in self.pipelines.values():
                handle = pipeline.running
                if handle is not None:
                    with contextlib.suppress(Exception):
                        handle.kill()
                        handle.finished()
                        self._stopped_from_outside(
                            pipeline, handle, "the scheduler stopped before the run finished"
                        )
                    pipeline.running = None

    def status(self) -> list[dict[str, Any]]:
        """Per pipeline: running (with trigger and seconds), pending reasons, next cron times."""
        mono = time.monotonic()
        out = []
        with self._lock:
            for p in self.pipelines.values():
                out.append(
                    {
                        "pipeline": p.name,
                        "running": None
                        if p.running is None
                        else {
                            "trigger": p.running.request.trigger,
                            "seconds": round(mono - p.running.started, 1),
                        },
                        "pending": None if p.pending is None else list(p.pending.reasons),
                        "next_cron": [
                            c.next_due.isoformat() for c, _ in p.crons if c.next_due is not None
                        ],
                        "runs_started": p.runs_started,
                        "last_status": None if p.last is None else p.last.get("status"),
                    }
                )
        return out


def files_sources(project: Project) -> dict[str, FilesSource]:
    return {n: s for n, s in project.config.sources.items() if isinstance(s, FilesSource)}
