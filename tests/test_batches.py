"""Runs whose input spans several batches (`engine.batch_mb`), with the next batch parsed
ahead while the current one commits: the same tables as one batch, a failing batch stops
the run with nothing of the batches after it committed, and an error in a batch parsed
ahead is reported by that batch's stage."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from headwater.lake.tables import Tables
from headwater.project import Project
from headwater.runs.extract import _Batches
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


def batch_sizes(limit: int, sizes: list[int], spread: bool) -> list[int]:
    batches = _Batches(run_id=1, limit=limit)
    batches.start()
    if spread:
        batches.spread(sum(sizes), max(sizes))
    ids = Counter()
    for size in sizes:
        ids[batches.assign(size)] += size
    return [ids[k] for k in sorted(ids)]


def test_new_bytes_are_spread_evenly_over_the_fewest_batches() -> None:
    # 25 files of 10 bytes under a limit of 100: three batches either way, but
    # 90, 90, 70 instead of 100, 100, 50.
    assert batch_sizes(100, [10] * 25, spread=False) == [100, 100, 50]
    assert batch_sizes(100, [10] * 25, spread=True) == [90, 90, 70]
    # What fits in one batch stays one batch.
    assert batch_sizes(100, [10] * 10, spread=True) == [100]


@given(
    st.integers(min_value=1, max_value=500),
    st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=60),
)
def test_spreading_never_adds_a_batch_nor_passes_the_limit(limit: int, sizes: list[int]) -> None:
    spread = batch_sizes(limit, sizes, spread=True)
    greedy = batch_sizes(limit, sizes, spread=False)
    assert sum(spread) == sum(sizes)
    assert len(spread) <= len(greedy)
    # A batch passes the limit only as a single file bigger than it.
    assert all(total <= limit or total in sizes for total in spread)
    count = math.ceil(sum(sizes) / limit)  # the fewest batches the limit allows
    room = math.ceil(sum(sizes) / count) + max(sizes)
    if room < limit:
        assert len(spread) <= count
        assert max(spread) <= room
    else:
        assert spread == greedy


def test_a_run_spreads_many_small_files_evenly(tmp_path: Path) -> None:
    # 20 files of ~62 KB under batch_mb 1: two batches of about 10 files, not 16 and 4.
    small = {
        f"f{k:02}.csv": "".join(f"{k}{i:05},n,{i % 97}\n" for i in range(5000)) for k in range(20)
    }
    root = tiny_project(tmp_path / "p", MODELS, small, yaml_text=BASE_YAML + ONE_MB)
    summary = run_ok(root)
    assert len(summary.batches) == 2
    per_batch = lake(root, "select count(distinct _file) from src group by _batch order by _batch")
    # A batch may take one file past half (the limit leaves room for the largest file).
    assert sorted(n for (n,) in per_batch) == [9, 11]


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
