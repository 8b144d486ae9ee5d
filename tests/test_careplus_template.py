"""The careplus template end to end with the course's real data (../shared/data/careplus):
tickets loaded from the course's MySQL dump into a real MariaDB database by the template's
loader and read by the sql source, logs dropped into the inbox as delivered (LF and CRLF).

With the course's rules the warehouse holds exactly the course's golden numbers; with
headwater's defaults 746 tickets and 2,423 log events, 178 of them with their negative
response time set to NULL. Every row a rule removes is counted under the rule in the
run summary and kept in the quarantine zone.
"""

from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pymysql

from headwater.project import Project
from headwater.runs.pipeline import run
from headwater.runs.summary import RunSummary
from headwater.serve.dashboards import load_dashboards, panel_rows
from headwater.templates import init_project
from headwater.templates.careplus.logs import generate_logs
from headwater.templates.careplus.source_db import load_dump
from tests.conftest import shared_data

DUMP = (
    "Aadarsh20449__CarePlus-Ticket-Analytics-Pipeline/data ingestion/support-tickets/"
    "careplus_support_db.sql"
)
LF_LOGS = (
    "Aadarsh20449__CarePlus-Ticket-Analytics-Pipeline/data ingestion/support-logs/"
    "day-wise-logs-data"
)
CRLF_LOGS = (
    "JacobDaniel-82__CarePlus-Support-Analytics-Pipeline/ingestion/support-logs/day-wise-logs-data"
)
COURSE_RULES = {
    "interactions_sentinel": "drop_row",
    "negative_response_time": "drop_row",
    "duplicate_tickets": "keep",
}


def careplus() -> Path:
    return shared_data() / "careplus"


def set_rules(root: Path, **values: str) -> None:
    """Switch rules in models/cleaning_rules.sql, as a user would: edit the values."""
    path = root / "models" / "cleaning_rules.sql"
    text = path.read_text()
    for rule, value in values.items():
        text, n = re.subn(rf"^(\s*)'[a-z_]+' as {rule},?$", rf"\1'{value}' as {rule},", text,
                          flags=re.MULTILINE)  # fmt: skip
        assert n == 1, rule
    path.write_text(text)


def new_project(root: Path, db_url: str, logs: str) -> Path:
    assert load_dump(db_url, careplus() / DUMP) == 810
    init_project(root, "careplus")
    with (root / ".env").open("a") as env:
        env.write(f"CAREPLUS_DB_URL={db_url}\n")
    for path in sorted((careplus() / logs).glob("support_logs_*.log")):
        shutil.copyfile(path, root / "inbox" / path.name)
    return root


def wh(root: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def counts(root: Path, table: str, column: str) -> dict[Any, int]:
    return dict(wh(root, f"select {column}, count(*) from {table} group by 1"))


def checks(summary: RunSummary, model: str) -> dict[str, int]:
    """Rows each check of a model counted (failed), leaving out the checks nothing failed."""
    return {c["name"]: c["failed"] for c in summary.models[model].checks if c["failed"]}


def quarantined(root: Path) -> dict[tuple[str, str], int]:
    """(source, rule) -> rows in the quarantine zone."""
    files = str(root / ".headwater" / "lake" / "quarantine" / "**" / "*.parquet")
    rows = duckdb.sql(
        f"select source, rule, count(*) from read_parquet('{files}', union_by_name = true) "
        "group by all"
    ).fetchall()
    return {(str(s), str(r)): int(n) for s, r, n in rows}


def panels(root: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(dashboard, panel title) -> rows, for every panel of the template's dashboards."""
    project = Project.load(root)
    boards = load_dashboards(project)
    assert set(boards) == {"ticket_insights", "system_logs"}
    assert boards["ticket_insights"].title == "Ticket Insights"
    assert boards["system_logs"].title == "System Logs Performance"
    out = {}
    for name, board in boards.items():
        for panel in board.panels:
            rows = panel_rows(project, panel).to_pylist()
            assert rows, (name, panel.title)
            out[name, panel.title] = rows
    return out


RANGES = {"0-499 ms": 474, "500-999 ms": 665, "1000-1499 ms": 693, "1500+ ms": 413}


def test_course_rules_give_the_course_numbers(tmp_path: Path, mariadb_database: str) -> None:
    # The CRLF copy of the logs: line endings must not change a number.
    root = new_project(tmp_path / "course", mariadb_database, CRLF_LOGS)
    set_rules(root, **COURSE_RULES)
    summary = run(Project.load(root))
    assert summary.ok, summary.error

    assert wh(root, "select count(*), count(distinct ticket_id) from support_tickets") == [
        (654, 607)  # 47 repeated ids survive, as in the course
    ]
    assert counts(root, "support_tickets", "channel") == {
        "Email": 188, "Web Form": 159, "Chat": 157, "Phone": 150
    }  # fmt: skip
    assert counts(root, "support_tickets", "status") == {
        "Resolved": 529, "Open": 98, "Escalated": 27
    }  # fmt: skip
    assert counts(root, "support_tickets", "priority") == {"Medium": 330, "Low": 192, "High": 132}
    assert wh(root, "select count(*) from support_logs") == [(2245,)]
    assert counts(root, "support_logs", "log_level") == {
        "INFO": 1107, "DEBUG": 890, "WARNING": 206, "ERROR": 42
    }  # fmt: skip
    assert wh(
        root, "select count(*) from support_logs where is_error <> (log_level = 'ERROR')"
    ) == [(0,)]

    # Removed rows, by rule: in the run summary and in the quarantine zone.
    tickets, logs = summary.sources["db_support_tickets"], summary.sources["support_log_files"]
    assert (tickets.rows_read, tickets.rows_loaded) == (810, 654)
    assert tickets.quarantined_by_reason == {"interactions_sentinel": 156}
    assert (logs.rows_read, logs.rows_loaded) == (2650, 2245)
    assert logs.quarantined_by_reason == {
        "duplicate_log_record": 227,
        "negative_response_time": 178,
    }
    assert quarantined(root) == {
        ("db_support_tickets", "interactions_sentinel"): 156,
        ("support_log_files", "duplicate_log_record"): 227,
        ("support_log_files", "negative_response_time"): 178,
    }
    # Kept despite a defect, counted: the course keeps duplicate tickets.
    assert checks(summary, "ticket_rows") == {
        "interactions_sentinel": 156,
        "duplicate_ticket_kept": 47,
        "priority_typo_mapped": 148,
        "escalated_with_resolved_at": 27,
    }
    assert checks(summary, "support_tickets") == {"unique(ticket_id)": 94}
    assert checks(summary, "log_events") == {
        "duplicate_log_record": 227,
        "negative_response_time": 178,
        "level_typo_mapped": 547,
    }

    shown = panels(root)
    assert shown["ticket_insights", "Tickets"] == [{"tickets": 654}]
    assert shown["system_logs", "Events"] == [{"events": 2245}]
    ranges = shown["system_logs", "Response-time ranges"]
    assert {r["response_range"]: r["events"] for r in ranges} == RANGES
    assert [r["response_range"] for r in ranges] == list(RANGES)  # in order


def test_defaults_keep_every_ticket_and_event(tmp_path: Path, mariadb_database: str) -> None:
    root = new_project(tmp_path / "defaults", mariadb_database, LF_LOGS)
    summary = run(Project.load(root))
    assert summary.ok, summary.error

    assert wh(root, "select count(*), count(distinct ticket_id) from support_tickets") == [
        (746, 746)
    ]
    assert wh(
        root, "select count(*) filter (where num_interactions is null) from support_tickets"
    ) == [(139,)]
    assert wh(root, "select count(*), count(*) filter (where response_time_ms is null) "
              "from support_logs") == [(2423, 178)]  # fmt: skip
    assert wh(root, "select count(*), sum(events) from ticket_log_summary") == [(746, 2423)]
    # Resolution time only for resolved tickets; open means not resolved yet.
    assert wh(root, "select count(*) from support_tickets where (resolution_minutes is not null) "
              "<> (status = 'Resolved') or is_open <> (status <> 'Resolved')") == [(0,)]  # fmt: skip

    tickets, logs = summary.sources["db_support_tickets"], summary.sources["support_log_files"]
    assert tickets.quarantined_by_reason == {"duplicate_ticket": 64}
    assert logs.quarantined_by_reason == {"duplicate_log_record": 227}
    assert checks(summary, "ticket_rows") == {
        "duplicate_ticket": 64,
        "interactions_sentinel_set_null": 139,
        "priority_typo_mapped": 174,
        "escalated_with_resolved_at": 30,
    }
    assert checks(summary, "log_events") == {
        "duplicate_log_record": 227,
        "negative_response_time_set_null": 178,
        "level_typo_mapped": 593,
    }
    assert checks(summary, "support_tickets") == {}  # ticket_id is unique
    shown = panels(root)
    assert shown["ticket_insights", "Tickets"] == [{"tickets": 746}]
    assert shown["system_logs", "Logged tickets"] == [{"tickets": 746}]


def test_the_next_run_reads_only_what_is_new(tmp_path: Path, mariadb_database: str) -> None:
    root = new_project(tmp_path / "later", mariadb_database, LF_LOGS)
    assert run(Project.load(root)).ok
    # A later hour: two new tickets (after the watermark, on created_at, which is TEXT),
    # a new day of logs, and the first day delivered again with CRLF line endings (other
    # bytes, the same records: every one is a duplicate of a record loaded before).
    conn = pymysql.connect(
        host="127.0.0.1", user="root", database=mariadb_database.rsplit("/", 1)[1]
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO support_tickets VALUES "
                "('TCK0801000', '2025-08-01 09:00', NULL, 'Sneha', 'Lw', '3', 'Bug Report', "
                "'Chat', 'Open', ''), "
                "('TCK0801001', '2025-08-01 09:30', '2025-08-01 10:00', 'Rohit', 'High', "
                "'-999999', 'Login Issue', 'Email', 'Resolved', '')"
            )
        conn.commit()
    finally:
        conn.close()
    new_day = generate_logs(root / "inbox", days=1, seed=5, start=datetime.date(2025, 8, 1))
    again = careplus() / CRLF_LOGS / "support_logs_2025-07-01.log"
    (root / "inbox" / "resent").mkdir()
    shutil.copyfile(again, root / "inbox" / "resent" / again.name)
    day_one = wh(root, "select count(*) from support_logs where logged_at::date = '2025-07-01'")[0][
        0
    ]

    second = run(Project.load(root))
    assert second.ok, second.error
    assert second.sources["db_support_tickets"].rows_read == 2
    assert wh(root, "select ticket_id, priority, num_interactions, resolution_minutes "
              "from support_tickets where created_at >= '2025-08-01' order by 1") == [
        ("TCK0801000", "Low", 3, None), ("TCK0801001", "High", None, 30)
    ]  # fmt: skip
    logs = second.sources["support_log_files"]
    assert logs.files_new == 2
    records = len(re.findall(rb"^---\r?$", again.read_bytes(), flags=re.MULTILINE))
    assert records == 105 and day_one == 96  # the first day: 9 exact copies within the file
    assert logs.quarantined_by_reason == {
        "duplicate_log_record": new_day.duplicates + records - day_one,
        "duplicate_log_record across runs": day_one,
    }
    loaded = new_day.records - new_day.duplicates
    assert wh(root, "select count(*) from support_logs") == [(2423 + loaded,)]
    assert wh(root, "select count(*) from support_tickets") == [(748,)]


def test_an_unknown_switch_value_stops_the_models(tmp_path: Path, mariadb_database: str) -> None:
    root = new_project(tmp_path / "typo", mariadb_database, LF_LOGS)
    set_rules(root, duplicate_tickets="dedupe")  # not one of drop, keep
    summary = run(Project.load(root))
    assert not summary.ok
    assert summary.models["ticket_rows"].status == "failed"
    assert "cleaning_rules_known" in (summary.models["ticket_rows"].error or "")
    assert summary.models["support_tickets"].status == "failed"  # reads the failed view
    assert summary.models["support_logs"].status == "committed"  # the logs' switches are fine
