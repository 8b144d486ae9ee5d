"""Quality checks: every kind with every severity, the quarantine zone, `message:`, incremental keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.quality.checks import key_hash_in, key_in
from headwater.runs.summary import RunSummary
from tests.fixtures.tiny import (
    QUARANTINE_COLUMNS,
    cli_json,
    drop,
    lake,
    lake_tables,
    model,
    run_ok,
    tiny_project,
    warehouse,
    warehouse_tables,
    write_model,
)

# Six rows, one per physical line; each check kind below fails on known lines.
DATA = "1,apple,10\n2,,20\n3,cherry,-5\n4,date,40\n4,dup,41\n6,fig,60\n"
ALL_LINES = [1, 2, 3, 4, 5, 6]
SELECT = (
    "select cast(id as integer) as id, nullif(name, '') as name, "
    "cast(amount as integer) as amount, cast(id as integer) + 100 as parent, _file, _line "
    "from src"
)
# Parent keys 101..106 except 103, so only the row with id 3 has no parent.
PARENTS = "select cast(id as integer) + 100 as id from src where id <> '3'"

# kind -> (check config, check name, {failing line: reason})
KINDS: dict[str, tuple[dict[str, Any], str, dict[int, str]]] = {
    "not_null": ({"not_null": "name"}, "not_null(name)", {2: "name is null"}),
    "unique": (
        {"unique": "id"},
        "unique(id)",
        {4: "id 4 is not unique", 5: "id 4 is not unique"},
    ),
    "accepted_values": (
        {"accepted_values": {"column": "name", "values": ["apple", "cherry", "date", "dup"]}},
        "accepted_values(name)",
        {6: "name fig is not one of [apple, cherry, date, dup]"},
    ),
    "range": (
        {"range": {"column": "amount", "min": 0, "max": 100}},
        "range(amount)",
        {3: "amount -5 is outside [0.0, 100.0]"},
    ),
    "expression": (
        {"expression": "amount <> 41"},
        "expression(amount <> 41)",
        {5: "expression is false: amount <> 41"},
    ),
    "relationships": (
        {"relationships": {"column": "parent", "to": "parents", "field": "id"}},
        "relationships(parent -> parents.id)",
        {3: "parent 103 has no match in parents.id"},
    ),
}


def check_models(severity: str) -> dict[str, str]:
    models = {"parents": model(PARENTS)}
    for kind, (check, _, _) in KINDS.items():
        models[f"chk_{kind}"] = model(
            SELECT, publish=True, checks=[{**check, "severity": severity}]
        )
    return models


def lines_of(root: Path, table: str, where: str = "lake") -> list[int]:
    if where == "lake":
        return [r[0] for r in lake(root, f"select _line from {table} order by _line")]
    # The warehouse has no _line: identify rows by (id, amount), which are unique here.
    rows = warehouse(root, f"select id, amount from {table}")
    by_row = {(1, 10): 1, (2, 20): 2, (3, -5): 3, (4, 40): 4, (4, 41): 5, (6, 60): 6}
    return sorted(by_row[(r[0], r[1])] for r in rows)


def check_entry(summary: RunSummary, name: str) -> list[dict[str, Any]]:
    return summary.models[name].checks


# ---------------------------------------------------------------------- warn


@pytest.fixture(scope="module")
def warned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunSummary]:
    root = tiny_project(
        tmp_path_factory.mktemp("warn") / "p", check_models("warn"), {"f1.csv": DATA}
    )
    return root, run_ok(root)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_warn_keeps_rows_and_reports_count(warned: tuple[Path, RunSummary], kind: str) -> None:
    root, summary = warned
    _, name, failing = KINDS[kind]
    m = summary.models[f"chk_{kind}"]
    assert m.status == "committed"
    assert m.checks == [{"name": name, "severity": "warn", "failed": len(failing)}]
    assert m.rows_quarantined == 0
    assert m.rows_written == 6
    assert lines_of(root, f"chk_{kind}") == ALL_LINES
    assert lines_of(root, f"chk_{kind}", "warehouse") == ALL_LINES


def test_warn_quarantines_nothing(warned: tuple[Path, RunSummary]) -> None:
    root, summary = warned
    assert lake(root, "select count(*) from quarantine") == [(0,)]
    assert summary.sources["src"].rows_quarantined == 0
    assert summary.to_json()["models"]["chk_unique"]["checks"][0]["failed"] == 2


# ---------------------------------------------------------------- quarantine

EXTRA_QUARANTINE_MODELS = {
    # `message:` replaces the reason with a SQL expression over the row.
    "chk_message": model(
        SELECT,
        publish=True,
        checks=[
            {
                "range": {"column": "amount", "min": 0},
                "severity": "quarantine",
                "name": "no_refunds",
                "message": "'refund of ' || (-amount) || ' on id ' || id",
            }
        ],
    ),
    # No _file/_line carried: the quarantine record has no file or line.
    "chk_nolineage": model(
        "select cast(id as integer) as id, nullif(name, '') as name from src",
        checks=[{"not_null": "name", "severity": "quarantine", "name": "named"}],
    ),
    # A row failing two quarantine checks is quarantined once, under the first rule;
    # warn checks see only the rows kept.
    "chk_multi": model(
        SELECT,
        checks=[
            {"not_null": "name", "severity": "quarantine", "name": "multi_named"},
            {"expression": "id <> 2", "severity": "quarantine", "name": "multi_not_two"},
            {"expression": "name is not null", "severity": "warn", "name": "multi_warn"},
        ],
    ),
}


@pytest.fixture(scope="module")
def quarantined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunSummary]:
    models = check_models("quarantine") | EXTRA_QUARANTINE_MODELS
    root = tiny_project(tmp_path_factory.mktemp("quarantine") / "p", models, {"f1.csv": DATA})
    return root, run_ok(root)


def quarantine_rows(root: Path, name: str) -> list[tuple[Any, ...]]:
    return lake(
        root,
        "select _batch, run_id, stage, name, source, file, line, rule, reason, record "
        "from quarantine where name = ? order by line",
        [name],
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_quarantine_removes_failing_rows(quarantined: tuple[Path, RunSummary], kind: str) -> None:
    root, summary = quarantined
    _, name, failing = KINDS[kind]
    kept = [line for line in ALL_LINES if line not in failing]
    m = summary.models[f"chk_{kind}"]
    assert m.status == "committed"
    assert m.checks == [{"name": name, "severity": "quarantine", "failed": len(failing)}]
    assert m.rows_quarantined == len(failing)
    assert m.rows_written == len(kept)
    assert lines_of(root, f"chk_{kind}") == kept
    assert lines_of(root, f"chk_{kind}", "warehouse") == kept


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_quarantine_zone_holds_failing_rows(
    quarantined: tuple[Path, RunSummary], kind: str
) -> None:
    root, summary = quarantined
    _, name, failing = KINDS[kind]
    rows = quarantine_rows(root, f"chk_{kind}")
    assert [r[:9] for r in rows] == [
        (1001, summary.run_id, "model", f"chk_{kind}", "src", "f1.csv", line, name, reason)
        for line, reason in sorted(failing.items())
    ]
    source_rows = {
        1: (1, "apple", 10),
        2: (2, None, 20),
        3: (3, "cherry", -5),
        4: (4, "date", 40),
        5: (4, "dup", 41),
        6: (6, "fig", 60),
    }
    for row in rows:
        record = json.loads(row[9])
        # The record holds the model's public columns, not the lineage ones.
        assert sorted(record) == ["amount", "id", "name", "parent"]
        assert (record["id"], record["name"], record["amount"]) == source_rows[row[6]]


def test_message_overrides_the_reason(quarantined: tuple[Path, RunSummary]) -> None:
    root, summary = quarantined
    rows = quarantine_rows(root, "chk_message")
    assert [(r[6], r[7], r[8]) for r in rows] == [(3, "no_refunds", "refund of 5 on id 3")]
    assert summary.models["chk_message"].checks == [
        {"name": "no_refunds", "severity": "quarantine", "failed": 1}
    ]
    assert lines_of(root, "chk_message", "warehouse") == [1, 2, 4, 5, 6]


def test_quarantine_without_lineage_columns(quarantined: tuple[Path, RunSummary]) -> None:
    root, _ = quarantined
    rows = quarantine_rows(root, "chk_nolineage")
    assert [r[2:9] for r in rows] == [
        ("model", "chk_nolineage", "src", None, None, "named", "name is null")
    ]
    assert json.loads(rows[0][9]) == {"id": 2, "name": None}
    assert lake(root, "select id from chk_nolineage order by id") == [(1,), (3,), (4,), (4,), (6,)]


def test_row_failing_two_checks_is_quarantined_once(quarantined: tuple[Path, RunSummary]) -> None:
    root, summary = quarantined
    m = summary.models["chk_multi"]
    assert m.rows_quarantined == 1
    assert m.checks == [
        {"name": "multi_named", "severity": "quarantine", "failed": 1},
        {"name": "multi_not_two", "severity": "quarantine", "failed": 1},
        {"name": "multi_warn", "severity": "warn", "failed": 0},
    ]
    rows = quarantine_rows(root, "chk_multi")
    assert [(r[6], r[7]) for r in rows] == [(2, "multi_named")]
    assert lines_of(root, "chk_multi") == [1, 3, 4, 5, 6]


def test_quarantine_counts_reach_the_source_summary(quarantined: tuple[Path, RunSummary]) -> None:
    _, summary = quarantined
    by_reason = summary.sources["src"].quarantined_by_reason
    expected = {name: len(failing) for _, name, failing in KINDS.values()}
    expected |= {"no_refunds": 1, "named": 1, "multi_named": 1}
    assert by_reason == expected
    assert summary.to_json()["sources"]["src"]["rows_quarantined"] == sum(expected.values())


def test_quarantine_view_columns(quarantined: tuple[Path, RunSummary]) -> None:
    root, _ = quarantined
    columns = [r[0] for r in lake(root, "describe quarantine")]
    assert tuple(columns) == QUARANTINE_COLUMNS


# --------------------------------------------------------------------- error


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict[str, Any]]:
    models = check_models("error")
    for kind in KINDS:
        models[f"after_{kind}"] = model(f"select id from chk_{kind}", publish=True)
    models["good"] = model(SELECT, publish=True)
    models["good_child"] = model("select count(*) as n from good", publish=True)
    root = tiny_project(tmp_path_factory.mktemp("error") / "p", models, {"f1.csv": DATA})
    code, summary = cli_json(root)
    return root, code, summary


def test_error_fails_the_run_with_exit_1(failed: tuple[Path, int, dict[str, Any]]) -> None:
    _, code, summary = failed
    assert code == 1
    assert summary["status"] == "failed"
    assert "error-severity check failed" in summary["error"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_error_stops_model_and_downstream(
    failed: tuple[Path, int, dict[str, Any]], kind: str
) -> None:
    root, _, summary = failed
    _, name, failing = KINDS[kind]
    m = summary["models"][f"chk_{kind}"]
    assert m["status"] == "failed"
    assert m["error"] == (
        f"model 'chk_{kind}': error-severity check failed: {name} ({len(failing)} rows)"
    )
    after = summary["models"][f"after_{kind}"]
    assert after["status"] == "skipped"
    assert after["error"] == f"not run: chk_{kind} failed"
    lake_names = lake_tables(root)
    tables = warehouse_tables(root)
    for table in (f"chk_{kind}", f"after_{kind}"):
        assert table not in lake_names
        assert table not in tables


def test_error_leaves_other_models_published(failed: tuple[Path, int, dict[str, Any]]) -> None:
    root, _, summary = failed
    assert summary["models"]["good"]["status"] == "committed"
    assert summary["models"]["good_child"]["status"] == "committed"
    assert summary["models"]["parents"]["status"] == "committed"
    assert summary["warehouse"]["status"] == "loaded"
    assert warehouse_tables(root) == {"good", "good_child", "_headwater_loads"}
    assert warehouse(root, "select n from good_child") == [(6,)]
    assert lines_of(root, "good", "warehouse") == ALL_LINES
    assert lake(root, "select count(*) from quarantine") == [(0,)]


def test_fixed_model_finishes_the_pending_batch(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "strict": model(SELECT, publish=True, checks=[{"not_null": "name"}]),
            "child": model("select count(*) as n from strict", publish=True),
        },
        {"f1.csv": DATA},
    )
    code, summary = cli_json(root)
    assert code == 1
    assert summary["models"]["strict"]["error"] == (
        "model 'strict': error-severity check failed: not_null(name) (1 rows)"
    )
    # The same data and code fail again: the batch is still pending.
    code, summary = cli_json(root)
    assert code == 1
    assert summary["batches"] == [1001]  # the batch run 1 landed
    write_model(root, "strict", model(SELECT, publish=True, checks=[{"not_null": "id"}]))
    code, summary = cli_json(root)
    assert code == 0
    assert summary["batches"] == [1001]  # the batch run 1 landed
    assert warehouse(root, "select n from child") == [(6,)]


# ------------------------------------------------------ incremental `unique`


@pytest.fixture(scope="module")
def appended(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict[str, Any]]:
    """Three incremental append models with `unique: id` (one per severity), run twice:
    the second batch repeats key 2, which the first batch loaded."""
    select = "select cast(id as integer) as id, name, _file, _line from src"
    models = {
        f"inc_{sev}": model(
            select,
            materialized="incremental",
            publish=True,
            checks=[{"unique": "id", "severity": sev}],
        )
        for sev in ("warn", "quarantine", "error")
    }
    root = tiny_project(
        tmp_path_factory.mktemp("append") / "p", models, {"f1.csv": "1,a,0\n2,b,0\n"}
    )
    first = run_ok(root)
    assert {c["failed"] for m in first.models.values() for c in m.checks} == {0}
    drop(root, {"f2.csv": "3,c,0\n2,again,0\n"})
    code, second = cli_json(root)
    return root, code, second["models"]


def test_unique_on_append_warn_counts_keys_of_earlier_runs(
    appended: tuple[Path, int, dict[str, Any]],
) -> None:
    root, _, models_out = appended
    # However the check is split up, its failures count the one key seen before.
    checks = models_out["inc_warn"]["checks"]
    assert {c["severity"] for c in checks} == {"warn"}
    assert all(c["name"].startswith("unique(id)") for c in checks)
    assert sum(c["failed"] for c in checks) == 1
    assert lake(root, "select id, name from inc_warn order by id, name") == [
        (1, "a"),
        (2, "again"),
        (2, "b"),
        (3, "c"),
    ]


def test_unique_on_append_quarantines_keys_of_earlier_runs(
    appended: tuple[Path, int, dict[str, Any]],
) -> None:
    root, _, models_out = appended
    assert models_out["inc_quarantine"]["rows_quarantined"] == 1
    assert lake(root, "select id, name, _batch from inc_quarantine order by id") == [
        (1, "a", 1001),
        (2, "b", 1001),
        (3, "c", 2001),
    ]
    assert warehouse(root, "select id, name from inc_quarantine order by id") == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
    ]
    [(batch, file, line, rule, reason)] = lake(
        root,
        "select _batch, file, line, rule, reason from quarantine where name = 'inc_quarantine'",
    )
    assert (batch, file, line) == (2001, "f2.csv", 2)
    assert rule.startswith("unique(id)")
    assert reason.startswith("id 2 ")


def test_unique_on_append_error_fails_on_keys_of_earlier_runs(
    appended: tuple[Path, int, dict[str, Any]],
) -> None:
    root, code, models_out = appended
    assert code == 1
    assert models_out["inc_error"]["status"] == "failed"
    error = models_out["inc_error"]["error"]
    assert error.startswith("model 'inc_error': error-severity check failed: unique(id)")
    assert error.endswith("(1 rows)")
    assert lake(root, "select id, name from inc_error order by id") == [(1, "a"), (2, "b")]
    assert warehouse(root, "select id, name from inc_error order by id") == [(1, "a"), (2, "b")]


def test_relationships_on_incremental_model_sees_whole_target(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "parents": model(
                "select cast(id as integer) as id from src where name = 'parent'",
                materialized="incremental",
            ),
            "children": model(
                "select cast(id as integer) as id, cast(amount as integer) as parent_id "
                "from src where name = 'child'",
                materialized="incremental",
                checks=[
                    {
                        "relationships": {"column": "parent_id", "to": "parents", "field": "id"},
                        "severity": "warn",
                    }
                ],
            ),
        },
        {"f1.csv": "1,parent,0\n2,parent,0\n3,parent,0\n10,child,1\n12,child,3\n"},
    )
    first = run_ok(root)
    assert first.models["children"].checks[0]["failed"] == 0
    # New children of parents 2 and 1, which arrived in the first batch (plus new parents,
    # so that no model has an empty batch).
    drop(root, {"f2.csv": "4,parent,0\n5,parent,0\n11,child,2\n13,child,1\n"})
    second = run_ok(root)
    assert second.models["children"].checks == [
        {"name": "relationships(parent_id -> parents.id)", "severity": "warn", "failed": 0}
    ]


KEY_VALUES = st.one_of(st.none(), st.integers(min_value=-3, max_value=3))


@given(
    st.lists(st.tuples(KEY_VALUES, KEY_VALUES), max_size=12),
    st.lists(st.tuples(KEY_VALUES, KEY_VALUES), max_size=12),
    st.sampled_from([["a"], ["a", "b"]]),
)
def test_the_hash_filter_keeps_every_row_the_exact_key_test_keeps(
    earlier: list[tuple[int | None, int | None]],
    new: list[tuple[int | None, int | None]],
    key: list[str],
) -> None:
    # The across-runs check narrows earlier rows with key_hash_in, then decides with
    # key_in: the narrowing must never drop a row key_in would flag.
    conn = duckdb.connect()
    try:
        for name, rows in (("earlier", earlier), ("new", new)):
            conn.execute(f"CREATE TABLE {name} (a INTEGER, b INTEGER)")
            if rows:
                conn.executemany(f"INSERT INTO {name} VALUES (?, ?)", rows)
        narrowed = conn.execute(
            f"SELECT count(*) FROM earlier WHERE ({key_in(key, 'new')}) "
            f"AND NOT ({key_hash_in(key, 'new')})"
        ).fetchall()[0][0]
    finally:
        conn.close()
    assert narrowed == 0
