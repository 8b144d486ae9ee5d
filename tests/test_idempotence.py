"""Loading the same content twice, under any name, or rerunning with nothing new, changes nothing."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from headwater.templates.cafe.generator import generate
from tests.conftest import run_project, warehouse_snapshot


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _raw_objects(root: Path) -> dict[str, str]:
    raw = root / ".headwater" / "lake" / "raw"
    return {p.relative_to(raw).as_posix(): _sha(p) for p in raw.rglob("*") if p.is_file()}


def test_same_file_under_another_name_and_rerun_change_nothing(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    result = generate(root / "inbox", branches=3, days=2, seed=7, per_day=40)
    first = run_project(root)
    assert first.ok, first.error
    before = warehouse_snapshot(root)
    assert len(before["transactions"]) == result.transactions
    warehouse = root / ".headwater" / "warehouse.duckdb"
    wh_hash, raw_before = _sha(warehouse), _raw_objects(root)

    # The same bytes under a new name (a re-upload), in a sub-folder too.
    original = sorted((root / "inbox").glob("*.csv"))[0]
    shutil.copyfile(original, root / "inbox" / "reupload_copy.csv")
    second = run_project(root)
    assert second.ok, second.error
    source = second.sources["branch_files"]
    assert (source.files_new, source.files_unchanged, source.files_duplicate) == (
        0,
        result.files,
        1,
    )
    assert source.rows_read == 0
    assert {"file": "reupload_copy.csv", "same_content_as": original.name} in source.duplicates
    assert second.warehouse.status == "unchanged"
    assert warehouse_snapshot(root) == before
    assert _sha(warehouse) == wh_hash, "a rerun with nothing new must not write the warehouse"
    assert _raw_objects(root) == raw_before, "raw data is never rewritten"

    # Nothing new at all.
    third = run_project(root)
    assert third.ok
    assert third.sources["branch_files"].files_new == 0
    assert warehouse_snapshot(root) == before
    assert _sha(warehouse) == wh_hash


def test_new_day_adds_exactly_its_rows(make_project: Callable[..., Path]) -> None:
    root = make_project()
    day1 = generate(root / "inbox", branches=2, days=1, seed=3, per_day=30)
    assert run_project(root).ok
    later = root.parent / (root.name + "-later")
    both = generate(later, branches=2, days=2, seed=3, per_day=30)
    for f in sorted(later.glob("*.csv")):
        if not (root / "inbox" / f.name).exists():
            shutil.copyfile(f, root / "inbox" / f.name)
    summary = run_project(root)
    assert summary.ok, summary.error
    assert summary.sources["branch_files"].files_new == both.files - day1.files
    snap = warehouse_snapshot(root)
    assert len(snap["transactions"]) == both.transactions
    assert sum(int(r[2]) for r in snap["transaction_items"]) == both.items  # type: ignore[call-overload]
