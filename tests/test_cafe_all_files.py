"""Every file under ../shared/data/cafe/ through the cafe template: nothing crashes, every row is accounted for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from headwater.project import Project
from headwater.serve.query import connect
from tests.conftest import new_project, run_project


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory, cafe_data: Path) -> Path:
    root = new_project(tmp_path_factory.mktemp("all") / "p", glob="**/*")
    shutil.rmtree(root / "inbox")
    shutil.copytree(cafe_data, root / "inbox")
    summary = run_project(root)
    assert summary.ok, summary.error
    return root


def lake(root: Path, sql: str) -> list[tuple[object, ...]]:
    with connect(Project.load(root), lake=True) as conn:
        return conn.execute(sql).fetchall()


def test_every_file_found_is_read_or_a_known_duplicate(everything: Path, cafe_data: Path) -> None:
    all_files = {p.relative_to(cafe_data).as_posix() for p in cafe_data.rglob("*") if p.is_file()}
    read = {str(r[0]) for r in lake(everything, "SELECT DISTINCT _file FROM branch_files")}
    rejected = {str(r[0]) for r in lake(everything, "SELECT DISTINCT file FROM quarantine")}
    from headwater.state import ledger
    from headwater.state.db import StateDB

    db = StateDB.open(Project.load(everything).state_url, create=False)
    try:
        landed = {str(e["name"]) for e in ledger.file_stats(db, "branch_files")}
    finally:
        db.dispose()
    assert read | rejected <= landed
    duplicates = all_files - landed
    # Only byte-identical copies are skipped: each has a landed twin with the same bytes.
    for name in duplicates:
        data = (cafe_data / name).read_bytes()
        assert any((cafe_data / other).read_bytes() == data for other in landed), name
    assert len(landed) + len(duplicates) == len(all_files)


def test_rows_read_equal_rows_loaded_plus_quarantined_per_file(everything: Path) -> None:
    rows = lake(
        everything,
        """
        WITH loaded AS (SELECT _file AS file, count(*) AS n FROM transactions GROUP BY 1),
             quarantined AS (SELECT file, count(*) AS n FROM quarantine GROUP BY 1)
        SELECT f.file, coalesce(l.n, 0), coalesce(q.n, 0)
        FROM (SELECT file FROM loaded UNION SELECT file FROM quarantined) f
        LEFT JOIN loaded l USING (file) LEFT JOIN quarantined q USING (file)
        """,
    )
    from headwater.state import ledger
    from headwater.state.db import StateDB

    db = StateDB.open(Project.load(everything).state_url, create=False)
    try:
        read = {
            str(e["name"]): int(e["rows_read"] or 0) for e in ledger.file_stats(db, "branch_files")
        }
    finally:
        db.dispose()
    accounted = {str(r[0]): (int(r[1]), int(r[2])) for r in rows}  # type: ignore[call-overload]
    assert read, "no files read"
    for name, rows_read in read.items():
        loaded, quarantined = accounted.get(name, (0, 0))
        assert rows_read == loaded + quarantined, (name, rows_read, loaded, quarantined)
    # The totals the run reported agree with the data.
    assert sum(read.values()) == sum(sum(v) for v in accounted.values())


def test_each_quarantined_row_has_file_line_and_reason(everything: Path) -> None:
    [(total, missing)] = lake(
        everything,
        "SELECT count(*), count(*) FILTER (WHERE file IS NULL OR line IS NULL OR line < 1 "
        "OR coalesce(reason, '') = '' OR coalesce(rule, '') = '') FROM quarantine",
    )
    assert total > 10_000  # the JSON, YAML and team output files do not fit the format
    assert missing == 0


def test_known_damage_loads(everything: Path) -> None:
    by_file = dict(
        lake(everything, "SELECT _file, count(*) FROM transactions GROUP BY 1")  # type: ignore[arg-type]
    )
    expectations = {
        # padded to fixed width with spaces
        "DanielAByrne__GenerationGroup1Project/chesterfield_25-08-2021_09-00-00.csv": 268,
        # card numbers cut to 5.49E+15
        "Ijaz-M1__Cafe_ETL/chesterfield_25-08-2021_09-00-00.csv": 268,
        # a descriptive header replaced the first data row
        "data-engineer-sk__AWS-ETL-Project/data/chesterfield_25-08-2021_09-00-00.csv": 267,
        # six header lines in two column orders, then Format B
        "Generation-De-lon-3__team-4-project/_history/23c6906d/data/2021-02-23-isle-of-wight.csv": 540,
        # oldest triple format, CRLF, named only by date
        "data-engineering-de-lon1-gen-z__team-z/2020-10-01.csv": 480,
        # Excel round trip: 9/5/2023 9:00, totals like 4, header added
        "DataWithMichael__Super-Cafe-ETL-Pipeline/data/leeds_09-05-2023_09-00-00(in).csv": 50,
        # one row, then a whitespace-only line, no final newline
        "KiranS1999__Cafe-Data-Management-AWS/proof_of_concept/src/test_data/chesterfield_25-08-2021_09-00-00.csv": 1,
        # basket sum 20.55 differs from the total 17.3: loads, with a warning
        "generation-de-x3-lle__mercury-project/chesterfield2.csv": 1,
    }
    for name, count in expectations.items():
        assert by_file.get(name) == count, name
    # Copies of the canonical Chesterfield file, damaged in different ways, give its revenue.
    copies = [
        "JRoloS__Generation_UK_Group_Project/raw_data",  # the canonical blob
        "Dami-Teller-Git__project_portfolio/cafe-sales-etl-platform/data",  # CRLF
        "DanielAByrne__GenerationGroup1Project",  # padded with spaces
        "Ijaz-M1__Cafe_ETL",  # card numbers as 5.49E+15
        "hassan848__AWS-Cafe-Data-ETL/src/local_ETL",  # header added, CRLF header line
    ]
    names = ", ".join(f"'{c}/chesterfield_25-08-2021_09-00-00.csv'" for c in copies)
    revenue = lake(
        everything,
        f"SELECT _file, sum(total) FROM transactions WHERE _file IN ({names}) GROUP BY 1",
    )
    assert len(revenue) == len(copies)
    assert {str(r[1]) for r in revenue} == {"2088.65"}


def test_total_mismatch_is_a_warning_not_a_rejection(everything: Path) -> None:
    [(total, basket)] = lake(
        everything,
        "SELECT total, _items_total FROM transactions "
        "WHERE _file = 'generation-de-x3-lle__mercury-project/chesterfield2.csv'",
    )
    assert str(total) == "17.30"
    assert str(basket) == "20.55"
