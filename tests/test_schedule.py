"""The scheduler: cron due times, debounce, coalescing, and real runs started by files landing.

Runs happen in real child processes (the fork server), on real cafe projects.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.project import Project
from headwater.schedule.scheduler import Pending, RunEvent, Scheduler
from headwater.schedule.service import Service
from headwater.schedule.triggers import Clock, CronSchedule, Debounce
from headwater.state.db import StateDB, files, runs
from headwater.templates.cafe.generator import generate
from tests.conftest import new_project, run_project, warehouse_rows, warehouse_snapshot
from tests.fixtures.servers import Bucket

UTC = dt.UTC


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def set_trigger(root: Path, trigger: str) -> None:
    text = (root / "headwater.yaml").read_text()
    assert "    - files: branch_files\n" in text
    (root / "headwater.yaml").write_text(text.replace("    - files: branch_files\n", trigger))


# ------------------------------------------------------------------ unit


def test_cron_fires_once_per_due_time_and_once_after_downtime() -> None:
    cron = CronSchedule("*/15 * * * *")
    t0 = dt.datetime(2026, 11, 22, 10, 1, tzinfo=UTC)
    assert not cron.due(t0)  # the first call only learns the next time: 10:15
    assert cron.next_due == dt.datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
    assert not cron.due(t0 + dt.timedelta(minutes=13))
    assert cron.due(dt.datetime(2026, 11, 22, 10, 15, 0, 500, tzinfo=UTC))
    assert not cron.due(dt.datetime(2026, 11, 22, 10, 16, tzinfo=UTC))
    # Down from 10:16 to 12:40: nine due times missed, one run when back.
    back = dt.datetime(2026, 11, 22, 12, 40, tzinfo=UTC)
    assert cron.due(back)
    assert not cron.due(back + dt.timedelta(seconds=1))
    assert cron.next_due == dt.datetime(2026, 11, 22, 12, 45, tzinfo=UTC)


def test_cron_in_a_time_zone() -> None:
    cron = CronSchedule("0 2 * * *", "Europe/London")
    summer = dt.datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    assert cron.next_after(summer) == dt.datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # BST
    winter = dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert cron.next_after(winter) == dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_debounce_settles_after_the_last_arrival() -> None:
    window = Debounce(settle=0.5, max_wait=10)
    assert not window.ready(0) and window.wake_in(0) is None
    for at in (0.0, 0.2, 0.4):
        window.arrived(at, {f"f{at}"})
    assert not window.ready(0.8)
    assert window.wake_in(0.8) == pytest.approx(0.1)
    assert window.ready(0.9)
    assert window.take() == {"f0.0", "f0.2", "f0.4"}
    assert not window.ready(100)


def test_debounce_fires_a_steady_stream_every_max_wait() -> None:
    window = Debounce(settle=0.5, max_wait=10)
    fired = []
    for tenth in range(350):  # one file every 0.1 s for 35 s
        at = tenth / 10
        window.arrived(at)
        if window.ready(at):
            fired.append(at)
            window.take()
    assert fired == pytest.approx([10.0, 20.1, 30.2])


def test_pending_coalesces_reasons_and_sources() -> None:
    pending = Pending()
    pending.add("files:a", ["a"])
    pending.add("files:a", ["a"])
    pending.add("files:b", ["b"])
    assert pending.sources == {"a", "b"} and pending.trigger == "files:a+files:b"
    pending.add("cron", None)  # a trigger for every source widens the run to all
    assert pending.sources is None and pending.trigger == "files:a+files:b+cron"


class FixedClock(Clock):
    def __init__(self, now: dt.datetime) -> None:
        self.moment = now

    def now(self) -> dt.datetime:
        return self.moment


def test_cron_trigger_starts_a_run_at_its_time(tmp_path: Path) -> None:
    root = new_project(tmp_path / "p")
    set_trigger(root, '    - cron: "0 * * * *"\n')
    clock = FixedClock(dt.datetime(2026, 11, 22, 9, 59, 58, tzinfo=UTC))
    events: list[RunEvent] = []
    scheduler = Scheduler([Project.load(root)], clock=clock, on_event=events.append)
    scheduler.poll()
    assert not events and scheduler.status()[0]["next_cron"] == ["2026-11-22T10:00:00+00:00"]
    clock.moment = dt.datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    scheduler.poll()
    assert [(e.kind, e.trigger) for e in events] == [("started", "cron")]
    wait_for(lambda: (scheduler.poll(), not scheduler.running())[1], 120, "the cron run")
    assert events[-1].kind == "finished" and events[-1].result is not None
    assert events[-1].result["status"] == "success", events[-1].result
    with state(root) as db, db.engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.trigger, runs.c.status)).all() == [("cron", "success")]


# ------------------------------------------------------------ with files


@contextlib.contextmanager
def state(root: Path) -> Iterator[StateDB]:
    db = StateDB.open(Project.load(root).state_url)
    try:
        yield db
    finally:
        db.dispose()


@contextlib.contextmanager
def service(roots: list[Path], events: list[RunEvent]) -> Iterator[Service]:
    svc = Service([Project.load(r) for r in roots], on_event=events.append, terminal_logs=False)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop(grace=60)


def finished(events: list[RunEvent]) -> list[dict[str, object]]:
    return [e.result for e in events if e.kind == "finished" and e.result is not None]


def test_a_file_landing_starts_a_run_that_loads_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = generate(data, branches=2, days=1, seed=3, per_day=40)
    root = new_project(tmp_path / "p")
    events: list[RunEvent] = []
    with service([root], events):
        for f in sorted(data.iterdir()):
            f.replace(root / "inbox" / f.name)
        wait_for(lambda: len(finished(events)) >= 1, 120, "a run after the files landed")
    result = finished(events)[0]
    assert result["status"] == "success", result
    assert events[0].trigger == "files:branch_files"
    assert warehouse_rows(root, "SELECT count(*) FROM transactions") == [(made.transactions,)]
    # The run's log lines reached the project's JSON log with its run id.
    lines = (root / ".headwater" / "logs" / "headwater.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert any(r["run_id"] == result["run_id"] for r in records)


def test_files_present_at_start_are_picked_up(tmp_path: Path) -> None:
    """Files that landed while nothing watched: the first listing, against the ledger."""
    data = tmp_path / "data"
    generate(data, branches=1, days=2, seed=4, per_day=30)
    root = new_project(tmp_path / "p", sorted(data.iterdir()))
    events: list[RunEvent] = []
    with service([root], events):
        wait_for(lambda: len(finished(events)) >= 1, 120, "a run for files already there")
        time.sleep(1.5)  # nothing new: no second run
    assert [r["status"] for r in finished(events)] == ["success"]


def test_two_hundred_files_over_thirty_seconds_load_once_in_a_few_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = generate(data, branches=20, days=10, seed=5, per_day=8)
    names = sorted(p.name for p in data.iterdir())
    assert len(names) == 200
    root = new_project(tmp_path / "p")
    events: list[RunEvent] = []
    with service([root], events):
        for name in names:  # 200 files over 30 s, each appearing whole (rename)
            (data / name).replace(root / "inbox" / name)
            time.sleep(0.15)
        wait_for(
            lambda: (
                sum(int(r["sources"]["branch_files"]["files_new"]) for r in finished(events)) == 200
                and not svc_busy(events)
            ),
            240,
            "every file to be loaded",
        )
    results = finished(events)
    assert all(r["status"] == "success" for r in results), results
    assert 2 <= len(results) <= 6, [e.trigger for e in events]
    with state(root) as db, db.engine.connect() as conn:
        landed = conn.execute(sa.select(files.c.name)).scalars().all()
    assert sorted(landed) == names  # each file exactly once in the ledger
    assert warehouse_rows(root, "SELECT count(*) FROM transactions") == [(made.transactions,)]
    # The same files in one uninterrupted manual run give the same warehouse.
    reference = new_project(tmp_path / "ref", sorted((root / "inbox").iterdir()))
    assert run_project(reference).ok
    assert warehouse_snapshot(root) == warehouse_snapshot(reference)


def watched(*projects: Project) -> tuple[Scheduler, list[RunEvent]]:
    """A scheduler over `projects` and the list its run events are appended to."""
    scheduler = Scheduler(list(projects))
    events: list[RunEvent] = []
    scheduler.on_event = events.append
    return scheduler, events


def svc_busy(events: list[RunEvent]) -> bool:
    started = sum(1 for e in events if e.kind == "started")
    return started != sum(1 for e in events if e.kind == "finished")


def test_triggers_during_a_run_coalesce_into_one_next_run(tmp_path: Path) -> None:
    root = new_project(tmp_path / "p")
    scheduler, events = watched(Project.load(root))
    scheduler.fire("cafe", "manual")
    scheduler.poll()
    assert scheduler.running()
    for _ in range(5):
        scheduler.fire("cafe", "manual")
    scheduler.fire("cafe", "cron")
    wait_for(lambda: (scheduler.poll(), len(finished(events)) == 2)[1], 120, "two runs")
    assert [e.trigger for e in events if e.kind == "started"] == ["manual", "manual+cron"]
    assert not scheduler.running() and scheduler.status()[0]["pending"] is None


def test_after_trigger_runs_a_downstream_project(tmp_path: Path) -> None:
    up, down = new_project(tmp_path / "up"), new_project(tmp_path / "down")
    text = (up / "headwater.yaml").read_text()
    (up / "headwater.yaml").write_text(text.replace("name: cafe", "name: upstream"))
    set_trigger(down, "    - after: upstream\n")
    scheduler, events = watched(Project.load(up), Project.load(down))
    scheduler.fire("upstream", "manual")
    wait_for(lambda: (scheduler.poll(), len(finished(events)) == 2)[1], 120, "both runs")
    assert [(e.pipeline, e.trigger) for e in events if e.kind == "started"] == [
        ("upstream", "manual"),
        ("cafe", "after:upstream"),
    ]


def test_a_thread_safe_fire_wakes_the_loop(tmp_path: Path) -> None:
    root = new_project(tmp_path / "p")
    scheduler = Scheduler([Project.load(root)])
    woke = threading.Event()

    def loop() -> None:
        scheduler.wait(30)
        woke.set()

    thread = threading.Thread(target=loop)
    thread.start()
    scheduler.fire("cafe", "manual")
    thread.join(5)
    assert woke.is_set()


def test_objects_landing_under_an_s3_prefix_start_a_run(tmp_path: Path, s3_bucket: Bucket) -> None:
    data = tmp_path / "data"
    made = generate(data, branches=2, days=1, seed=8, per_day=25)
    root = new_project(tmp_path / "p")
    text = (root / "headwater.yaml").read_text()
    text = text.replace("path: inbox", f"path: s3://{s3_bucket.name}/drops")
    # Both objects inside one debounce window, whenever the listing sees each.
    trigger = "    - files: branch_files\n      poll_seconds: 0.5\n      settle_seconds: 2\n"
    text = text.replace("    - files: branch_files\n", trigger)
    (root / "headwater.yaml").write_text(text)
    client = s3_bucket.client()
    events: list[RunEvent] = []
    with service([root], events):
        time.sleep(1)  # the first listing: nothing there yet, no run
        assert not events
        for f in sorted(data.iterdir()):
            client.put_object(Bucket=s3_bucket.name, Key=f"drops/{f.name}", Body=f.read_bytes())
        wait_for(lambda: len(finished(events)) >= 1, 120, "a run after the objects landed")
        time.sleep(2.5)  # listed again: the ledger knows them, no second run
    results = finished(events)
    assert [r["status"] for r in results] == ["success"], results
    assert results[0]["sources"]["branch_files"]["files_new"] == 2
    assert warehouse_rows(root, "SELECT count(*) FROM transactions") == [(made.transactions,)]


def test_stopping_starts_nothing_that_was_queued(tmp_path: Path) -> None:
    root = new_project(tmp_path / "p")
    scheduler, events = watched(Project.load(root))
    scheduler.fire("cafe", "manual")
    scheduler.poll()
    scheduler.fire("cafe", "cron")  # queued behind the running run
    scheduler.stop_runs(grace=120)
    assert [e.kind for e in events] == ["started", "finished"]
    assert events[-1].result is not None and events[-1].result["status"] == "success"


def test_a_run_killed_while_logging_does_not_block_the_next(tmp_path: Path) -> None:
    """Each run has its own log channel: killing one mid-line cannot wedge the next."""
    root = new_project(tmp_path / "p")
    text = (root / "headwater.yaml").read_text()
    (root / "headwater.yaml").write_text(
        text.replace("timeout_minutes: 60", "timeout_minutes: 0.001")
    )
    scheduler, events = watched(Project.load(root))
    scheduler.fire("cafe", "manual")
    wait_for(lambda: (scheduler.poll(), len(finished(events)) == 1)[1], 60, "the killed run")
    assert "timed out" in str(finished(events)[0]["error"])
    (root / "headwater.yaml").write_text(text)  # a sane timeout again
    scheduler.pipelines["cafe"].timeout = 600
    scheduler.fire("cafe", "manual")
    wait_for(lambda: (scheduler.poll(), len(finished(events)) == 2)[1], 120, "the next run")
    assert finished(events)[1]["status"] == "success", finished(events)[1]


def test_check_prints_triggers_and_alerts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from headwater.cli import app

    root = new_project(tmp_path / "p")
    set_trigger(
        root,
        '    - files: branch_files\n    - cron: "*/15 * * * *"\n      timezone: Europe/London\n',
    )
    with (root / "headwater.yaml").open("a") as f:
        f.write(
            "alerts:\n  email: {host: smtp.example.com, sender: hw@example.com, to: [ops@example.com]}\n"
            "  webhooks: [{url: 'https://hooks.example.com/T/B/SECRET', format: slack}]\n"
            "  staleness: [{source: branch_files, deadline: '02:00'}]\n"
        )
    result = CliRunner().invoke(app, ["check", "-p", str(root)])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert "trigger: cron */15 * * * * (Europe/London)" in lines
    assert any(line.startswith("trigger: files landing in branch_files") for line in lines)
    assert (
        "alerts: email to ops@example.com, webhook (slack) on failure, check, stale, recovery; "
        "1 staleness rule(s)" in " ".join(lines)
    )
    assert "SECRET" not in result.output
