"""`headwater schedule` and `headwater serve` as real processes: a run that outlives its
timeout, SIGTERM handed to a thread other than the main one, and the server killed with
SIGKILL while its triggered run is loading."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from headwater.project import Project
from headwater.runs.faults import ENV, MARK_ENV
from headwater.state.db import StateDB, runs
from headwater.templates.cafe.generator import generate
from tests.conftest import new_project, run_project, warehouse_snapshot
from tests.fixtures.servers import free_port
from tests.test_schedule import wait_for


def run_rows(root: Path) -> list[tuple[int, str, str, str | None]]:
    db = StateDB.open(Project.load(root).state_url)
    try:
        with db.engine.connect() as conn:
            query = sa.select(runs.c.run_id, runs.c.trigger, runs.c.status, runs.c.error)
            return [tuple(r) for r in conn.execute(query.order_by(runs.c.run_id))]  # type: ignore[misc]
    finally:
        db.dispose()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def threads(pid: int) -> list[int]:
    """Ids of the process's threads that do not block SIGTERM (a signal sent to a thread
    that blocks it stays pending there, where the kernel would never have sent it)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        blocked = int(
            next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
        )
        if not blocked & (1 << (signal.SIGTERM - 1)):
            found.append(int(task.name))
    return found


def stopped(proc: subprocess.Popen[str], seconds: float) -> str:
    """Wait for the process to exit, reading its output meanwhile (a pipe nobody reads
    blocks a chatty process); on a timeout, fail with what it printed."""
    try:
        out, _ = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=30)
        raise AssertionError(
            f"still running {seconds:g} s after SIGTERM; it printed:\n{out}"
        ) from None
    return out or ""


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, MARK_ENV)}
    env.update(extra)
    return env


def test_a_run_past_its_timeout_is_killed_and_recorded_failed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, branches=1, days=1, seed=6, per_day=20)
    root = new_project(tmp_path / "p")
    text = (root / "headwater.yaml").read_text()
    (root / "headwater.yaml").write_text(
        text.replace("timeout_minutes: 60", "timeout_minutes: 0.05")
    )
    mark = tmp_path / "hung"
    env = base_env(**{ENV: "extract.after_ledger:hang", MARK_ENV: str(mark)})
    with process(["schedule", "-p", str(root), "--grace", "5"], env) as proc:
        time.sleep(0.5)
        for f in data.iterdir():
            f.replace(root / "inbox" / f.name)
        wait_for(mark.exists, 60, "the run to reach the hanging point")
        child = int(mark.read_text())
        wait_for(lambda: any(r[2] == "failed" for r in run_rows(root)), 60, "the timeout")
        wait_for(lambda: not alive(child), 10, "the run's process to be gone")
        proc.send_signal(signal.SIGTERM)
        stopped(proc, 60)
    (_run_id, trigger, status, error) = run_rows(root)[0]
    assert (trigger, status) == ("files:branch_files", "failed")
    assert error is not None and "timed out after 0.05 minutes" in error
    assert proc.returncode == 0


def test_schedule_stops_on_a_sigterm_the_kernel_hands_to_another_thread(tmp_path: Path) -> None:
    """The kernel may deliver a process-wide signal to any thread. Its Python handler runs
    only when the main thread runs bytecode: a main thread asleep in a wait without a
    timeout never would, and the scheduler slept through SIGTERM."""
    root = new_project(tmp_path / "p")
    with process(["schedule", "-p", str(root)], base_env()) as proc:
        assert proc.stdout is not None
        assert "scheduling cafe" in proc.stdout.readline() + proc.stdout.readline()
        others = [t for t in threads(proc.pid) if t != proc.pid]
        assert others, "the scheduler runs threads beside the main one, taking SIGTERM"
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.tgkill(proc.pid, others[0], signal.SIGTERM) == 0, os.strerror(
            ctypes.get_errno()
        )
        out = stopped(proc, 20)
    assert "stopping" in out
    assert proc.returncode == 0


def test_serve_killed_while_its_run_loads_then_restarted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, branches=3, days=2, seed=7, per_day=30)
    first, second = sorted(data.iterdir())[:5], sorted(data.iterdir())[5:]
    root = new_project(tmp_path / "p")
    mark = tmp_path / "loading"
    hang = base_env(**{ENV: "load.before_commit:hang", MARK_ENV: str(mark)})
    serve = ["serve", "-p", str(root), "--port", str(free_port())]
    with process(serve, hang) as proc:
        time.sleep(0.5)
        for f in first:
            f.replace(root / "inbox" / f.name)
        wait_for(mark.exists, 90, "the triggered run to be loading")
        child = int(mark.read_text())
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait(timeout=10)
        wait_for(lambda: not alive(child), 10, "the orphaned run to die with the server")
    assert [r[2] for r in run_rows(root)] == ["running"]  # nobody could record anything

    with process(["serve", "-p", str(root), "--port", str(free_port())], base_env()):
        wait_for(lambda: run_rows(root)[0][2] == "failed", 60, "the killed run marked failed")
        time.sleep(1)
        for f in second:  # the next trigger
            f.replace(root / "inbox" / f.name)
        wait_for(
            lambda: len(run_rows(root)) == 2 and run_rows(root)[1][2] != "running",
            120,
            "the next run",
        )
    rows = run_rows(root)
    assert rows[0][2] == "failed" and "stopped before the run finished" in str(rows[0][3])
    assert rows[1][1:3] == ("files:branch_files", "success")

    # As if nothing had happened: the same files in uninterrupted runs, in the same order.
    reference = new_project(tmp_path / "ref", [root / "inbox" / f.name for f in first])
    assert run_project(reference).ok
    for f in second:
        (reference / "inbox" / f.name).write_bytes((root / "inbox" / f.name).read_bytes())
    assert run_project(reference).ok
    assert warehouse_snapshot(root) == warehouse_snapshot(reference)
