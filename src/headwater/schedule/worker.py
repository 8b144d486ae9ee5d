"""Scheduled runs happen in child processes: a crash, a timeout or a kill ends the run, never
the scheduler.

Children come from a fork server that has already imported the pipeline, so a run starts
in milliseconds instead of the second and a half a fresh interpreter needs. Each child
watches the scheduler's process and kills itself when it goes: a scheduler killed with
SIGKILL leaves no orphan run behind; its run stays `running` in the state database until
the next scheduler start marks it failed. Log records travel to the scheduler through a
queue, tagged with the run id, and are written there (one writer per log file).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import multiprocessing.queues
import os
import queue
import select
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("headwater.schedule")

_context: multiprocessing.context.ForkServerContext | None = None


def context() -> multiprocessing.context.ForkServerContext:
    """The fork server context, its server importing the pipeline once."""
    global _context  # noqa: PLW0603  (one fork server per process)
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["headwater.schedule.worker", "headwater.runs.pipeline"])
        _context = ctx
    return _context


@dataclass(frozen=True)
class RunRequest:
    home: str
    trigger: str
    sources: tuple[str, ...] | None = None


class RunHandle:
    """One child process running one run."""

    def __init__(
        self,
        request: RunRequest,
        process: multiprocessing.process.BaseProcess,
        conn: multiprocessing.connection.Connection,
        logs: multiprocessing.queues.Queue[Any],
    ) -> None:
        self.request = request
        self.process = process
        self.conn = conn
        self.started = time.monotonic()
        self.result: dict[str, Any] | None = None
        # The run's own log channel: a run killed while writing a line can only block
        # its own queue, never the next run's.
        self.logs = logs
        self._done = threading.Event()
        self._relay = threading.Thread(target=self._relay_logs, name="run logs", daemon=True)
        self._relay.start()

    def _relay_logs(self) -> None:
        """Hand the child's log records to this process's loggers until it has ended."""
        while True:
            try:
                record = self.logs.get(timeout=0.2)
            except queue.Empty:
                if self._done.is_set():
                    return
                continue
            except (EOFError, OSError):
                return
            logging.getLogger(record.name).handle(record)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def finished(self) -> bool:
        """Whether the child is done; its summary (if it sent one) is then in `result`."""
        with contextlib.suppress(EOFError, OSError):
            if self.result is None and self.conn.poll():
                self.result = self.conn.recv()
        if self.process.is_alive():
            return False
        self.process.join()
        with contextlib.suppress(EOFError, OSError):
            if self.result is None and self.conn.poll():
                self.result = self.conn.recv()
        self.conn.close()
        self._done.set()  # the relay drains what the child wrote, then stops
        self._relay.join(timeout=5)
        self.logs.cancel_join_thread()
        self.logs.close()
        return True

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=10)


def start(request: RunRequest) -> RunHandle:
    ctx = context()
    receive, send = ctx.Pipe(duplex=False)
    logs: multiprocessing.queues.Queue[Any] = ctx.Queue()
    process = ctx.Process(
        target=child_main,
        args=(request, send, logs, os.getpid(), dict(os.environ)),
        name=f"headwater run {Path(request.home).name}",
    )
    process.start()
    send.close()
    return RunHandle(request, process, receive, logs)


def warm_up() -> None:
    """Start the fork server now (it imports the pipeline), not at the first run."""
    ctx = context()
    process = ctx.Process(target=_nothing)
    process.start()
    process.join()


def _nothing() -> None:
    return None


def _die_with_parent(scheduler_pid: int) -> None:
    """End this process the moment the scheduler process ends, however it ends.

    The child's parent is the fork server, which itself lives as long as any child does,
    so the parent-death signal cannot serve: a thread waits on a pidfd of the scheduler
    (a handle that cannot be fooled by pid reuse) and kills this process when it closes.
    """
    try:
        pidfd = os.pidfd_open(scheduler_pid)
    except ProcessLookupError:
        os._exit(1)
    except (OSError, AttributeError):  # no pidfd (old kernel): poll the pid instead
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while True:
                try:
                    os.kill(scheduler_pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die with scheduler", daemon=True).start()


def child_main(
    request: RunRequest,
    conn: multiprocessing.connection.Connection,
    logs: multiprocessing.queues.Queue[Any] | None,
    scheduler_pid: int,
    environ: dict[str, str],
) -> None:
    _die_with_parent(scheduler_pid)
    # The fork server's environment is the one it started with: use the scheduler's now.
    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the scheduler, which decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from headwater.errors import ConfigError, HeadwaterError
    from headwater.observe import logs as hwlogs
    from headwater.project import Project
    from headwater.runs.pipeline import run

    logger = logging.getLogger(hwlogs.ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    data: dict[str, Any]
    project: Project | None = None
    try:
        project = Project.load(Path(request.home))
        if logs is not None:
            queue = logging.handlers.QueueHandler(logs)
            queue.addFilter(hwlogs.Redactor(hwlogs.secrets_of(project.config)))
            logger.addHandler(queue)
            logger.setLevel(project.config.logging.level)
            logger.propagate = False
        sources = None if request.sources is None else frozenset(request.sources)
        summary = run(project, trigger=request.trigger, sources=sources)
        data = summary.to_json()
    except HeadwaterError as exc:
        kind = "config_error" if isinstance(exc, ConfigError) else "failed"
        data = {"status": kind, "error": str(exc), "transient": exc.transient}
    except Exception as exc:  # a bug: report it, the scheduler goes on
        logger.error("run crashed: %s\n%s", exc, traceback.format_exc())
        data = {"status": "internal_error", "error": repr(exc)}
    if project is not None:
        try:
            from headwater import alerts

            alerts.after_run(project, data)
            data["alerted"] = True
        except Exception as exc:  # alerts never fail a run
            logger.warning("alerts after run failed: %s", exc)
    conn.send(data)
    conn.close()
