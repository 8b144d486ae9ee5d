"""Runs whose input spans several batches (`engine.batch_mb`), with the next batch parsed
ahead while the current one commits: the same tables as one batch, a failing batch stops
the run with nothing of the batches after it committed, and an error in a batch parsed
ahead is reported by that batch's stage."""

from __future__ import annotations

from pathlib import Path

from headwater.lake.tables import Tables
from headwater.project import Project
from tests.fixtures.tiny import (
    BASE_YAML,
    lake,
    model,
    run_ok,
    run_tiny,
    tiny_project,
    warehouse,
    write_model,
)

ONE_MB = "engine:\n  batch_mb: 1\n"
FILES = 4
ROWS = 50_000  # ~0.8 MB a file: each file is a batch of its own at batch_mb 1

MODELS = {
    "rows": model(
        "select cast(id as integer) as id, name, cast(amount as integer) as amount, _file from src",
        materialized="incremental",
        publish=True,
    ),
    "total": model(
        "select count(*) as n, sum(cast(amount as integer)) as amount from src", publish=True
    ),
}


def day(k: int, bad_name: bool = False) -> str:
    """A file of ROWS rows, plus one line with a column missing (quarantined by the parser)."""
    first = k * ROWS
    lines = [f"{i},n{i},{i % 97}" for i in range(first, first + ROWS)]
    if bad_name:
        lines[5] = f"{first + 5},,1"
    lines.insert(7, f"{first}-short,line")
    return "\n".join(lines) + "\n"


def files() -> dict[str, str]:
    return {f"day{k}.csv": day(k) for k in range(FILES)}


def committed(root: Path, table: str) -> set[int]:
    project = Project.load(root)
    tables = Tables.open(project.state_url, project.open_store())
    try:
        return tables.committed_batches(table)
    finally:
        tables.close()


def test_many_batches_give_the_tables_of_one(tmp_path: Path) -> None:
    one = tiny_project(tmp_path / "one", MODELS, files())
    many = tiny_project(tmp_path / "many", MODELS, files(), yaml_text=BASE_YAML + ONE_MB)
    single, several = run_ok(one), run_ok(many)
    assert len(single.batches) == 1
    assert len(several.batches) == FILES
    assert committed(many, "src") == set(several.batches)
    for summary in (single, several):
        source = summary.sources["src"]
        assert (source.files_read, source.rows_read) == (FILES, FILES * (ROWS + 1))
        assert source.rows_quarantined == FILES
    for sql in (
        "select * from rows order by id",
        "select * from total",
    ):
        assert warehouse(one, sql) == warehouse(many, sql)
    assert warehouse(many, "select count(*), count(distinct id) from rows") == [
        (FILES * ROWS, FILES * ROWS)
    ]
    assert warehouse(many, "select n from total") == [(FILES * ROWS,)]
    quarantined = "select file, line, rule from quarantine order by file"
    assert lake(one, quarantined) == lake(many, quarantined)
    assert [r[0] for r in lake(many, quarantined)] == [f"day{k}.csv" for k in range(FILES)]


def test_a_failing_batch_stops_the_run_and_the_batch_parsed_ahead_is_not_committed(
    tmp_path: Path,
) -> None:
    strict = model(
        "select cast(id as integer) as id, nullif(name, '') as name from src",
        materialized="incremental",
        publish=True,
        checks=[{"not_null": "name", "severity": "error"}],
    )
    data = files()
    data["day1.csv"] = day(1, bad_name=True)
    root = tiny_project(tmp_path / "p", {"strict": strict}, data, yaml_text=BASE_YAML + ONE_MB)
    failed = run_tiny(root)
    assert not failed.ok
    first, second = failed.batches
    assert failed.models["strict"].error == (
        "model 'strict': error-severity check failed: not_null(name) (1 rows)"
    )
    # The third batch was parsed ahead while the second ran its models: never committed.
    assert committed(root, "src") == {first, second}
    assert lake(root, "select count(*) from src") == [(2 * ROWS,)]

    write_model(root, "strict", strict.replace("severity: error", "severity: warn"))
    fixed = run_ok(root)
    assert fixed.batches[0] == second
    assert len(fixed.batches) == FILES - 1
    assert lake(root, "select count(*), count(distinct _line || _file) from src") == [
        (FILES * ROWS, FILES * ROWS)
    ]
    assert warehouse(root, "select count(*), count(distinct id) from strict") == [
        (FILES * ROWS, FILES * ROWS)
    ]


HEADER_YAML = """\
name: headers
sources:
  src:
    kind: files
    path: inbox
    glob: "*.csv"
    pii:
      email: {policy: drop}
engine:
  batch_mb: 1
"""


def test_an_error_in_a_batch_parsed_ahead_is_that_batchs_error(tmp_path: Path) -> None:
    rows = range(ROWS)
    with_email = "id,name,email\n" + "".join(f"{i},u{i},u{i}@example.com\n" for i in rows)
    without = "id,name\n" + "".join(f"{i},v{i}\n" for i in rows)  # lost its protected column
    root = tiny_project(
        tmp_path / "p",
        {"users": model("select count(*) as n from src", publish=True)},
        {"a.csv": with_email, "b.csv": without},
        yaml_text=HEADER_YAML,
    )
    summary = run_tiny(root)
    assert not summary.ok
    assert summary.error is not None
    assert "sources.src.pii names column(s) ['email']" in summary.error
    assert "b.csv" in summary.error
    [first] = committed(root, "src")
    assert summary.batches == [first, first + 1]
    assert summary.models["users"].status == "committed"
    assert lake(root, "select count(*), count(distinct name) from src") == [(ROWS, ROWS)]
    assert "email" not in [r[0] for r in lake(root, "describe src")]
