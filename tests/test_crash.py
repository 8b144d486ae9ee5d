"""Crash safety: a run killed (SIGKILL) anywhere, then rerun, ends with the tables of an uninterrupted run.

`HEADWATER_FAULT=<point>` makes the run kill itself with SIGKILL at that named
point (see headwater.runs.faults): no cleanup, no `finally`, like a machine
dying. Each point is tried on a first run and on a later run that adds files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from headwater.project import Project
from headwater.runs.faults import ENV, POINTS
from headwater.serve.query import connect
from headwater.templates.cafe.generator import generate
from tests.conftest import new_project, warehouse_snapshot


def headwater_run(root: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if fault:
        env[ENV] = fault
    return subprocess.run(
        [sys.executable, "-m", "headwater", "run", "-p", str(root), "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def lake_counts(root: Path) -> dict[str, int]:
    with connect(Project.load(root), lake=True) as conn:
        names = ["branch_files", "transactions", "transaction_items", "products", "branches"]
        return {n: int(conn.execute(f"SELECT count(*) FROM {n}").fetchall()[0][0]) for n in names}


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two days of files for three branches, generated once."""
    base = tmp_path_factory.mktemp("crash-data")
    generate(base / "all", branches=3, days=2, seed=11, per_day=60)
    day1, day2 = base / "day1", base / "day2"
    day1.mkdir()
    day2.mkdir()
    for f in sorted((base / "all").glob("*.csv")):
        shutil.copyfile(f, (day1 if "25-08-2021" in f.name else day2) / f.name)
    assert len(list(day1.iterdir())) == 3 and len(list(day2.iterdir())) == 3
    return day1, day2


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, days: tuple[Path, Path]
) -> dict[str, object]:
    """Tables after uninterrupted runs: day 1, then day 2."""
    root = new_project(tmp_path_factory.mktemp("reference") / "p", sorted(days[0].iterdir()))
    assert headwater_run(root).returncode == 0
    after_day1 = warehouse_snapshot(root)
    for f in sorted(days[1].iterdir()):
        shutil.copyfile(f, root / "inbox" / f.name)
    assert headwater_run(root).returncode == 0
    return {"day1": after_day1, "both": warehouse_snapshot(root), "lake": lake_counts(root)}


@pytest.mark.parametrize("point", POINTS)
def test_crash_on_first_run(
    point: str, tmp_path: Path, days: tuple[Path, Path], reference: dict[str, object]
) -> None:
    root = new_project(tmp_path / "p", sorted(days[0].iterdir()))
    crashed = headwater_run(root, fault=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    rerun = headwater_run(root)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert warehouse_snapshot(root) == reference["day1"]


@pytest.mark.parametrize("point", POINTS)
def test_crash_on_a_later_run(
    point: str, tmp_path: Path, days: tuple[Path, Path], reference: dict[str, object]
) -> None:
    root = new_project(tmp_path / "p", sorted(days[0].iterdir()))
    assert headwater_run(root).returncode == 0
    for f in sorted(days[1].iterdir()):
        shutil.copyfile(f, root / "inbox" / f.name)
    crashed = headwater_run(root, fault=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    rerun = headwater_run(root)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert warehouse_snapshot(root) == reference["both"]
    assert lake_counts(root) == reference["lake"]
    # The crashed run is recorded as abandoned, not left "running".
    from headwater.observe.status import status_report

    statuses = [r["status"] for r in status_report(Project.load(root))["runs"]]
    assert statuses[:3] == ["success", "abandoned", "success"]
