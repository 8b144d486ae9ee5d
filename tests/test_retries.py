"""Retries of transient errors, recorded on the run, with real failures; runs restricted to sources.

A small TCP proxy in front of the real PostgreSQL resets the connections a
test picks; a backend terminated while the warehouse load waits on a lock; a
DuckDB warehouse file held by another process. Terminal errors (a missing
database, a missing table) are not retried. `--source` restricts extraction.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import psycopg
import pytest

from headwater.config_schedule import RetryConfig
from headwater.errors import (
    ConfigError,
    HeadwaterError,
    LakeUnavailableError,
    SourceError,
    SourceUnavailableError,
    TransientError,
    WarehouseError,
    WarehouseUnavailableError,
    transient_message,
)
from headwater.lake.s3 import translate
from headwater.project import Project
from headwater.runs.pipeline import run
from headwater.runs.retry import Attempt, Retrier, backoff
from headwater.sources.base import Discovered
from headwater.sources.files import FilesSourceReader
from headwater.state import ledger
from headwater.state.db import StateDB
from headwater.state.runs import recent_runs
from headwater.warehouse.postgres import PostgresWarehouse
from tests.fixtures.tiny import cli, model, tiny_project, warehouse
from tests.test_sql_source import fill_mysql, fill_pg, mariadb_url, sql_project

__all__ = ["mariadb_url"]  # a fixture, shared with test_sql_source

FAST = "retries: {attempts: 3, initial_seconds: 0.01, max_seconds: 0.05}\n"

# ---------------------------------------------------------------- the schedule


def test_backoff_grows_is_capped_and_jitter_only_shortens() -> None:
    policy = RetryConfig(attempts=10, initial_seconds=1, max_seconds=10, multiplier=2, jitter=0.5)
    assert [backoff(policy, n, 0.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    for n in range(1, 8):
        top = min(10.0, 2.0 ** (n - 1))
        for draw in (0.0, 0.25, 0.999999):
            wait = backoff(policy, n, draw)
            assert top * 0.5 <= wait <= top
    assert backoff(policy, 3, 0.5) == 4 * 0.75
    assert backoff(RetryConfig(jitter=0), 2, 0.9) == 2.0  # no jitter: exact
    huge = RetryConfig(attempts=20, initial_seconds=1, max_seconds=60, multiplier=1e300)
    assert backoff(huge, 19, 0.0) == 60  # no overflow, still capped


def retrier(attempts: int = 3) -> tuple[Retrier, list[Attempt], list[float]]:
    failed: list[Attempt] = []
    slept: list[float] = []
    policy = RetryConfig(attempts=attempts, initial_seconds=1, max_seconds=60, jitter=0.5)
    return Retrier(policy, failed.append, sleep=slept.append, draw=lambda: 0.5), failed, slept


def failing(errors: list[Exception]) -> Callable[[], str]:
    calls = iter(errors)

    def step() -> str:
        error = next(calls, None)
        if error is not None:
            raise error
        return "done"

    return step


def test_transient_errors_are_retried_with_backoff_and_recorded() -> None:
    r, failed, slept = retrier()
    errors: list[Exception] = [SourceUnavailableError("refused"), SourceUnavailableError("reset")]
    assert r.call(failing(errors), "extract", "shop") == "done"
    assert slept == [0.75, 1.5]
    assert [a.to_json() for a in failed] == [
        {
            "step": "extract",
            "name": "shop",
            "attempt": 1,
            "error": "refused",
            "waited_seconds": 0.75,
        },
        {"step": "extract", "name": "shop", "attempt": 2, "error": "reset", "waited_seconds": 1.5},
    ]


def test_terminal_errors_and_the_last_attempt_are_not_retried() -> None:
    r, failed, slept = retrier()
    with pytest.raises(SourceError):
        r.call(failing([SourceError("no such table"), SourceUnavailableError("x")]), "extract", "s")
    assert slept == [] and [(a.attempt, a.waited_seconds) for a in failed] == [(1, 0.0)]

    r, failed, slept = retrier(attempts=2)
    with pytest.raises(TransientError, match="second"):
        r.call(failing([TransientError("first"), TransientError("second")]), "load", "postgres")
    assert slept == [0.75]
    assert [(a.attempt, a.error, a.waited_seconds) for a in failed] == [
        (1, "first", 0.75),
        (2, "second", 0.0),
    ]

    r, failed, slept = retrier()
    with pytest.raises(ZeroDivisionError):  # a bug: not retried, recorded as it is
        r.call(lambda: 1 // 0, "load", "duckdb")
    assert slept == [] and failed[0].error.startswith("ZeroDivisionError(")


# ---------------------------------------------------------------- a proxy in front of PostgreSQL


class Proxy:
    """Forwards loopback connections to PostgreSQL; resets those whose number `reset` names.

    Connections are numbered from 1 in the order they arrive. A reset one is
    closed at once with an RST, as a server that went away or a firewall would.
    """

    def __init__(self, reset: Callable[[int], bool], port: int = 5432) -> None:
        self.reset = reset
        self.target = ("127.0.0.1", port)
        self.count = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, database_url: str) -> str:
        return database_url.replace(f"127.0.0.1:{self.target[1]}", f"127.0.0.1:{self.port}")

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.count += 1
            if self.reset(self.count):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
        except OSError:
            pass
        finally:  # one side ended: end both (the other pipe wakes up and ends too)
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def proxy_factory() -> Iterator[Callable[..., Proxy]]:
    made: list[Proxy] = []

    def make(reset: Callable[[int], bool], port: int = 5432) -> Proxy:
        made.append(Proxy(reset, port))
        return made[-1]

    yield make
    for p in made:
        p.close()


def runs_of(root: Path) -> list[tuple[int, str]]:
    db = StateDB.open(Project.load(root).state_url)
    try:
        return [(r.run_id, r.status) for r in recent_runs(db)]
    finally:
        db.dispose()


def stored_summary(root: Path, run_id: int) -> dict[str, Any]:
    db = StateDB.open(Project.load(root).state_url)
    try:
        [record] = [r for r in recent_runs(db) if r.run_id == run_id]
        assert record.summary is not None
        return record.summary
    finally:
        db.dispose()


def with_retries(root: Path) -> Path:
    path = root / "headwater.yaml"
    path.write_text(path.read_text() + FAST)
    return root


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_source_refusing_twice_then_answering_is_one_successful_run(
    tmp_path: Path,
    proxy_factory: Callable[..., Proxy],
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    server: str,
) -> None:
    if server == "postgresql":
        database = request.getfixturevalue("pg_database")
        fill_pg(database)
        url = proxy_factory(lambda n: n <= 2).url(database)
    else:
        database = request.getfixturevalue("mariadb_url")
        fill_mysql(database)
        url = proxy_factory(lambda n: n <= 2, port=3306).url(database)
    root = with_retries(sql_project(tmp_path / "p", url))
    slept: list[float] = []
    with caplog.at_level(logging.WARNING, logger="headwater"):
        summary = run(Project.load(root), retry_sleep=slept.append)
    assert summary.ok, summary.error
    assert runs_of(root) == [(summary.run_id, "success")]
    assert [(a["step"], a["name"], a["attempt"]) for a in summary.attempts] == [
        ("extract", "shop", 1),
        ("extract", "shop", 2),
    ]
    for a in summary.attempts:
        assert f"cannot reach {url} (may succeed if retried)" in a["error"], a["error"]
        assert any(
            words in a["error"]
            for words in ("server closed the connection", "reset by peer", "Lost connection")
        ), a["error"]
    assert slept == pytest.approx([a["waited_seconds"] for a in summary.attempts], abs=1e-3)
    assert 0.005 <= slept[0] <= 0.01 and 0.01 <= slept[1] <= 0.02
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m.split(":")[0] for m in warned if "attempt" in m] == ["extract shop"] * 2
    assert "attempt 1 of 3 failed, retrying in 0.0" in warned[0]
    assert summary.sources["shop"].files_new == 1
    assert warehouse(root, "select count(*), count(distinct item_id) from item_versions") == [
        (3, 3)
    ]
    # The summary kept in the state database has them too.
    stored = stored_summary(root, summary.run_id)
    assert stored["attempts"] == summary.attempts and stored["only_sources"] is None


def test_lost_table_connection_is_retried_per_table_with_a_new_connection(
    tmp_path: Path, pg_database: str, proxy_factory: Callable[..., Proxy]
) -> None:
    """Connection 1 reads the catalog; connection 2 (the scanner's) is reset."""
    fill_pg(pg_database)
    proxy = proxy_factory(lambda n: n == 2)
    root = with_retries(sql_project(tmp_path / "p", proxy.url(pg_database)))
    summary = run(Project.load(root), retry_sleep=lambda _: None)
    assert summary.ok, summary.error
    [attempt] = summary.attempts
    assert (attempt["step"], attempt["name"], attempt["attempt"]) == ("extract", "shop.item", 1)
    assert "cannot attach" in attempt["error"] and "may succeed if retried" in attempt["error"]
    assert warehouse(root, "select count(*) from item_versions") == [(3,)]
    assert runs_of(root) == [(summary.run_id, "success")]


@pytest.mark.parametrize("problem", ["missing database", "missing table"])
def test_terminal_source_errors_are_not_retried(
    tmp_path: Path, pg_database: str, problem: str
) -> None:
    fill_pg(pg_database)
    url = pg_database.rsplit("/", 1)[0] + "/hw_no_such_database"
    root = sql_project(tmp_path / "p", url if problem == "missing database" else pg_database)
    if problem == "missing table":
        path = root / "headwater.yaml"
        path.write_text(path.read_text() + "    tables: {item: {}, no_such_table: {}}\n")
    with_retries(root)

    def never(seconds: float) -> None:
        raise AssertionError(f"a terminal error was retried (wait {seconds})")

    summary = run(Project.load(root), retry_sleep=never)
    assert summary.status == "failed"
    assert runs_of(root) == [(summary.run_id, "failed")]
    [attempt] = summary.attempts
    assert (attempt["name"], attempt["attempt"], attempt["waited_seconds"]) == ("shop", 1, 0)
    expected = (
        'hw_no_such_database" does not exist'
        if problem == "missing database"
        else ("table 'no_such_table' is not in the database")
    )
    assert expected in attempt["error"] and summary.error == attempt["error"]


# ---------------------------------------------------------------- the warehouse load

TWO_TABLES = {
    "a_rows": model("select id::int as id, name, amount::int as amount from src", publish=True),
    "b_rows": model("select id::int as id, amount::int * 2 as twice from src", publish=True),
}


def test_load_interrupted_mid_transaction_is_retried_and_loads_once(
    tmp_path: Path, pg_database: str
) -> None:
    yaml_text = (
        "name: t\n"
        "sources:\n"
        "  src: {kind: files, path: inbox, glob: '*.csv',\n"
        "        csv: {columns: [id, name, amount], header: false}}\n"
        "warehouse: {type: postgres, url: '${WAREHOUSE_URL}'}\n" + FAST
    )
    root = tiny_project(tmp_path / "p", TWO_TABLES, {"f1.csv": "1,a,10\n2,b,20\n"}, yaml_text)
    (root / ".env").write_text(f"WAREHOUSE_URL={pg_database}\n")
    first = run(Project.load(root))
    assert first.ok and first.warehouse.status == "loaded", first.error
    *_, last = list(first.warehouse.tables)  # loaded after the other, in the same transaction

    (root / "inbox" / "f2.csv").write_text("3,c,30\n4,d,40\n")
    holding, release = threading.Event(), threading.Event()
    killed: list[int] = []

    def hold_lock() -> None:
        with psycopg.connect(pg_database) as conn:
            conn.execute(f"LOCK TABLE {last} IN ACCESS EXCLUSIVE MODE")
            holding.set()
            release.wait(30)

    def kill_the_waiting_load() -> None:
        """Once the load waits on the lock (the other table written), terminate its backend."""
        try:
            deadline = time.monotonic() + 30
            with psycopg.connect(pg_database, autocommit=True) as conn:
                while not killed and time.monotonic() < deadline:
                    rows = conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = 'headwater' AND wait_event_type = 'Lock'"
                    ).fetchall()
                    for (pid,) in rows:
                        conn.execute("SELECT pg_terminate_backend(%s)", [pid])
                        killed.append(pid)
                    time.sleep(0.02)
        finally:
            release.set()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert holding.wait(10)
    killer = threading.Thread(target=kill_the_waiting_load)
    killer.start()
    try:
        second = run(Project.load(root), retry_sleep=lambda _: None)
    finally:
        release.set()
        killer.join()
        holder.join()
    assert killed, "the load never waited on the lock"
    assert second.ok, second.error
    [attempt] = second.attempts
    assert (attempt["step"], attempt["name"], attempt["attempt"]) == ("load", "postgres", 1)
    assert f"table {last!r}: load rolled back (may succeed if retried)" in attempt["error"]
    assert "server closed the connection" in attempt["error"], attempt["error"]
    assert second.warehouse.status == "loaded"
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT id, name, amount FROM a_rows ORDER BY id").fetchall() == [
            (1, "a", 10), (2, "b", 20), (3, "c", 30), (4, "d", 40)
        ]  # fmt: skip
        assert conn.execute("SELECT id, twice FROM b_rows ORDER BY id").fetchall() == [
            (1, 20), (2, 40), (3, 60), (4, 80)
        ]  # fmt: skip
        loads = conn.execute("SELECT table_name, run_id FROM _headwater_loads ORDER BY 1")
        assert loads.fetchall() == [("a_rows", second.run_id), ("b_rows", second.run_id)]
    assert runs_of(root) == [(second.run_id, "success"), (first.run_id, "success")]


def test_duckdb_warehouse_held_by_another_process_is_retried(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        TWO_TABLES,
        {"f1.csv": "1,a,10\n"},
        "name: t\nsources:\n  src: {kind: files, path: inbox, glob: '*.csv', "
        "csv: {columns: [id, name, amount], header: false}}\n" + FAST,
    )
    path = root / ".headwater" / "warehouse.duckdb"
    path.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"

        def release(seconds: float) -> None:  # the wait before the retry: the other process ends
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(10)

        summary = run(Project.load(root), retry_sleep=release)
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert summary.ok, summary.error
    [attempt] = summary.attempts
    assert (attempt["step"], attempt["name"]) == ("load", "duckdb")
    assert "Could not set lock on file" in attempt["error"]
    assert warehouse(root, "select count(*) from a_rows") == [(1,)]


# ---------------------------------------------------------------- runs restricted to sources

# Models read only `a`: `b` is landed and staged into the lake. (A model reading a source
# that has never delivered fails the batches of other sources; see the report.)
TWO_SOURCES = """\
name: t
sources:
  a: {kind: files, path: inbox/a, glob: '*.csv', csv: {columns: [id, amount], header: false}}
  b: {kind: files, path: inbox/b, glob: '*.csv', csv: {columns: [id, amount], header: false}}
"""


def landed(root: Path, source: str) -> list[str]:
    db = StateDB.open(Project.load(root).state_url)
    try:
        return sorted(ledger.known_hashes(db, source).values())
    finally:
        db.dispose()


def pending(root: Path) -> list[tuple[str, str]]:
    db = StateDB.open(Project.load(root).state_url)
    try:
        return sorted((e.source, e.name) for e in ledger.pending(db))
    finally:
        db.dispose()


def run_cli(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("run", "-p", str(root), "--json", "-q", *args)
    return result.exit_code, json.loads(result.stdout)


def test_source_option_restricts_extraction_and_pending_batches_still_run(tmp_path: Path) -> None:
    checked = model(
        "select id::int as id, amount::int as amount from a",
        publish=True,
        checks=[{"expression": "amount < 100", "severity": "error"}],
    )
    root = tiny_project(tmp_path / "p", {"a_rows": checked},
                        {"a/a1.csv": "1,500\n", "b/b1.csv": "1,10\n"}, TWO_SOURCES)  # fmt: skip

    # Run 1: a's batch fails its check; it and b's later batch stay pending.
    code, first = run_cli(root)
    assert code == 1 and first["models"]["a_rows"]["status"] == "failed"
    assert pending(root) == [("a", "a1.csv"), ("b", "b1.csv")]

    # Run 2, only `b`: the pending batches of both are finished; a's new file is not looked at.
    fixed = model("select id::int as id, amount::int as amount from a", publish=True)
    (root / "models" / "a_rows.sql").write_text(fixed)
    (root / "inbox" / "a" / "a2.csv").write_text("2,20\n")
    (root / "inbox" / "b" / "b2.csv").write_text("2,30\n")
    code, second = run_cli(root, "--source", "b")
    assert code == 0, second["error"]
    assert second["only_sources"] == ["b"]
    assert second["sources"]["b"]["files_new"] == 1 and second["sources"]["a"]["files_found"] == 0
    assert landed(root, "a") == ["a1.csv"] and landed(root, "b") == ["b1.csv", "b2.csv"]
    assert pending(root) == []
    assert warehouse(root, "select id, amount from a_rows order by 1") == [(1, 500)]

    # Run 3, every source: a2 is landed and loaded now.
    code, third = run_cli(root)
    assert code == 0 and third["only_sources"] is None
    assert third["sources"]["a"]["files_new"] == 1 and landed(root, "a") == ["a1.csv", "a2.csv"]
    assert warehouse(root, "select id, amount from a_rows order by 1") == [(1, 500), (2, 20)]

    # Several --source options; an unknown name is a configuration error that touches nothing.
    code, both = run_cli(root, "--source", "b", "--source", "a")
    assert code == 0 and both["only_sources"] == ["a", "b"]
    before = runs_of(root)
    code, bad = run_cli(root, "--source", "nope")
    assert code == 2 and bad["status"] == "config_error"
    assert "source to extract 'nope'" in bad["error"]
    assert runs_of(root) == before


def test_retried_files_source_does_not_land_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A files source retried after some of its files were landed takes them as landed, once."""
    root = tiny_project(
        tmp_path / "p",
        {"rows": model("select id, name, amount from src", publish=True)},
        {"f1.csv": "1,a,10\n", "f2.csv": "2,b,20\n"},
        "name: t\nsources:\n  src: {kind: files, path: inbox, glob: '*.csv', "
        "csv: {columns: [id, name, amount], header: false}}\n" + FAST,
    )
    calls = itertools.count(1)
    real = FilesSourceReader.discover

    def fail() -> bytes:
        raise SourceUnavailableError("source 'src': cannot fetch f2.csv: S3 answered 503")

    def flaky(self: FilesSourceReader) -> list[Discovered]:
        found = real(self)
        if next(calls) == 1:  # the first attempt lands f1, then fails fetching f2
            last = found[-1]
            found[-1] = Discovered(last.name, None, last.size, last.modified_at, fetch=fail)
        return found

    monkeypatch.setattr(FilesSourceReader, "discover", flaky)
    summary = run(Project.load(root), retry_sleep=lambda _: None)
    assert summary.ok, summary.error
    assert [(a["name"], a["attempt"]) for a in summary.attempts] == [("src", 1)]
    assert summary.sources["src"].files_new == 2 and summary.batches == [summary.run_id * 1000 + 1]
    assert landed(root, "src") == ["f1.csv", "f2.csv"]
    raw = sorted(p.name for p in (root / ".headwater" / "lake" / "raw" / "src").rglob("*.csv"))
    assert raw == ["f1.csv", "f2.csv"]
    assert warehouse(root, "select id from rows order by 1") == [("1",), ("2",)]


def test_unreachable_s3_source_fails_after_its_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as sock:  # a port nothing listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = tiny_project(
        tmp_path / "p",
        {"rows": model("select id from src", publish=True)},
        {},
        "name: t\nsources:\n  src: {kind: files, path: 's3://drops/in', glob: '*.csv', "
        f"s3: {{endpoint_url: 'http://127.0.0.1:{port}'}}, "
        "csv: {columns: [id, name, amount], header: false}}\n"
        "retries: {attempts: 2, initial_seconds: 0.01}\n",
    )
    slept: list[float] = []
    summary = run(Project.load(root), retry_sleep=slept.append)
    assert summary.status == "failed" and len(slept) == 1
    assert [(a["name"], a["attempt"]) for a in summary.attempts] == [("src", 1), ("src", 2)]
    for a in summary.attempts:
        assert a["error"].startswith("source 'src': cannot list s3://drops/in: cannot reach S3")
    assert summary.error == summary.attempts[-1]["error"]
    assert runs_of(root) == [(summary.run_id, "failed")]


# ---------------------------------------------------------------- which errors are transient

# Messages as the drivers wrote them (collected from the servers on this machine).
MESSAGES = {
    'IO Error: Unable to connect to Postgres at "postgresql://postgres@127.0.0.1:5999/x": '
    'connection to server at "127.0.0.1", port 5999 failed: Connection refused': True,
    'IO Error: Unable to connect to Postgres at "postgresql://postgres@127.0.0.1:5432/nope": '
    'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "nope" does not '
    "exist": False,
    'IO Error: Unable to connect to Postgres at "postgresql://nobody@127.0.0.1:5432/postgres": '
    'FATAL:  password authentication failed for user "nobody"': False,
    'IO Error: Failed to connect to MySQL database with parameters "host=127.0.0.1 port=3999": '
    "Can't connect to server on '127.0.0.1' (115)": True,
    'IO Error: Failed to connect to MySQL database with parameters "host=127.0.0.1": '
    "Unknown database 'nope_db'": False,
    "Access denied for user 'nobody'@'127.0.0.1'": False,
    "IO Error: Unable to read binary COPY data from Postgres: server closed the connection "
    "unexpectedly": True,
    "(2013, 'Lost connection to MySQL server during query')": True,
    "HTTP Error: Request returned HTTP 503 for HTTP HEAD to 'http://127.0.0.1:41369/x.parquet'": True,
    "HTTP Error: Request returned HTTP 403 for HTTP HEAD to 'http://127.0.0.1:41369/x.parquet'": False,
    'IO Error: Could not set lock on file "/w.duckdb": Conflicting lock is held': True,
    "ERROR: deadlock detected": True,
    "ERROR: canceling statement due to lock timeout": True,
    "ERROR: could not serialize access due to concurrent update": True,
    "FATAL: sorry, too many clients already; remaining connection slots are reserved": True,
    'Binder Error: Referenced column "timeout_at" not found in FROM clause': False,
    'Catalog Error: Table with name "deadlock" does not exist': False,
}


@pytest.mark.parametrize("message", MESSAGES)
def test_driver_messages_are_classified(message: str) -> None:
    assert transient_message(message) is MESSAGES[message]


def test_s3_errors_are_translated() -> None:
    def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
        response: Any = {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return botocore.exceptions.ClientError(response, "GetObject")

    transient = [
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        botocore.exceptions.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        client_error("InternalError", 500),
        client_error("ServiceUnavailable", 503),
        client_error("SlowDown", 503),
    ]
    for exc in transient:
        assert isinstance(translate(exc, "get s3://b/k"), LakeUnavailableError), exc
    terminal = [
        client_error("AccessDenied", 403),
        client_error("NoSuchBucket", 404),
        botocore.exceptions.ParamValidationError(report="bad"),
    ]
    for exc in terminal:
        error = translate(exc, "get s3://b/k")
        assert isinstance(error, HeadwaterError) and not error.transient, exc
    assert isinstance(translate(botocore.exceptions.NoCredentialsError(), "x"), ConfigError)


def test_postgres_warehouse_unreachable_is_transient_a_missing_database_is_not(
    tmp_path: Path,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = PostgresWarehouse(f"postgresql://postgres:Sekr1tPw@127.0.0.1:{port}/x")
    with pytest.raises(WarehouseUnavailableError, match="cannot connect") as raised:
        closed.watermarks()
    assert "Sekr1tPw" not in str(raised.value)
    missing = PostgresWarehouse("postgresql://postgres@127.0.0.1:5432/hw_no_such_database")
    with pytest.raises(WarehouseError, match="does not exist") as refused:
        missing.watermarks()
    assert not refused.value.transient
    with pytest.raises(WarehouseError, match="does not exist") as refused:
        missing.load([], 1, lambda: None)  # the load's own connection: DuckDB's ATTACH
    assert not refused.value.transient
