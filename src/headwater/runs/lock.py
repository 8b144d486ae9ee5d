"""The run lock: two runs of one project never overlap.

With the embedded state database the lock is an exclusive `flock` on
`.headwater/run.lock`; the operating system releases it when the process
dies, so a crashed run never leaves a stale lock behind.

With the state on PostgreSQL, runs may start on several machines; the lock is
a session-level advisory lock in that database, keyed by the project name, held
on its own connection for the whole run. PostgreSQL releases it when that
connection ends, so a killed run frees it too.

A run that finds the lock held does not wait: it stops at once with
`LockHeldError` (transient: a scheduler retries it later) naming the holder.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

from headwater.errors import LockHeldError, StateError


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeldError(
                f"another run of this project is in progress (pid {holder}, lock {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def advisory_key(project: str) -> int:
    """A stable signed 64-bit lock key for a project name."""
    digest = hashlib.sha256(f"headwater.run:{project}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgAdvisoryLock:
    """A PostgreSQL session advisory lock held for the duration of a run."""

    def __init__(self, url: str, project: str) -> None:
        self.url = url
        self.project = project
        self.key = advisory_key(project)
        self._conn: Any = None

    def __enter__(self) -> PgAdvisoryLock:
        import psycopg

        from headwater.state.db import StateUnavailableError, redact

        conninfo = "postgresql://" + self.url.split("://", 1)[1]
        name = f"headwater run {self.project} pid {os.getpid()} on {socket.gethostname()}"
        try:
            conn = psycopg.connect(conninfo, autocommit=True, application_name=name[:63])
        except psycopg.OperationalError as exc:
            raise StateUnavailableError(
                f"state database {redact(self.url)} is unreachable, so the run lock cannot be "
                f"taken: {exc}"
            ) from None
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()
            if not row or not row[0]:
                holder = conn.execute(
                    "SELECT a.application_name, a.client_addr::text, a.backend_start "
                    "FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
                    [self.key],
                ).fetchone()
                who = (
                    f"{holder[0] or 'a client'} from {holder[1] or 'a local socket'} since "
                    f"{holder[2]:%Y-%m-%d %H:%M:%S}"
                    if holder
                    else "another session"
                )
                conn.close()
                raise LockHeldError(
                    f"another run of project {self.project!r} is in progress ({who}); "
                    "this run stopped without doing anything"
                )
        except psycopg.Error as exc:
            conn.close()
            raise StateError(f"cannot take the run lock: {exc}") from None
        self._conn = conn
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            finally:
                self._conn.close()
                self._conn = None


def run_lock(home: Path, state_url: str, project: str) -> AbstractContextManager[Any]:
    """The lock that keeps runs of this project apart, for where its state lives."""
    if state_url.startswith("postgresql"):
        return PgAdvisoryLock(state_url, project)
    return RunLock(home / "run.lock")
