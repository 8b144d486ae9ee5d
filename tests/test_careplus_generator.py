"""The careplus generators and loader: ticket rows (any size, the course's defects planted,
deterministic), the course's dump read from .sql and .csv, bulk loads into real MariaDB
and PostgreSQL, daily log files in the spec's format that the template's own YAML
configuration parses without a reject, and `headwater generate careplus`."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pymysql
import pytest
from typer.testing import CliRunner

from headwater.cli import app
from headwater.config import FilesSource
from headwater.project import Project
from headwater.sources import RawInput, open_source
from headwater.templates import init_project
from headwater.templates.careplus.logs import generate_logs
from headwater.templates.careplus.source_db import create_table, load_dump, load_rows
from headwater.templates.careplus.tickets import COLUMNS, generate_tickets, read_dump
from tests.conftest import shared_data

DUMP_DIR = "Aadarsh20449__CarePlus-Ticket-Analytics-Pipeline/data ingestion/support-tickets"
TICKET_ID = re.compile(r"^TCK(\d{4})\d{3,}$")
RECORD = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:00) \[(?P<level>INFO|INF0|DEBUG|DEBG|WARNING|warnING"
    r"|ERROR|EROR)\] careplus\.support\.GenericService - TicketID=(?P<t>TCK\d{7}) "
    r"SessionID=sess_(?P=t)\n"
    r"IP=\d+\.\d+\.\d+\.\d+ \| ResponseTime=(?P<rt>-?\d+)ms \| CPU=\d\d\.\d\d% \| "
    r"EventType=generic_event \| Error=(?P<err>true|false)\n"
    r'UserAgent="[^"]+"\n'
    r'Message=" event for (?P=t)"\n'
    r'Debug="\u2139\ufe0f Logged for monitoring"\n'
    r"TraceID=None\n"
    r"---$"
)


def sql(conn: duckdb.DuckDBPyConnection, query: str) -> list[tuple[object, ...]]:
    return conn.execute(query).fetchall()


# --------------------------------------------------------------------------- tickets


def test_tickets_have_the_spec_shape_and_defects() -> None:
    data = generate_tickets(810, days=31, seed=1)
    assert data.column_names == list(COLUMNS)
    assert all(t == pa.string() for t in data.schema.types)
    conn = duckdb.connect()
    conn.register("t", data)
    assert sql(conn, "select count(*), count(distinct t), count(distinct ticket_id) from t") == [
        (810, 746, 746)  # 64 exact duplicate rows, as in the course's dump
    ]
    # Each copy is right after its original.
    rows = data.to_pylist()
    assert sum(rows[i] == rows[i - 1] for i in range(1, len(rows))) == 64
    ids = data.column("ticket_id").to_pylist()
    created = data.column("created_at").to_pylist()
    for ticket, at in zip(ids, created, strict=True):
        match = TICKET_ID.match(ticket)
        assert match and match.group(1) == at[5:7] + at[8:10], (ticket, at)
        assert re.fullmatch(r"2025-07-\d\d \d\d:\d\d", at)
    priorities = dict(sql(conn, "select priority, count(*) from t group by 1"))
    assert set(priorities) == {"Low", "Medium", "High", "Lw", "Medum", "Hgh"}
    assert 0.15 < priorities["Medum"] / (priorities["Medum"] + priorities["Medium"]) < 0.3
    sentinel = sql(conn, "select count(*) from t where num_interactions = '-999999'")[0][0]
    assert 100 < sentinel < 220
    assert sql(conn, "select distinct num_interactions from t where num_interactions <> "
               "'-999999' order by 1") == [(str(n),) for n in range(1, 9)]  # fmt: skip
    by_status = {s: (n, r) for s, n, r in sql(
        conn, "select status, count(*), count(resolved_at) from t group by 1"
    )}  # fmt: skip
    assert set(by_status) == {"Resolved", "Open", "Escalated"}
    assert by_status["Open"][1] == 0  # open tickets have no resolved_at
    assert by_status["Escalated"][0] == by_status["Escalated"][1] > 0  # escalated still do
    assert by_status["Resolved"][0] == by_status["Resolved"][1]
    assert sql(conn, "select count(*) from t where resolved_at <= created_at") == [(0,)]
    assert sql(conn, "select distinct agent_feedback from t") == [("",)]
    assert len(sql(conn, 'select distinct "IssUeCat" from t')) == 5


def test_tickets_are_deterministic_and_any_size() -> None:
    first = generate_tickets(500, days=5, seed=7)
    assert first.equals(generate_tickets(500, days=5, seed=7))
    assert not first.equals(generate_tickets(500, days=5, seed=8))
    assert generate_tickets(1, days=1, seed=1).num_rows == 1
    big = generate_tickets(200_000, days=30, seed=3, start=datetime.date(2025, 12, 15))
    assert big.num_rows == 200_000
    conn = duckdb.connect()
    conn.register("t", big)
    # About 6,000 tickets a day: the number grows a digit; ids stay unique across the
    # new year (MMDD 1215 .. 0113), one per distinct row.
    [(ids, distinct, first, last)] = sql(
        conn,
        "select count(distinct ticket_id), count(distinct t), min(created_at), "
        "max(created_at) from t",
    )
    assert ids == distinct and 180_000 < distinct < 190_000
    assert first.startswith("2025-12-15") and last.startswith("2026-01-13")
    assert sql(conn, "select max(length(ticket_id)) from t") == [(11,)]
    with pytest.raises(ValueError, match="days must be 1 to 365"):
        generate_tickets(10, days=400, seed=1)


def test_the_course_dump_reads_the_same_from_sql_and_csv() -> None:
    data = shared_data() / "careplus"
    from_sql = read_dump(data / DUMP_DIR / "careplus_support_db.sql")
    from_csv = read_dump(data / "_derived" / "support_tickets_all.csv")
    assert from_sql.num_rows == 810
    assert from_sql.equals(from_csv)
    first = from_sql.slice(0, 1).to_pylist()[0]
    assert first == {
        "ticket_id": "TCK0701000", "created_at": "2025-07-01 00:13", "resolved_at": None,
        "agent": "Sneha", "priority": "Medium", "num_interactions": "7",
        "IssUeCat": "Payment Failure", "channel": "Chat", "status": "Open", "agent_feedback": "",
    }  # fmt: skip


def test_a_dump_with_escapes_and_several_statements(tmp_path: Path) -> None:
    dump = tmp_path / "d.sql"
    dump.write_text(
        "-- a comment\nINSERT INTO `support_tickets` VALUES "
        "('TCK0701000','2025-07-01 00:13',NULL,'O\\'Brien','High','1','a),(b','Chat','Open',''),"
        "('TCK0701001','2025-07-01 00:14','NULL','back\\\\slash','Low','2','x;y','Web Form',"
        "'Resolved','');\nINSERT INTO `support_tickets` VALUES "
        "('TCK0701002','2025-07-01 00:15',NULL,'A','Lw','3','c','Email','Escalated','');\n"
    )
    rows = read_dump(dump).to_pylist()
    assert [r["ticket_id"] for r in rows] == ["TCK0701000", "TCK0701001", "TCK0701002"]
    assert rows[0]["agent"] == "O'Brien" and rows[0]["IssUeCat"] == "a),(b"
    assert rows[0]["resolved_at"] is None and rows[1]["resolved_at"] == "NULL"
    assert rows[1]["agent"] == "back\\slash" and rows[1]["IssUeCat"] == "x;y"


def _mariadb_rows(url: str, query: str) -> list[tuple[object, ...]]:
    conn = pymysql.connect(host="127.0.0.1", user="root", database=url.rsplit("/", 1)[1])
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def test_load_into_mariadb(mariadb_database: str) -> None:
    path = shared_data() / "careplus" / DUMP_DIR / "careplus_support_db.sql"
    assert load_dump(mariadb_database, path) == 810
    create_table(mariadb_database)  # exists: left as it is
    data = generate_tickets(20_000, days=31, seed=2)
    assert load_rows(mariadb_database, data) == 20_000
    name = mariadb_database.rsplit("/", 1)[1]
    columns = _mariadb_rows(
        mariadb_database,
        "select column_name, data_type from information_schema.columns where table_schema = "
        f"'{name}' and table_name = 'support_tickets' order by ordinal_position",
    )
    assert columns == [(c, "text") for c in COLUMNS]
    assert _mariadb_rows(
        mariadb_database,
        "select count(*), count(resolved_at), sum(agent_feedback = '') from support_tickets",
    ) == [(20_810, 698 + data.num_rows - data.column("resolved_at").null_count, 20_810)]


def test_load_into_postgresql(pg_database: str) -> None:
    create_table(pg_database)
    data = generate_tickets(5_000, days=10, seed=4)
    assert load_rows(pg_database, data) == 5_000
    load_dump(pg_database, shared_data() / "careplus" / "_derived" / "support_tickets_all.csv")
    with psycopg.connect(pg_database) as conn:
        columns = conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'support_tickets' order by ordinal_position"
        ).fetchall()
        assert columns == [(c, "text") for c in COLUMNS]
        assert conn.execute(
            'select count(*), count(distinct "IssUeCat"), count(*) filter '
            "(where num_interactions = '-999999') from support_tickets"
        ).fetchone() == (5_810, 5, 156 + data.column("num_interactions").to_pylist().count(
            "-999999"
        ))  # fmt: skip
    create_table(pg_database, drop=True)
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("select count(*) from support_tickets").fetchone() == (0,)


# --------------------------------------------------------------------------- logs


def _records(path: Path) -> list[re.Match[str]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n---") or not text  # the last record: no newline after ---
    chunks = text.split("\n---\n")
    out = []
    for i, chunk in enumerate(chunks):
        match = RECORD.match(chunk if i == len(chunks) - 1 else chunk + "\n---")
        assert match, chunk
        out.append(match)
    return out


def test_log_files_have_the_spec_format_and_defects(tmp_path: Path) -> None:
    result = generate_logs(tmp_path, days=4, seed=3)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"support_logs_2025-07-0{d}.log" for d in (1, 2, 3, 4)]
    assert result.files == 4 and result.records == 4 * 85
    records = [m for name in names for m in _records(tmp_path / name)]
    assert len(records) == result.records
    levels = {m["level"] for m in records}
    assert {"INF0", "DEBG", "warnING", "INFO", "DEBUG", "WARNING"} <= levels
    assert all((m["err"] == "true") == (m["level"] in ("ERROR", "EROR")) for m in records)
    assert sum(m["err"] == "true" for m in records) == result.errors
    assert sum(int(m["rt"]) < 0 for m in records) == result.negative > 0
    texts = [m.group(0) for m in records]
    copies = [i for i in range(1, len(texts)) if texts[i] == texts[i - 1]]
    assert len(copies) == result.duplicates > 0
    assert len(set(texts)) == len(texts) - result.duplicates  # every copy is of its neighbour
    stamps = [m["ts"] for m in records]
    for name in names:  # in time order within a day, every record of its day
        day = name[13:23]
        inside = [s for s in stamps if s.startswith(day)]
        assert inside == sorted(inside) and inside


def test_log_files_are_deterministic_per_day(tmp_path: Path) -> None:
    generate_logs(tmp_path / "a", days=3, seed=9)
    generate_logs(tmp_path / "b", days=3, seed=9)
    generate_logs(tmp_path / "c", days=3, seed=10)
    for name in ("support_logs_2025-07-01.log", "support_logs_2025-07-03.log"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    big = generate_logs(tmp_path / "big", days=2, seed=1, records=300_000)
    assert big.records == 300_000
    sizes = [p.stat().st_size for p in (tmp_path / "big").iterdir()]
    assert len(sizes) == 2 and min(sizes) > 40_000_000


def _parse_with_template(root: Path) -> tuple[int, int, pa.Table]:
    """Records and rejects of the inbox, parsed by the template's own files source."""
    project = Project.load(root)
    config = project.config.sources["support_log_files"]
    assert isinstance(config, FilesSource)
    source = open_source("support_log_files", config, project.root)
    inputs = []
    for item in source.discover():
        assert item.path is not None
        data = item.path.read_bytes()
        inputs.append(
            RawInput(item.name, str(hash(data)), len(data), lambda n, d=data: d if n < 0 else d[:n])
        )
    parts = list(source.parse(inputs, lambda part: part))
    rows = pa.concat_tables([p.rows for p in parts])
    return rows.num_rows, sum(p.rejects.num_rows for p in parts), rows


@pytest.mark.parametrize("crlf", [False, True])
def test_the_template_parses_generated_logs(tmp_path: Path, crlf: bool) -> None:
    root = tmp_path / "p"
    init_project(root, "careplus")
    (root / ".env").write_text("CAREPLUS_DB_URL=mysql://root@127.0.0.1:3306/unused\n")
    result = generate_logs(root / "inbox", days=3, seed=2, crlf=crlf)
    rows, rejects, table = _parse_with_template(root)
    assert (rows, rejects) == (result.records, 0)
    conn = duckdb.connect()
    conn.register("r", table)
    assert sql(conn, "select count(*) filter (where response_time_ms < 0), "
               "count(*) filter (where error), count(distinct typeof(logged_at)) from r") == [
        (result.negative, result.errors, 1)
    ]  # fmt: skip
    assert sql(conn, "select count(*) from r where ticket_id is null or cpu_pct is null "
               "or user_agent is null or message not like ' event for TCK%'") == [(0,)]  # fmt: skip


# --------------------------------------------------------------------------- the CLI


def test_generate_careplus_command(tmp_path: Path, pg_database: str) -> None:
    runner = CliRunner()
    logs = tmp_path / "inbox"
    result = runner.invoke(
        app, ["generate", "careplus", "--logs", str(logs), "--days", "2", "--rows", "150"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in logs.iterdir()) == [
        "support_logs_2025-07-01.log", "support_logs_2025-07-02.log"
    ]  # fmt: skip
    assert "150 records" in result.output

    url = pg_database.replace("postgres@", "postgres:hunter2-never-shown@")
    result = runner.invoke(app, ["generate", "careplus", "--db", url, "--rows", "300"])
    assert result.exit_code == 0, result.output
    assert "300 rows added" in result.output and "hunter2" not in result.output
    dump = shared_data() / "careplus" / DUMP_DIR / "careplus_support_db.sql"
    result = runner.invoke(
        app, ["generate", "careplus", "--db", url, "--from-dump", str(dump), "--drop"]
    )
    assert result.exit_code == 0, result.output
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("select count(*) from support_tickets").fetchone() == (810,)

    result = runner.invoke(app, ["generate", "careplus"])
    assert result.exit_code == 2 and "--db URL" in result.output
    result = runner.invoke(app, ["generate", "careplus", "--logs", str(logs), "--days", "0"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["generate", "careplus", "--from-dump", str(dump)])
    assert result.exit_code == 2 and "needs --db" in result.output
