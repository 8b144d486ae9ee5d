"""The lake browser of `headwater serve`: tables, schema, snapshots, preview, time travel."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from headwater.lake.tables import Tables, scan_sql
from headwater.project import Project
from headwater.serve.app import create_app
from headwater.templates.cafe.generator import generate
from tests.conftest import new_project, run_project, warehouse_rows

with warnings.catch_warnings():  # starlette asks for httpx2 on import; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def transactions(root: Path) -> int:
    return int(str(warehouse_rows(root, "select count(*) from transactions")[0][0]))


@dataclass(frozen=True)
class TwoRuns:
    project: Project
    first_run_transactions: int


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """Day one, then day two: two snapshots of each incremental table."""
    root = new_project(tmp_path_factory.mktemp("lake") / "p")
    generate(root / "inbox", branches=3, days=1, seed=5, per_day=80)
    assert run_project(root).ok
    first = transactions(root)
    generate(root / "inbox", branches=3, days=2, seed=5, per_day=80)  # adds day two
    assert run_project(root).ok
    assert transactions(root) > first
    return TwoRuns(Project.load(root), first)


@pytest.fixture(scope="module")
def client(two_runs: TwoRuns) -> Iterator[TestClient]:
    with TestClient(create_app(two_runs.project)) as c:
        yield c


@pytest.fixture
def tables(two_runs: TwoRuns) -> Iterator[Tables]:
    project = two_runs.project
    t = Tables.open(project.state_url, project.open_store())
    try:
        yield t
    finally:
        t.close()


class _Rows(HTMLParser):
    """Rows of the `<table class="...">` named, as lists of cell texts (and row attributes)."""

    def __init__(self, table_class: str) -> None:
        super().__init__()
        self.table_class = table_class
        self.rows: list[tuple[dict[str, str | None], list[str]]] = []
        self._inside = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._inside = dict(attrs).get("class") == self.table_class
        elif self._inside and tag == "tr":
            self.rows.append((dict(attrs), []))
        elif self._inside and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str, table_class: str) -> list[tuple[dict[str, str | None], list[str]]]:
    parser = _Rows(table_class)
    parser.feed(html)
    return [(attrs, cells) for attrs, cells in parser.rows if cells]


def count_files(files: list[str]) -> int:
    conn = duckdb.connect()
    try:
        return int(conn.execute(f"select count(*) from {scan_sql(files)}").fetchall()[0][0])
    finally:
        conn.close()


def test_tables_page_counts_equal_the_lake(client: TestClient, tables: Tables) -> None:
    response = client.get("/lake")
    assert response.status_code == 200
    rows = {str(attrs["data-table"]): cells for attrs, cells in table_rows(response.text, "lake")}
    assert set(rows) == set(tables.names())
    assert {"transactions", "transaction_items", "branches", "products"} <= set(rows)
    for name, cells in rows.items():
        table = tables.load(name)
        files = tables.data_files(name)
        assert int(cells[1].replace(",", "")) == count_files(files), name
        assert int(cells[2]) == len(files), name
        assert int(cells[3]) == len(table.snapshots()), name
        assert cells[4].endswith("UTC"), name
    assert rows["transactions"][3] == "2"  # appended once per run


def test_schema_with_types(client: TestClient, tables: Tables) -> None:
    response = client.get("/lake/transactions")
    assert response.status_code == 200
    schema = [cells for _, cells in table_rows(response.text, "schema")]
    expected = [
        [str(f.field_id), f.name, str(f.field_type), "yes" if f.required else "no"]
        for f in tables.load("transactions").schema().fields
    ]
    assert schema == expected
    assert ["3", "transacted_at", "timestamp", "no"] in schema
    assert ["4", "total", "decimal(10, 2)", "no"] in schema


def test_snapshot_list_after_two_runs(client: TestClient, two_runs: TwoRuns) -> None:
    response = client.get("/lake/transactions")
    snapshots = table_rows(response.text, "snapshots")
    assert len(snapshots) == 2
    newest, oldest = (cells for _, cells in snapshots)
    total = transactions(two_runs.project.root)
    first = two_runs.first_run_transactions
    # id, committed, operation, batch, run, added, deleted, total
    assert newest[0].endswith("(current)") and not oldest[0].endswith("(current)")
    assert (newest[2], newest[4], newest[5], newest[7]) == (
        "append",
        "2",
        f"{total - first:,}",
        f"{total:,}",
    )
    assert (oldest[2], oldest[4], oldest[5], oldest[7]) == (
        "append",
        "1",
        f"{first:,}",
        f"{first:,}",
    )
    assert int(oldest[3]) < int(newest[3])  # batches


def _snapshot_ids(html: str) -> list[int]:
    return [int(str(attrs["data-snapshot"])) for attrs, _ in table_rows(html, "snapshots")]


def _preview(html: str) -> tuple[int, list[list[str]]]:
    shown = re.search(r'class="snapshot-info" data-rows="(\d+)"', html)
    assert shown is not None
    return int(shown.group(1)), [cells for _, cells in table_rows(html, "preview")]


def test_time_travel_preview_shows_the_earlier_snapshot(
    client: TestClient, two_runs: TwoRuns, tables: Tables
) -> None:
    current = client.get("/lake/transactions")
    newest, oldest = _snapshot_ids(current.text)
    total = transactions(two_runs.project.root)
    rows, preview = _preview(current.text)
    assert rows == total
    assert len(preview) == 50
    assert "Time travel" not in current.text

    earlier = client.get(f"/lake/transactions?snapshot={oldest}")
    assert earlier.status_code == 200
    rows, preview = _preview(earlier.text)
    assert rows == two_runs.first_run_transactions
    assert f"Time travel: as of snapshot {oldest}" in earlier.text
    assert f"{two_runs.first_run_transactions:,} rows in 1 file" in earlier.text
    # Every previewed row is from the first run's batch.
    first_batch = min(tables.committed_batches("transactions"))
    assert len(preview) == 50
    assert {row[-1] for row in preview} == {str(first_batch)}
    assert "selected>" in earlier.text and f'value="{oldest}" selected' in earlier.text

    same = client.get(f"/lake/transactions?snapshot={newest}")
    assert _preview(same.text)[0] == total


def test_replaced_table_time_travel(client: TestClient) -> None:
    """A merge rewrites the table: delete then append, the delete snapshot holds no rows."""
    page = client.get("/lake/branches")
    snapshots = table_rows(page.text, "snapshots")
    operations = [cells[2] for _, cells in snapshots]
    assert operations == ["append", "delete", "append"]
    deleted = int(str(snapshots[1][0]["data-snapshot"]))
    empty = client.get(f"/lake/branches?snapshot={deleted}")
    assert empty.status_code == 200
    assert _preview(empty.text) == (0, [])


@pytest.mark.parametrize(
    "path",
    ["/lake/no_such_table", "/lake/transactions?snapshot=12345", "/lake/transactions?snapshot=x"],
)
def test_unknown_table_or_snapshot_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert 'class="error"' in response.text
    assert "<nav" in response.text  # a page, not a bare error


def test_lake_before_the_first_run(tmp_path: Path) -> None:
    project = Project.load(new_project(tmp_path / "empty"))
    with TestClient(create_app(project)) as c:
        page = c.get("/lake")
        assert page.status_code == 200
        assert "The lake is empty" in page.text
        assert c.get("/lake/transactions").status_code == 404
