"""The SQL console of `headwater serve`: read-only, row-limited, interruptible, CSV download."""

from __future__ import annotations

import csv
import io
import time
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import httpx
import psycopg
import pytest

from headwater.lake.quarantine import QuarantineZone
from headwater.project import Project
from headwater.serve import sandbox
from headwater.serve.app import create_app
from headwater.serve.query import QueryError
from headwater.serve.report import serving
from headwater.serve.sandbox import RefusedError
from headwater.templates.cafe.generator import generate
from tests.conftest import new_project, run_project, warehouse_rows, warehouse_snapshot
from tests.fixtures.servers import Bucket

with warnings.catch_warnings():  # starlette asks for httpx2 on import; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Three branches, two days, and one line with a bad timestamp (quarantined)."""
    root = new_project(tmp_path_factory.mktemp("console") / "p")
    generate(root / "inbox", branches=3, days=2, seed=5, per_day=80)
    first = sorted((root / "inbox").glob("*.csv"))[0]
    with first.open("a") as f:
        f.write("yesterday-ish,Chesterfield,Jo Bloggs,Regular Latte - 2.15,2.15,CASH,\n")
    assert run_project(root).ok
    return Project.load(root)


@pytest.fixture(scope="module")
def client(project: Project) -> Iterator[TestClient]:
    app = create_app(project)
    app.state.sql_timeout = TIMEOUT
    with TestClient(app) as c:
        yield c


class _Cells(HTMLParser):
    """Header and body cells of the first `<table>` in a page or fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._tables += 1
        elif self._tables == 1 and tag == "tr":
            self.rows.append([])
        elif self._tables == 1 and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            (self.header if tag == "th" else self.rows[-1]).append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def cells(html: str) -> tuple[list[str], list[list[str]]]:
    parser = _Cells()
    parser.feed(html)
    return parser.header, [r for r in parser.rows if r]


def run_sql(
    client: TestClient, sql: str, target: str = "warehouse", limit: int | str = ""
) -> httpx.Response:
    response: httpx.Response = client.post(
        "/sql/run", data={"sql": sql, "target": target, "limit": str(limit)}
    )
    return response


# --- refused statements ------------------------------------------------------------------


REFUSED = [
    ("DROP TABLE transactions", "DROP is not allowed"),
    ("INSERT INTO branches VALUES (1, 'Nowhere')", "INSERT is not allowed"),
    ("DELETE FROM transactions", "DELETE is not allowed"),
    ("UPDATE transactions SET total = 0", "UPDATE is not allowed"),
    ("CREATE TABLE t AS SELECT 1", "CREATE is not allowed"),
    ("COPY transactions TO '{out}/copy.csv'", "COPY is not allowed"),
    ("ATTACH '{out}/other.duckdb' AS other", "ATTACH is not allowed"),
    ("DETACH warehouse", "DETACH is not allowed"),
    ("INSTALL httpfs", "INSTALL is not allowed"),
    ("LOAD httpfs", "LOAD is not allowed"),
    ("SET threads = 1", "SET is not allowed"),
    ("RESET threads", "RESET is not allowed"),
    ("PRAGMA version", "PRAGMA is not allowed"),
    ("CALL pragma_version()", "CALL is not allowed"),
    ("CHECKPOINT", "CHECKPOINT is not allowed"),
    ("EXPORT DATABASE '{out}/export'", "EXPORT is not allowed"),
    ("USE memory", "USE is not allowed"),
    ("select * from read_csv('/etc/passwd')", "table function read_csv is not allowed"),
    ("select * from read_text('/etc/passwd')", "table function read_text is not allowed"),
    ("select count(*) from glob('/*')", "table function glob is not allowed"),
    ("select * from read_parquet('{out}/*.parquet')", "table function read_parquet"),
    ("select * from query('select 1')", "table function query is not allowed"),
    ("select 1 where exists (select * from read_blob('/etc/passwd'))", "read_blob"),
    ("with x as (select * from sniff_csv('/etc/passwd')) select * from x", "sniff_csv"),
    ("select 1; drop table transactions", "expected one SQL statement, got 2"),
    ("select 1; select 2", "expected one SQL statement, got 2"),
    ("  -- a comment\n  /* and another */ DROP TABLE branches", "DROP is not allowed"),
    ("EXPLAIN ANALYZE select * from read_csv('/etc/passwd')", "read_csv is not allowed"),
    ("/* c */ explain select * from glob('/*')", "glob is not allowed"),
    ("summarize select * from read_text('/etc/passwd')", "read_text is not allowed"),
    ("describe select * from read_csv('/etc/passwd')", "read_csv is not allowed"),
]


@pytest.mark.parametrize(("sql", "message"), REFUSED, ids=[r[0][:40] for r in REFUSED])
@pytest.mark.parametrize("target", ["warehouse", "lake"])
def test_refuses_writes_files_and_extensions(
    client: TestClient, project: Project, tmp_path: Path, sql: str, message: str, target: str
) -> None:
    before = warehouse_snapshot(project.root)
    response = run_sql(client, sql.format(out=tmp_path), target)
    assert response.status_code == 400, response.text
    assert 'role="alert"' in response.text
    assert message in response.text
    assert warehouse_snapshot(project.root) == before
    assert list(tmp_path.iterdir()) == []  # COPY, ATTACH, EXPORT wrote nothing


def test_refusals_as_csv_are_json_errors(client: TestClient, tmp_path: Path) -> None:
    response = client.get("/sql/csv", params={"sql": f"COPY branches TO '{tmp_path}/b.csv'"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == 400
    assert "COPY is not allowed" in error["message"]
    assert list(tmp_path.iterdir()) == []


BYPASS = [
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/passwd')",
    "select * from glob('/etc/*')",
    "select * from '/etc/passwd'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "ATTACH '{out}/other.duckdb' AS other",
    "COPY (select 1) TO '{out}/one.csv'",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET allowed_paths = ['/etc/passwd']",
]


@pytest.mark.parametrize("target", ["warehouse", "lake"])
def test_connection_is_hardened_even_if_the_check_missed(
    project: Project, tmp_path: Path, target: sandbox.Target
) -> None:
    """The second layer alone: statements the parser check would refuse, run directly."""
    conn = sandbox.open_connection(project, target)
    try:
        for sql in BYPASS:
            with pytest.raises(duckdb.Error):
                conn.execute(sql.format(out=tmp_path)).fetchall()
        assert list(tmp_path.iterdir()) == []
        expected = warehouse_rows(project.root, "select count(*) from transactions")
        assert conn.execute("select count(*) from transactions").fetchall() == expected
    finally:
        conn.close()
    # The settings stay on the sandbox's own database: a plain connection to the
    # warehouse file (as the dashboards open it) can still read files.
    plain = duckdb.connect(str(project.warehouse_path), read_only=True)
    try:
        setting = plain.execute("select current_setting('enable_external_access')").fetchone()
        assert setting == (True,)
    finally:
        plain.close()


READ_ONLY = [
    "explain select * from transactions",
    "/* why */ EXPLAIN ANALYZE select count(*) from transactions",
    "explain (format json) select 1",
    "(select 1 as a) union all (select 2)",
    "-- first\n((select 1 as a))",
    "with t as (select * from branches) select count(*) from t",
    "from branches select branch_name",
    "values (1, 'a'), (2, 'b')",
    "table branches",
    "describe transactions",
    "show tables",
    "summarize branches",
    "select * from range(3) r, unnest([1, 2]) u",
    "select * from duckdb_columns() where table_name = 'branches'",
    "select 'drop table x; copy y' as text",
]


@pytest.mark.parametrize("sql", READ_ONLY)
def test_read_only_queries_run(client: TestClient, sql: str) -> None:
    response = run_sql(client, sql)
    assert response.status_code == 200, response.text
    assert 'role="alert"' not in response.text


def test_sandbox_errors_read_as_refusals(project: Project) -> None:
    with pytest.raises(sandbox.RefusedError, match="DROP is not allowed"):
        sandbox.run(project, "drop table transactions")
    with pytest.raises(sandbox.RefusedError, match="read_csv"):
        sandbox.check_statement("select * from read_csv('/etc/passwd')")
    with pytest.raises(QueryError, match="no SQL"):
        sandbox.check_statement("  ")


# --- results -------------------------------------------------------------------------


AGGREGATE = """
    select branch_name, count(*) as sales, sum(total) as revenue
    from transactions join branches using (branch_id)
    group by 1 order by 1
"""


def test_select_equals_duckdb_directly(client: TestClient, project: Project) -> None:
    response = run_sql(client, AGGREGATE)
    assert response.status_code == 200, response.text
    header, rows = cells(response.text)
    assert header == ["branch_name", "sales", "revenue"]
    expected = warehouse_rows(project.root, AGGREGATE)
    assert rows == [[str(v) for v in row] for row in expected]
    assert len(rows) == 3
    assert "3 rows" in response.text
    assert "there are more" not in response.text


def test_lake_target_reads_the_processed_zone(client: TestClient, project: Project) -> None:
    response = run_sql(client, "select count(*) as n from transactions", target="lake")
    assert response.status_code == 200, response.text
    lake_rows = int(cells(response.text)[1][0][0])
    assert lake_rows == warehouse_rows(project.root, "select count(*) from transactions")[0][0]


def test_lake_quarantine_view(client: TestClient, project: Project) -> None:
    """The quarantine view reads its files after hardening (they are in allowed_paths)."""
    glob = QuarantineZone(project.open_store()).glob()
    conn = duckdb.connect()
    try:
        expected = conn.execute(f"select count(*) from read_parquet('{glob}')").fetchall()[0][0]
    finally:
        conn.close()
    assert expected >= 1
    response = run_sql(client, "select count(*) from quarantine", target="lake")
    assert response.status_code == 200, response.text
    assert cells(response.text)[1] == [[str(expected)]]
    response = run_sql(
        client, "select reason from quarantine where reason like '%yesterday%'", "lake"
    )
    assert "yesterday-ish" in response.text


@pytest.mark.parametrize(
    "sql",
    [
        "select count(*) from raw.branch_files",
        "select * from transactions t join RAW.branch_files r using (_file)",
        "with x as (select * from raw.nowhere) select * from x",
    ],
)
def test_lake_target_keeps_the_raw_zone_out(client: TestClient, sql: str) -> None:
    """`raw.<source>` (what `headwater query --lake` reads) holds personal data before the
    PII policies: the console refuses it, by name, and says where to query it."""
    response = run_sql(client, sql, target="lake")
    assert response.status_code == 400, response.text
    assert "the raw zone is not in the SQL console" in response.text
    assert "raw." in response.text and "headwater query --lake" in response.text
    # Over the warehouse, `raw` is just a schema name (there is none: DuckDB says so).
    response = run_sql(client, sql, target="warehouse")
    assert "the raw zone is not in the SQL console" not in response.text


def test_row_limit_and_truncation(client: TestClient, project: Project) -> None:
    total = int(str(warehouse_rows(project.root, "select count(*) from transactions")[0][0]))
    assert total > 5
    response = run_sql(client, "select * from transactions", limit=5)
    assert response.status_code == 200
    assert len(cells(response.text)[1]) == 5
    assert "stopped at the row limit of 5" in response.text
    exact = run_sql(client, "select * from range(7)", limit=7)
    assert len(cells(exact.text)[1]) == 7
    assert "row limit" not in exact.text
    over = run_sql(client, "select * from range(8)", limit=7)
    assert "stopped at the row limit of 7" in over.text
    default = run_sql(client, "select * from range(5000)")
    assert len(cells(default.text)[1]) == sandbox.DEFAULT_LIMIT
    assert "there are more" in default.text
    widest = run_sql(client, "select * from range(20000)", limit=sandbox.MAX_LIMIT)
    assert len(cells(widest.text)[1]) == sandbox.MAX_LIMIT
    too_many = run_sql(client, "select 1", limit=sandbox.MAX_LIMIT + 1)
    assert too_many.status_code == 400
    assert "row limit must be between 1 and 10,000" in too_many.text


def test_errors_show_duckdb_message(client: TestClient) -> None:
    response = run_sql(client, "select * from no_such_table")
    assert response.status_code == 400
    assert "no_such_table does not exist" in response.text
    syntax = run_sql(client, "select from where")
    assert syntax.status_code == 400
    assert "syntax error" in syntax.text.lower()
    assert run_sql(client, "select 1", target="mars").status_code == 400


def test_console_page(client: TestClient) -> None:
    page = client.get("/sql")
    assert page.status_code == 200
    assert 'hx-post="/sql/run"' in page.text
    assert '<option value="lake"' in page.text
    # Without JavaScript the form GETs /sql and the result is on the page.
    with_result = client.get("/sql", params={"sql": "select 41 + 1 as answer", "target": "lake"})
    assert with_result.status_code == 200
    assert cells(with_result.text[with_result.text.index('id="result"') :])[1] == [["42"]]
    refused = client.get("/sql", params={"sql": "drop table branches"})
    assert refused.status_code == 400
    assert "DROP is not allowed" in refused.text


# --- CSV -------------------------------------------------------------------------------


def test_csv_download_equals_duckdb(client: TestClient, project: Project) -> None:
    response = client.get("/sql/csv", params={"sql": AGGREGATE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["branch_name", "sales", "revenue"]
    expected = warehouse_rows(project.root, AGGREGATE)
    assert rows[1:] == [[str(v) for v in row] for row in expected]


def test_csv_streams_past_the_page_limit(client: TestClient) -> None:
    response = client.get("/sql/csv", params={"sql": "select range as n from range(25000)"})
    lines = response.text.splitlines()
    assert lines[0] == '"n"'
    assert len(lines) == 25_001
    assert lines[-1] == "24999"
    capped = client.get("/sql/csv", params={"sql": "select * from range(25000)", "limit": "100"})
    assert len(capped.text.splitlines()) == 101
    empty = client.get("/sql/csv", params={"sql": "select 1 as a where false", "target": "lake"})
    assert empty.text.splitlines() == ['"a"']


def test_csv_of_nested_values(client: TestClient) -> None:
    response = client.get("/sql/csv", params={"sql": "select [1, 2] as xs, {'a': 1} as s"})
    assert response.status_code == 200
    assert list(csv.reader(io.StringIO(response.text))) == [["xs", "s"], ["[1, 2]", '{"a": 1}']]


# --- timeout ---------------------------------------------------------------------------

SLOW = "select count(*) from range(10000000000) a"


def test_a_query_past_the_timeout_is_stopped_and_the_server_goes_on(client: TestClient) -> None:
    started = time.monotonic()
    response = run_sql(client, SLOW)
    elapsed = time.monotonic() - started
    assert response.status_code == 400
    assert "timeout" in response.text
    assert elapsed < TIMEOUT + 2.5, elapsed
    after = run_sql(client, "select 6 * 7 as answer")
    assert after.status_code == 200
    assert cells(after.text)[1] == [["42"]]


def test_cross_join_past_the_timeout_as_csv(client: TestClient) -> None:
    started = time.monotonic()
    sql = "select count(*) from range(200000) a, range(200000) b where a.range + b.range = 7"
    response = client.get("/sql/csv", params={"sql": sql, "target": "lake"})
    assert time.monotonic() - started < TIMEOUT + 2.5
    assert response.status_code == 400
    assert "timeout" in response.json()["error"]["message"]
    assert client.get("/sql/csv", params={"sql": "select 1 as one"}).text.splitlines() == [
        '"one"',
        "1",
    ]


def test_a_query_that_ignores_the_interrupt_is_abandoned(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If DuckDB does not stop in time, the caller still gets its answer; the worker
    closes the connection when it finishes."""
    monkeypatch.setattr(sandbox, "GRACE", 0.1)
    conn = sandbox.open_connection(project, "warehouse")
    started = time.monotonic()
    with pytest.raises(sandbox.QueryTimeoutError):
        sandbox._timed(project, conn, lambda: time.sleep(1.0), 0.2, keep_open=True)
    assert time.monotonic() - started < 0.8
    time.sleep(1.2)
    with pytest.raises(duckdb.ConnectionException):
        conn.execute("select 1")


# --- on servers: the lake on S3, the warehouse on PostgreSQL -------------------------------


def _server_project(root: Path, bucket: Bucket, warehouse: str | None = None) -> Project:
    new_project(root)
    generate(root / "inbox", branches=2, days=1, seed=7, per_day=40)
    path = root / "headwater.yaml"
    text = path.read_text().replace("url: .headwater/lake", f"url: {bucket.url('lake')}")
    if warehouse is not None:
        text = text.replace(
            "type: duckdb\n  path: .headwater/warehouse.duckdb",
            "type: postgres\n  url: ${WAREHOUSE_URL}\n  schema_name: cafe",
        )
        with (root / ".env").open("a") as env:
            env.write(f"WAREHOUSE_URL={warehouse}\n")
    path.write_text(text)
    assert run_project(root).ok
    return Project.load(root)


def test_lake_target_on_s3(tmp_path: Path, s3_bucket: Bucket) -> None:
    project = _server_project(tmp_path / "s3", s3_bucket)
    expected = warehouse_rows(project.root, "select count(*) from transactions")[0][0]
    result = sandbox.run(project, "select count(*) from transactions", "lake")
    assert result.rows() == [(expected,)]
    assert sandbox.run(project, "select count(*) from quarantine", "lake").rows() == [(0,)]
    # Only the lake files the views read: not the raw zone (it may hold PII), on S3 either.
    raw = f"{s3_bucket.url('lake')}/raw/**"
    conn = sandbox.open_connection(project, "lake")
    try:
        with pytest.raises(duckdb.PermissionException):
            conn.execute(f"select count(*) from read_csv('{raw}')").fetchall()
        with pytest.raises(duckdb.PermissionException):
            conn.execute(f"select count(*) from glob('{raw}')").fetchall()
        assert conn.execute("select count(*) from transactions").fetchall() == [(expected,)]
    finally:
        conn.close()


def test_postgres_warehouse(tmp_path: Path, s3_bucket: Bucket, pg_database: str) -> None:
    project = _server_project(tmp_path / "pg", s3_bucket, warehouse=pg_database)
    with psycopg.connect(pg_database) as pg:
        row = pg.execute("select count(*) from cafe.transactions").fetchone()
    assert row is not None
    result = sandbox.run(project, "select count(*) as n from transactions")
    assert result.rows() == [(row[0],)]
    with pytest.raises(RefusedError, match="DROP is not allowed"):
        sandbox.run(project, "drop table transactions")
    with pytest.raises(RefusedError, match="postgres_query"):
        sandbox.run(project, "select * from postgres_query('warehouse', 'select 1')")
    with pytest.raises(RefusedError, match="postgres_scan"):
        sandbox.run(
            project, f"select * from postgres_scan('{pg_database}', 'cafe', 'transactions')"
        )
    conn = sandbox.open_connection(project, "warehouse")
    try:
        with pytest.raises(duckdb.PermissionException):
            conn.execute(f"ATTACH '{pg_database}' AS again (TYPE postgres)").fetchall()
        with pytest.raises(duckdb.PermissionException):
            conn.execute("select * from read_csv('/etc/passwd')").fetchall()
        with pytest.raises(duckdb.Error):  # attached READ_ONLY
            conn.execute("delete from transactions").fetchall()
    finally:
        conn.close()
    with psycopg.connect(pg_database) as pg:
        assert pg.execute("select count(*) from cafe.transactions").fetchone() == row


def test_a_csv_download_past_its_time_is_cut_not_shortened(project: Project) -> None:
    """On a real server: a download stopped mid-stream ends without the final chunk, so the
    client sees an incomplete transfer instead of a short file that looks whole."""
    app = create_app(project)
    app.state.sql_stream_timeout = 0.5
    with serving(project, app) as url, httpx.Client(base_url=url, timeout=30) as client:
        # Rows that take long to compute: a million of them take far longer than 0.5 s.
        sql = "select range, md5(repeat('x', 10000) || range::varchar) from range(1000000000)"
        params = {"sql": sql}
        with (
            pytest.raises(httpx.RemoteProtocolError),
            client.stream("GET", "/sql/csv", params=params) as response,
        ):
            assert response.status_code == 200
            for _ in response.iter_bytes():
                time.sleep(0.01)  # a slow client
        assert client.get("/sql/csv", params={"sql": "select 1 as one"}).status_code == 200
