"""The scheduler as a service: its loop, the file watchers, alert checks and logs, started
and stopped together by `headwater schedule` and `headwater serve`."""

from __future__ import annotations

import logging
import logging.handlers
import threading
from collections.abc import Callable
from typing import Any

from headwater.config_schedule import FilesTrigger
from headwater.observe import logs
from headwater.project import Project
from headwater.schedule import worker
from headwater.schedule.scheduler import RunEvent, Scheduler, files_sources
from headwater.schedule.triggers import Clock
from headwater.schedule.watch import Fingerprint, FolderEvents, Poller
from headwater.sources.files import FilesSourceReader
from headwater.state import ledger
from headwater.state.db import StateDB

log = logging.getLogger("headwater.schedule")

ALERT_EVERY = 10.0  # seconds between staleness / daily-summary checks


class Service:
    def __init__(
        self,
        projects: list[Project],
        *,
        clock: Clock | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        terminal_logs: bool = True,
        alert_every: float = ALERT_EVERY,
    ) -> None:
        if not projects:
            raise ValueError("nothing to schedule")
        self.projects = projects
        self.clock = clock or Clock()
        self.terminal_logs = terminal_logs
        self.alert_every = alert_every
        self.scheduler = Scheduler(projects, clock=self.clock, on_event=on_event)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watchers: list[Poller | FolderEvents] = []
        self._dbs: list[StateDB] = []

    def start(self) -> None:
        first, *others = self.projects
        logs.configure_project(first, terminal=self.terminal_logs, also=[p.config for p in others])
        worker.warm_up()
        self.scheduler.recover()
        for project in self.projects:
            self._watch(project)
        for target, name in ((self._loop, "scheduler"), (self._alerts, "alerts")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        for p in self.scheduler.status():
            log.info(
                "scheduling %s: %d trigger(s)",
                p["pipeline"],
                len(self.scheduler.pipelines[p["pipeline"]].project.config.schedule.triggers),
            )

    def _watch(self, project: Project) -> None:
        name = project.config.name
        sources = files_sources(project)
        for index, (_, trigger) in enumerate(self.scheduler.pipelines[name].files):
            self._watch_source(project, index, trigger, sources)

    def _watch_source(
        self, project: Project, index: int, trigger: FilesTrigger, sources: dict[str, Any]
    ) -> None:
        name = project.config.name
        reader = FilesSourceReader(
            trigger.files, sources[trigger.files], project.root, project.config.lake.s3
        )
        db = StateDB.open(project.state_url)
        self._dbs.append(db)

        def arrived(names: set[str]) -> None:
            self.scheduler.arrived(name, index, names)

        def landed() -> set[Fingerprint]:
            return ledger.seen_files(db, trigger.files)

        label = f"{name}.{trigger.files}"
        events = None
        if reader.url is None and trigger.events:
            events = FolderEvents(label, reader.folder, sources[trigger.files].glob, arrived)
            if events.start():
                self._watchers.append(events)
            else:
                events = None
        poller = Poller(label, reader.discover, landed, trigger.poll_seconds, arrived, events)
        poller.start()
        self._watchers.append(poller)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sleep = self.scheduler.poll()
            except Exception:  # a bug in one pass must not stop scheduling
                log.exception("scheduler pass failed")
                sleep = 5.0
            self.scheduler.wait(sleep)

    def _alerts(self) -> None:
        from headwater import alerts

        dbs: dict[str, StateDB] = {}  # one connection per project for the thread's life
        try:
            watched = [
                p
                for p in self.projects
                if p.config.alerts.staleness or p.config.alerts.daily_summary
            ]
            while watched and not self._stop.wait(self.alert_every):
                for project in watched:
                    try:
                        name = project.config.name
                        db = dbs.get(name) or dbs.setdefault(name, StateDB.open(project.state_url))
                        alerts.tick(project, self.clock.now(), db)
                    except Exception:
                        log.exception("%s: alert checks failed", project.config.name)
        finally:
            for db in dbs.values():
                db.dispose()

    def stop(self, grace: float = 60.0) -> None:
        """Stop triggering; let a running run finish for `grace` seconds, then kill it."""
        self._stop.set()
        self.scheduler.wake()
        for thread in self._threads:
            thread.join(timeout=10)
        for watcher in self._watchers:
            watcher.stop()
        for db in self._dbs:
            db.dispose()
        self.scheduler.stop_runs(grace)
        logs.reset()
