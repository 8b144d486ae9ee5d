"""Golden files for the cafe template's SQL models: the warehouse, table by table.

The input is generated Format A files plus `golden/cafe_mixed_input.csv`, a
hand-written file (synthetic names) mixing Formats B and A0, Excel damage and
rows that must be quarantined. Every warehouse table and the quarantine zone
are compared, sorted, with CSV files in `golden/cafe/`. After a deliberate
change to the models, regenerate them with `HEADWATER_UPDATE_GOLDEN=1` and
review the diff like code.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest

from headwater.project import Project
from headwater.serve.query import connect
from headwater.templates.cafe.generator import generate
from tests.conftest import WAREHOUSE_TABLES, new_project, run_project, warehouse_rows

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HEADWATER_UPDATE_GOLDEN") == "1"


def as_csv(header: list[str], rows: list[tuple[object, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in sorted(rows, key=lambda r: [("" if v is None else str(v)) for v in r]):
        writer.writerow(["NULL" if v is None else v for v in row])
    return out.getvalue()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = new_project(tmp_path_factory.mktemp("golden") / "p")
    generate(root / "inbox", branches=2, days=1, seed=3, per_day=12)
    shutil.copyfile(GOLDEN / "cafe_mixed_input.csv", root / "inbox" / "mixed.csv")
    summary = run_project(root)
    assert summary.ok, summary.error
    return root


def check(name: str, text: str) -> None:
    path = GOLDEN / "cafe" / f"{name}.csv"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with HEADWATER_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from {path}"


@pytest.mark.parametrize("table", WAREHOUSE_TABLES)
def test_warehouse_table_matches_golden_file(project: Path, table: str) -> None:
    columns = [r[0] for r in warehouse_rows(project, f"DESCRIBE {table}")]
    rows = warehouse_rows(project, f"SELECT * FROM {table}")
    check(table, as_csv([str(c) for c in columns], rows))


def test_quarantine_matches_golden_file(project: Path) -> None:
    with connect(Project.load(project), lake=True) as conn:
        rows = conn.execute(
            "SELECT stage, name, file, line, rule, reason FROM quarantine"
        ).fetchall()
    check("quarantine", as_csv(["stage", "name", "file", "line", "rule", "reason"], rows))
