"""Behaviour that was once wrong, pinned so it stays right."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headwater.cli import app
from headwater.config import PiiPolicy
from headwater.errors import ConfigError
from headwater.project import Project
from headwater.quality.pii import policy_sql
from headwater.serve.query import QueryError, check_read_only, connect
from tests.conftest import CANONICAL, run_project, warehouse_rows
from tests.fixtures.tiny import BASE_YAML, drop, model, run_tiny, tiny_project

runner = CliRunner()


def test_query_refuses_statements_that_write(
    make_project: Callable[..., Path], cafe_data: Path, tmp_path: Path
) -> None:
    root = make_project([cafe_data / CANONICAL])
    assert run_project(root).ok
    target = tmp_path / "written.csv"
    for lake in (False, True):
        with connect(Project.load(root), lake=lake) as conn:
            for sql in (
                f"COPY (SELECT 1) TO '{target}'",
                "CREATE TABLE t AS SELECT 1",
                "ATTACH ':memory:' AS other",
                "SELECT 1; SELECT 2",
            ):
                with pytest.raises(QueryError):
                    check_read_only(conn, sql)
    result = runner.invoke(app, ["query", "-p", str(root), f"COPY (SELECT 1) TO '{target}'"])
    assert result.exit_code == 1
    assert not target.exists()
    ok = runner.invoke(
        app, ["query", "-p", str(root), "-f", "csv", "EXPLAIN SELECT count(*) FROM transactions"]
    )
    assert ok.exit_code == 0


def test_leak_check_still_runs_when_a_batch_is_retried(
    make_project: Callable[..., Path], cafe_data: Path
) -> None:
    root = make_project([cafe_data / CANONICAL])
    (root / "models" / "leak_value.sql").write_text(
        "select 'Richard Copeland' as who from branches"
    )
    first = run_project(root)
    assert first.models["leak_value"].status == "failed"
    # The batch is pending; the retry has not parsed it, yet must still catch the leak.
    second = run_project(root)
    assert not second.ok
    assert second.models["leak_value"].status == "failed"
    assert "protected source value" in (second.models["leak_value"].error or "")
    with connect(Project.load(root), lake=True) as conn:
        tables = {r[0] for r in conn.execute("SHOW TABLES").fetchall()}
    assert "leak_value" not in tables


def test_unsupported_lake_url_is_a_config_error(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", {"m": model("select * from src")}, {"f.csv": "1,a,1\n"})
    text = (root / "headwater.yaml").read_text() + "lake:\n  url: gs://bucket/lake\n"
    (root / "headwater.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"lake\.url: .*'gs' is not supported"):
        Project.load(root)
    result = runner.invoke(app, ["check", "-p", str(root)])
    assert result.exit_code == 2
    assert not (root / ".headwater").exists()


def test_brackets_in_error_messages_are_printed(tmp_path: Path) -> None:
    (tmp_path / "headwater.yaml").write_text("name: Bad-Name\n")
    result = runner.invoke(app, ["check", "-p", str(tmp_path)])
    assert result.exit_code == 2
    assert "^[a-z_][a-z0-9_]*$" in result.output


def test_one_line_per_key_for_alternatives(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", {"m": model("select * from src")}, {"f.csv": "1,a,1\n"})
    text = (root / "headwater.yaml").read_text().replace("header: false", "header: maybe")
    (root / "headwater.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        Project.load(root)
    message = str(info.value)
    assert "sources.src.csv.header: " in message
    assert "literal" not in message
    assert message.count("sources.src.csv.header") == 1
    assert "(got 'maybe')" in message


def test_pii_column_missing_from_the_files_stops_the_load(tmp_path: Path) -> None:
    yaml = BASE_YAML.replace(
        "csv: {columns: [id, name, amount], header: false}", "csv: {header: true}"
    )
    yaml += "    pii:\n      customer: drop\n"
    root = tiny_project(
        tmp_path / "p",
        {"m": model("select * from src")},
        {"f.csv": "id,name,amount\n1,a,1\n"},
        yaml_text=yaml,
    )
    summary = run_tiny(root)
    assert not summary.ok
    assert "'customer'" in str(summary.error)
    assert "would pass unprotected" in str(summary.error)


def test_mask_keeps_null() -> None:
    import duckdb

    expr = policy_sql("c", PiiPolicy(policy="mask", keep_last=0))
    assert expr is not None
    rows = duckdb.sql(f"SELECT {expr} FROM (VALUES (NULL), ('1234')) v(c)").fetchall()
    assert rows == [(None,), ("****",)]


def test_file_quarantine_counts_include_model_checks(tmp_path: Path) -> None:
    checked = model(
        "select cast(id as integer) as id, name, _file, _line from src",
        materialized="incremental",
        publish=True,
        checks=[{"expression": "name <> 'bad'", "severity": "quarantine"}],
    )
    root = tiny_project(tmp_path / "p", {"m": checked}, {"f.csv": "1,a,1\n2,bad,2\n3,c\n"})
    summary = run_tiny(root)
    assert summary.ok, summary.error
    source = summary.sources["src"]
    assert (source.rows_read, source.rows_quarantined) == (3, 2)
    from headwater.observe.status import status_report

    status = status_report(Project.load(root))
    assert status["sources"]["src"]["rows_read"] == 3
    assert status["sources"]["src"]["rows_quarantined"] == 2
    drop(root, {"g.csv": "4,d,4\n"})
    assert run_tiny(root).ok


def test_failed_model_reports_no_rows(tmp_path: Path) -> None:
    failing = model(
        "select cast(id as integer) as id from src",
        publish=True,
        checks=[{"range": {"column": "id", "max": 1}}],
    )
    root = tiny_project(tmp_path / "p", {"m": failing}, {"f.csv": "1,a,1\n2,b,2\n"})
    summary = run_tiny(root)
    assert summary.models["m"].status == "failed"
    assert summary.models["m"].rows_written == 0


def test_single_column_merge_key_matches_null(tmp_path: Path) -> None:
    merged = model(
        "select nullif(name, 'none') as k, max(cast(amount as integer)) as v from src group by 1",
        materialized="incremental",
        strategy="merge",
        unique_key="k",
        publish=True,
    )
    root = tiny_project(tmp_path / "p", {"m": merged}, {"f.csv": "1,none,1\n2,a,2\n"})
    assert run_tiny(root).ok
    drop(root, {"g.csv": "3,none,5\n"})
    assert run_tiny(root).ok
    rows = warehouse_rows(root, "select k, v from m order by k nulls first")
    assert rows == [(None, 5), ("a", 2)]


def test_spill_folder_is_removed_after_the_run(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", {"m": model("select * from src")}, {"f.csv": "1,a,1\n"})
    assert run_tiny(root).ok
    tmp = root / ".headwater" / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir())
