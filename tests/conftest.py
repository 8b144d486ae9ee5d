"""Shared fixtures: cafe projects in temporary folders, the shared sample data, run helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import duckdb
import pytest

from headwater.project import Project
from headwater.runs.pipeline import run
from headwater.runs.summary import RunSummary
from headwater.templates import init_project

REPO = Path(__file__).resolve().parents[1]
SECRET = "test-secret-not-for-production"


def shared_data() -> Path:
    """../shared/data beside the checkout (or $HEADWATER_SHARED_DATA)."""
    candidates = (
        [Path(os.environ["HEADWATER_SHARED_DATA"])] if "HEADWATER_SHARED_DATA" in os.environ else []
    )
    candidates += [REPO.parent / "shared" / "data", Path("/work/shared/data")]
    for path in candidates:
        if (path / "cafe").is_dir():
            return path
    pytest.fail(
        "sample data not found: expected ../shared/data beside the checkout "
        "(or set HEADWATER_SHARED_DATA)"
    )


@pytest.fixture(scope="session")
def cafe_data() -> Path:
    return shared_data() / "cafe"


CANONICAL = "JRoloS__Generation_UK_Group_Project/raw_data/chesterfield_25-08-2021_09-00-00.csv"
TEAM4 = "Generation-De-lon-3__team-4-project/data"


def new_project(root: Path, files: Iterable[Path] = (), glob: str | None = None) -> Path:
    """A cafe project under `root` with `files` in its inbox and a fixed PII secret."""
    init_project(root, "cafe")
    (root / ".env").write_text(f"HEADWATER_PII_SECRET={SECRET}\n")
    if glob is not None:
        text = (root / "headwater.yaml").read_text()
        (root / "headwater.yaml").write_text(text.replace('glob: "**/*.csv"', f'glob: "{glob}"'))
    for i, f in enumerate(files):
        dest = root / "inbox" / f.name
        if dest.exists():  # two sample files may share a name: keep both
            dest = root / "inbox" / f"{i}_{f.name}"
        shutil.copyfile(f, dest)
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def make(files: Iterable[Path] = (), glob: str | None = None) -> Path:
        return new_project(tmp_path / f"project{next(counter)}", files, glob)

    return make


def run_project(root: Path) -> RunSummary:
    return run(Project.load(root))


def warehouse_rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    conn = duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


WAREHOUSE_TABLES = ("branches", "products", "transactions", "transaction_items")


def warehouse_snapshot(root: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every warehouse table's rows, sorted: compare two of these for equality."""
    conn = duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        return {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in WAREHOUSE_TABLES
        }
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _reset_headwater_logging() -> Iterator[None]:
    """A CLI run or a scheduler in one test installs log handlers; the next test starts clean."""
    yield
    from headwater.observe import logs

    logs.reset()


pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.totesys", "tests.fixtures.receivers"]
