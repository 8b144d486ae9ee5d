"""The cafe template with every part on a server: lake on S3 (moto_server), state and
warehouse on PostgreSQL. Table for table the embedded run's warehouse; a run killed
during the PostgreSQL load leaves the warehouse as it was, and the rerun completes it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from headwater.runs.faults import ENV
from headwater.templates.cafe.generator import generate
from tests.conftest import WAREHOUSE_TABLES, new_project, warehouse_snapshot
from tests.fixtures.servers import Bucket


def on_servers(root: Path, bucket: Bucket, state: str, warehouse: str) -> None:
    path = root / "headwater.yaml"
    text = path.read_text()
    text = text.replace("url: .headwater/lake", f"url: {bucket.url('lake')}")
    text = text.replace("url: sqlite:///.headwater/state.db", "url: ${STATE_URL}")
    text = text.replace(
        "type: duckdb\n  path: .headwater/warehouse.duckdb",
        "type: postgres\n  url: ${WAREHOUSE_URL}\n  schema_name: cafe",
    )
    path.write_text(text)
    with (root / ".env").open("a") as env:
        env.write(f"STATE_URL={state}\nWAREHOUSE_URL={warehouse}\n")


def pg_snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    with psycopg.connect(url) as conn:
        for table in WAREHOUSE_TABLES:
            exists = conn.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = 'cafe' AND table_name = %s",
                [table],
            ).fetchone()
            rows = conn.execute(f"SELECT * FROM cafe.{table}").fetchall() if exists[0] else []  # type: ignore[index]
            out[table] = sorted(rows, key=repr)
    return out


def normalised(
    snapshot: dict[str, list[tuple[object, ...]]],
) -> dict[str, list[tuple[object, ...]]]:
    """Values as comparable across DuckDB and PostgreSQL drivers (Decimal scale kept)."""
    return {
        t: sorted(
            (tuple(v.normalize() if isinstance(v, Decimal) else v for v in row) for row in rows),
            key=repr,
        )
        for t, rows in snapshot.items()
    }


def headwater_run(root: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if fault:
        env[ENV] = fault
    return subprocess.run(
        [sys.executable, "-m", "headwater", "run", "-p", str(root), "-q"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    base = tmp_path_factory.mktemp("pg-days")
    generate(base, branches=3, days=2, seed=5, per_day=80)
    files = sorted(base.glob("*.csv"))
    day1 = [f for f in files if "25-08-2021" in f.name]
    return day1, [f for f in files if f not in day1]


def test_cafe_on_s3_and_postgres_equals_the_embedded_run_and_survives_a_killed_load(
    tmp_path: Path,
    two_days: tuple[list[Path], list[Path]],
    s3_bucket: Bucket,
    pg_database: str,
) -> None:
    day1, day2 = two_days
    embedded = new_project(tmp_path / "embedded", day1)
    assert headwater_run(embedded).returncode == 0
    embedded_day1 = normalised(warehouse_snapshot(embedded))
    for f in day2:
        shutil.copyfile(f, embedded / "inbox" / f.name)
    assert headwater_run(embedded).returncode == 0
    embedded_both = normalised(warehouse_snapshot(embedded))

    served = new_project(tmp_path / "served", day1)
    on_servers(served, s3_bucket, pg_database, pg_database)
    # Killed just before the load commits, on the first run: no table appears.
    crashed = headwater_run(served, fault="load.before_commit")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert all(rows == [] for rows in pg_snapshot(pg_database).values())
    rerun = headwater_run(served)
    assert rerun.returncode == 0, rerun.stderr
    assert normalised(pg_snapshot(pg_database)) == embedded_day1

    # Killed during the load of day 2: the warehouse stays at day 1; the rerun adds day 2.
    for f in day2:
        shutil.copyfile(f, served / "inbox" / f.name)
    crashed = headwater_run(served, fault="load.before_commit")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert normalised(pg_snapshot(pg_database)) == embedded_day1
    rerun = headwater_run(served)
    assert rerun.returncode == 0, rerun.stderr
    assert normalised(pg_snapshot(pg_database)) == embedded_both
    again = headwater_run(served)
    assert again.returncode == 0
    assert normalised(pg_snapshot(pg_database)) == embedded_both

    # `headwater query` reads the PostgreSQL warehouse, read-only.
    query = subprocess.run(
        [sys.executable, "-m", "headwater", "query", "-p", str(served), "--format", "csv",
         "select count(*) as n from transactions"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    assert query.stdout.splitlines()[1:] == [str(len(embedded_both["transactions"]))]
    refused = subprocess.run(
        [sys.executable, "-m", "headwater", "query", "-p", str(served), "drop table transactions"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert len(pg_snapshot(pg_database)["transactions"]) == len(embedded_both["transactions"])
