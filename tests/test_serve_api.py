"""`headwater serve`: JSON API, /metrics, operations pages and access control, over real runs.

One cafe project is run twice: run 1 succeeds with quarantined rows (a damaged file), run 2
lands more files and fails (a model with an error-severity check). Every number the server
shows is compared with the run summaries, the state database or the lake.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from headwater.project import Project
from headwater.serve import api, auth, metrics
from headwater.serve.app import create_app
from headwater.serve.query import connect
from headwater.state.db import StateDB, files
from headwater.state.runs import finish_run, start_run
from headwater.templates.cafe.generator import generate
from tests.conftest import SECRET, new_project, run_project, warehouse_rows

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what is installed
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PASSWORD = "fake-Pa55word-for-serve-tests"
TOKEN = "serve-test-token-0123456789"
API_PATHS = ("/api/runs", "/api/runs/{run_id}", "/api/tables", "/api/freshness", "/health")

DAMAGED = (
    b"Timestamp,Branch,Customer,Basket,Total,Payment,Card\r\n"
    b"25/08/2021 09:00,Leeds,Ann Smith,Regular Latte - 2.15,2.15,CARD,4929123412341234\r\n"
    b"25/08/2021 09:05,Leeds,Bob Jones,Regular Latte - 2.15,2.15\r\n"
    b"25/08/2021 09:06,Leeds,Cy Doe,Regular Latte - 2.15,2.15,CHEQUE,\r\n"
)
STRICT_MODEL = """/* headwater
materialized: table
checks:
  - range: {column: total, max: 3}
    name: total_at_most_3
*/
select transaction_id, total from transactions
"""


@dataclass(frozen=True)
class Served:
    project: Project
    summaries: list[dict[str, Any]]  # what run_project returned, run 1 then run 2

    @property
    def state_db(self) -> Path:
        return self.project.root / ".headwater" / "state.db"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root = new_project(tmp_path_factory.mktemp("serve") / "p")
    # A password in .env (unused) and as the lake's S3 secret key (set, unused by a local lake).
    with (root / ".env").open("a") as env:
        env.write(f"HW_TEST_DB_PASSWORD={PASSWORD}\n")
    config = root / "headwater.yaml"
    config.write_text(
        config.read_text().replace(
            "lake:\n  url: .headwater/lake\n",
            "lake:\n  url: .headwater/lake\n  s3:\n    secret_access_key: ${HW_TEST_DB_PASSWORD}\n",
        )
    )
    generate(root / "inbox", branches=2, days=1, seed=1, per_day=20)
    (root / "inbox" / "damaged.csv").write_bytes(DAMAGED)
    first = run_project(root)
    assert first.ok, first.error
    generate(root / "inbox" / "later", branches=2, days=2, seed=2, per_day=20)
    (root / "models" / "strict_totals.sql").write_text(STRICT_MODEL)
    second = run_project(root)
    assert not second.ok
    return Served(Project.load(root), [first.to_json(), second.to_json()])


def client(app: FastAPI, **kwargs: Any) -> TestClient:
    return TestClient(app, **kwargs)


@pytest.fixture(scope="module")
def open_client(served: Served) -> TestClient:
    return client(create_app(served.project))


def html(c: TestClient, path: str, headers: dict[str, str] | None = None) -> Any:
    """GET as a browser does (asking for HTML)."""
    return c.get(path, headers={"accept": "text/html", **(headers or {})})


def state_rows(served: Served, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(served.state_db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def assert_error(response: Any, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "message"}
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# ------------------------------------------------------------------- health


def test_health(open_client: TestClient) -> None:
    response = open_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "project": "cafe", "state": "ok"}


def test_before_any_run(tmp_path: Path) -> None:
    project = Project.load(new_project(tmp_path / "fresh"))
    c = client(create_app(project))
    assert c.get("/health").json() == {"status": "ok", "project": "cafe", "state": "missing"}
    assert c.get("/api/runs").json() == {"runs": []}
    tables = c.get("/api/tables").json()
    assert tables["processed"] == [] and tables["warehouse"]["tables"] == []
    [fresh] = c.get("/api/freshness").json()
    assert fresh["source"] == "branch_files" and fresh["files"] == 0 and not fresh["overdue"]
    for path in ("/", "/runs", "/runs/table", "/freshness", "/checks"):
        assert html(c, path).status_code == 200, path
    text = c.get("/metrics").text
    assert 'headwater_runs_total{status="success"} 0' in text
    assert "headwater_run_duration_seconds_count 0" in text
    assert not (project.root / ".headwater" / "state.db").exists()  # nothing was created


# --------------------------------------------------------------------- runs


def test_api_runs_equal_the_run_summaries(served: Served, open_client: TestClient) -> None:
    body = open_client.get("/api/runs").json()
    assert [r["run_id"] for r in body["runs"]] == [2, 1]
    for got, summary in zip(reversed(body["runs"]), served.summaries, strict=True):
        assert got["status"] == summary["status"]
        assert got["trigger"] == "manual"
        assert got["started_at"] == summary["started_at"]
        assert got["finished_at"] is not None
        assert got["duration_seconds"] == summary["duration_seconds"]
        assert got["error"] == summary["error"]
        assert got["warehouse"] == {
            k: summary["warehouse"][k] for k in ("target", "status", "error")
        }
        for name, source in summary["sources"].items():
            assert got["sources"][name] == {
                k: source[k]
                for k in (
                    "files_new",
                    "rows_read",
                    "rows_loaded",
                    "rows_quarantined",
                    "quarantined_by_reason",
                )
            }
        sources = summary["sources"].values()
        assert got["rows_read"] == sum(s["rows_read"] for s in sources)
        assert got["rows_loaded"] == sum(s["rows_loaded"] for s in sources)
        assert got["rows_quarantined"] == sum(s["rows_quarantined"] for s in sources)
    first = body["runs"][1]
    assert first["rows_quarantined"] > 0
    assert {"field_count", "payment_known"} <= set(
        first["sources"]["branch_files"]["quarantined_by_reason"]
    )
    assert "total_at_most_3" in body["runs"][0]["error"]


def test_api_runs_filters(open_client: TestClient) -> None:
    failed = open_client.get("/api/runs", params={"status": "failed"}).json()["runs"]
    assert [r["run_id"] for r in failed] == [2]
    assert [r["run_id"] for r in open_client.get("/api/runs?limit=1").json()["runs"]] == [2]
    assert [r["run_id"] for r in open_client.get("/api/runs?before=2").json()["runs"]] == [1]
    assert_error(open_client.get("/api/runs?status=bogus"), 422)


def test_api_run_has_its_steps_and_models(served: Served, open_client: TestClient) -> None:
    for run_id, summary in enumerate(served.summaries, start=1):
        got = open_client.get(f"/api/runs/{run_id}").json()
        steps = state_rows(
            served,
            "select stage, name, batch, status, rows_in, rows_out, rows_quarantined, error "
            f"from hw_steps where run_id = {run_id} order by step_id",
        )
        assert [
            (
                s["stage"],
                s["name"],
                s["batch"],
                s["status"],
                s["rows_in"],
                s["rows_out"],
                s["rows_quarantined"],
                s["error"],
            )
            for s in got["steps"]
        ] == steps
        assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in got["steps"])
        assert list(got["models"]) == list(summary["models"])
        assert got["models"] == summary["models"]
        assert got["batches"] == summary["batches"]
        assert got["load"]["tables"] == summary["warehouse"]["tables"]
    failed = open_client.get("/api/runs/2").json()
    assert failed["models"]["strict_totals"]["status"] == "failed"
    assert any(s["status"] == "failed" and s["name"] == "strict_totals" for s in failed["steps"])
    assert failed["error_detail"] is None  # no traceback: the error says it all


def test_one_json_error_shape(served: Served) -> None:
    app = create_app(served.project)

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError(f"kaboom {SECRET}")

    c = client(app, raise_server_exceptions=False)
    assert_error(c.get("/api/runs/999"), 404)
    assert c.get("/api/runs/999").json()["error"]["message"] == "run 999 not found"
    assert_error(c.get("/api/nothing-here"), 404)
    assert_error(c.get("/api/runs/not-a-number"), 422)
    assert_error(c.get("/api/runs?limit=0"), 422)
    assert_error(c.post("/api/runs"), 405)
    response = c.get("/api/boom")
    assert_error(response, 500)
    assert SECRET not in response.text and "kaboom" not in response.text
    page = html(c, "/runs/999")  # a page gets an HTML error page, same status
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "run 999 not found" in page.text


# ------------------------------------------------------------------- tables


def test_api_tables_equal_the_lake_and_the_warehouse(
    served: Served, open_client: TestClient
) -> None:
    body = open_client.get("/api/tables").json()
    processed = {t["name"]: t for t in body["processed"]}
    with connect(served.project, lake=True) as conn:
        query = "select view_name from duckdb_views() where not internal"
        views = {r[0] for r in conn.execute(query).fetchall()} - {"quarantine"}
        assert set(processed) == views
        for name, table in processed.items():
            row = conn.execute(f'select count(*) from "{name}"').fetchone()
            assert row is not None and table["rows"] == row[0], name
            described = conn.execute(f'describe "{name}"').fetchall()
            assert [c["name"] for c in table["columns"]] == [r[0] for r in described]
    assert {"branch_files", "transactions", "branches"} <= set(processed)
    tx = processed["transactions"]
    assert tx["snapshots"] == 2 and tx["current_snapshot_id"] is not None
    assert tx["current_snapshot_at"].endswith("Z")
    assert {"name": "total", "type": "decimal(10, 2)"} in tx["columns"]
    assert "strict_totals" not in processed  # its only commit failed

    warehouse = body["warehouse"]
    assert warehouse["target"] == "duckdb" and warehouse["error"] is None
    root = served.project.root
    names = [t["name"] for t in warehouse["tables"]]
    assert names == sorted(["branches", "products", "transactions", "transaction_items"])
    for t in warehouse["tables"]:
        assert [(t["rows"],)] == warehouse_rows(root, f'select count(*) from "{t["name"]}"')


def test_openapi_describes_the_api(open_client: TestClient) -> None:
    spec = open_client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (*API_PATHS, "/metrics"):
        assert path in paths, path
    for page in ("/", "/runs", "/runs/{run_id}", "/freshness", "/checks", "/login"):
        assert page not in paths, page
    schemas = spec["components"]["schemas"]
    for name in ("Run", "RunDetail", "RunList", "Step", "ModelRun", "TableList", "LakeTable"):
        assert name in schemas, name
    assert set(schemas["Run"]["properties"]) >= {
        "run_id",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "error",
        "sources",
        "warehouse",
    }
    one_run = paths["/api/runs/{run_id}"]["get"]["responses"]
    assert one_run["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunDetail")
    for status in ("404", "422"):
        ref = one_run[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorResponse")
    for path in API_PATHS:  # the 422 shape is ours, not FastAPI's HTTPValidationError
        assert "HTTPValidationError" not in json.dumps(paths[path]), path


# ------------------------------------------------------------------ metrics

LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq]
        assert text[eq + 1] == '"'
        j, value = eq + 2, []
        while text[j] != '"':
            if text[j] == "\\":
                value.append({"n": "\n", "\\": "\\", '"': '"'}[text[j + 1]])
                j += 2
            else:
                value.append(text[j])
                j += 1
        labels[name] = "".join(value)
        i = j + 1
        if i < len(text):
            assert text[i] == ","
            i += 1
    return labels


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by metric name; checks every family has HELP and TYPE before its samples."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram")
            typed.add(name)
            continue
        match = LINE.match(line)
        assert match, line
        name, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or family in typed, line
        out.setdefault(name, []).append((parse_labels(labels or ""), float(value)))
    return out


def one(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    found = [v for ls, v in samples.get(name, []) if ls == labels]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def test_label_escaping_round_trips() -> None:
    exposition = metrics.Exposition()
    exposition.family("x_total", "counter", "help with \\ and\nnewline")
    tricky = 'a "quoted" \\ back\nslash'
    exposition.sample("x_total", 3, (("source", tricky), ("reason", "r")))
    text = exposition.text()
    assert "# HELP x_total help with \\\\ and\\nnewline" in text
    assert parse_metrics(text) == {"x_total": [({"source": tricky, "reason": "r"}, 3.0)]}


def test_metrics_equal_the_state_database(served: Served, open_client: TestClient) -> None:
    response = open_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse_metrics(response.text)

    by_status = dict(state_rows(served, "select status, count(*) from hw_runs group by 1"))
    for status in ("running", "success", "failed", "abandoned"):
        assert one(samples, "headwater_runs_total", status=status) == by_status.get(status, 0)

    durations = [s["duration_seconds"] for s in served.summaries]
    buckets = samples["headwater_run_duration_seconds_bucket"]
    assert [ls["le"] for ls, _ in buckets] == [
        "1",
        "5",
        "15",
        "60",
        "300",
        "900",
        "3600",
        "+Inf",
    ]
    for ls, count in buckets:
        bound = float("inf") if ls["le"] == "+Inf" else float(ls["le"])
        assert count == sum(1 for d in durations if d <= bound)
    assert one(samples, "headwater_run_duration_seconds_count") == 2
    assert one(samples, "headwater_run_duration_seconds_sum") == pytest.approx(sum(durations))

    sources = [s["sources"]["branch_files"] for s in served.summaries]
    for metric, key in (
        ("headwater_rows_read_total", "rows_read"),
        ("headwater_rows_loaded_total", "rows_loaded"),
    ):
        assert one(samples, metric, source="branch_files") == sum(s[key] for s in sources)
    reasons: dict[str, int] = {}
    for s in sources:
        for reason, n in s["quarantined_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    got = {
        ls["reason"]: v
        for ls, v in samples["headwater_rows_quarantined_total"]
        if ls["source"] == "branch_files"
    }
    assert got == reasons and sum(got.values()) == sum(s["rows_quarantined"] for s in sources)
    [(files,)] = state_rows(served, "select count(*) from hw_files")
    assert one(samples, "headwater_files_landed_total", source="branch_files") == files

    [(last_landed,)] = state_rows(served, "select max(landed_at) from hw_files")
    age = (api.utcnow() - dt.datetime.fromisoformat(last_landed)).total_seconds()
    got_age = one(samples, "headwater_source_freshness_age_seconds", source="branch_files")
    assert 0 <= got_age <= age + 1 and got_age >= age - 60
    assert one(samples, "headwater_source_overdue", source="branch_files") == 0
    [(finished,)] = state_rows(
        served, "select max(finished_at) from hw_runs where status = 'success'"
    )
    expected = dt.datetime.fromisoformat(finished).replace(tzinfo=dt.UTC).timestamp()
    assert one(samples, "headwater_last_success_timestamp_seconds") == pytest.approx(expected)


# -------------------------------------------------------------------- pages


def test_pages_render(served: Served, open_client: TestClient) -> None:
    index = html(open_client, "/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert 'href="/runs/2"' in index.text and 'href="/runs/1"' in index.text

    runs = html(open_client, "/runs")
    assert runs.status_code == 200
    assert 'id="run-1"' in runs.text and 'id="run-2"' in runs.text
    assert 'hx-get="/runs/table"' in runs.text and 'hx-trigger="every 5s"' in runs.text
    assert "field_count" in runs.text  # quarantined rows by reason
    table = html(open_client, "/runs/table", headers={"hx-request": "true"})
    assert table.status_code == 200
    assert table.text.lstrip().startswith('<div id="runs-table"')
    assert "<nav" not in table.text and 'id="run-2"' in table.text
    failed_only = html(open_client, "/runs?status=failed")
    assert 'id="run-2"' in failed_only.text and 'id="run-1"' not in failed_only.text

    first = html(open_client, "/runs/1")
    assert first.status_code == 200
    assert 'id="steps"' in first.text and 'id="quarantine"' in first.text
    assert "unbalanced_quote" in first.text or "field_count" in first.text
    assert 'id="error"' not in first.text

    second = html(open_client, "/runs/2").text
    assert 'id="error"' in second
    assert "total_at_most_3" in second and "strict_totals" in second
    summary_error = served.summaries[1]["error"]
    assert summary_error.replace("'", "&#39;") in second  # autoescaped, in full

    checks = html(open_client, "/checks")
    assert checks.status_code == 200 and "total_at_most_3" in checks.text
    failing = html(open_client, "/checks?failing=true&model=strict_totals").text
    assert "total_at_most_3" in failing and "unique(branch_id)" not in failing

    fresh = html(open_client, "/freshness")
    assert fresh.status_code == 200 and "branch_files" in fresh.text
    assert 'data-overdue="true"' not in fresh.text


def test_overdue_source_is_highlighted(
    served: Served, open_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two landings seconds apart: the usual interval is tiny, so the 1-hour floor applies."""
    [(last_landed,)] = state_rows(served, "select max(landed_at) from hw_files")
    last = dt.datetime.fromisoformat(last_landed)

    monkeypatch.setattr(api, "utcnow", lambda: last + dt.timedelta(minutes=50))
    assert 'data-overdue="true"' not in html(open_client, "/freshness").text
    assert not open_client.get("/api/freshness").json()[0]["overdue"]

    monkeypatch.setattr(api, "utcnow", lambda: last + dt.timedelta(hours=2))
    page = html(open_client, "/freshness").text
    assert '<tr id="source-branch_files" class="overdue" data-overdue="true">' in page
    assert 'data-overdue="true"' in html(open_client, "/").text
    [fresh] = open_client.get("/api/freshness").json()
    assert fresh["overdue"] and fresh["overdue_after_seconds"] == 3600
    assert fresh["age_seconds"] == pytest.approx(7200, abs=1)
    samples = parse_metrics(open_client.get("/metrics").text)
    assert one(samples, "headwater_source_overdue", source="branch_files") == 1


def test_freshness_rules(tmp_path: Path) -> None:
    """Twice the usual interval (median of the last ones, at least 1 h), else 24 hours."""
    project = Project.load(new_project(tmp_path / "p"))
    db = StateDB.open(project.state_url)
    t0 = dt.datetime(2026, 1, 1, 6)
    try:

        def land(run_id: int, at: dt.datetime) -> None:
            with db.engine.begin() as conn:
                conn.execute(
                    files.insert().values(
                        source="branch_files",
                        content_hash=f"{run_id:064d}",
                        name=f"f{run_id}.csv",
                        size=1,
                        raw_key=f"raw/{run_id}",
                        batch=run_id * 1000 + 1,
                        status="done",
                        landed_at=at,
                    )
                )

        def report(now: dt.datetime) -> api.SourceFreshness:
            [fresh] = api.freshness_report(db, project, now=now)
            return fresh

        land(1, t0)
        once = report(t0 + dt.timedelta(hours=23))
        assert once.usual_interval_seconds is None and once.overdue_after_seconds == 86400
        assert not once.overdue and report(t0 + dt.timedelta(hours=25)).overdue
        for day in range(1, 5):  # daily, with one late delivery: the median ignores it
            land(day + 1, t0 + dt.timedelta(days=day, hours=6 if day == 2 else 0))
        last = t0 + dt.timedelta(days=4)
        daily = report(last + dt.timedelta(hours=47))
        assert daily.usual_interval_seconds == 86400 and daily.overdue_after_seconds == 172800
        assert not daily.overdue and report(last + dt.timedelta(hours=49)).overdue
        assert daily.files == 5 and daily.last_landed_at == last.replace(tzinfo=dt.UTC)
    finally:
        db.dispose()


# ------------------------------------------------------------------- access


@pytest.fixture(scope="module")
def token_app(served: Served) -> FastAPI:
    return create_app(served.project, token=TOKEN)


def test_token_api_needs_a_bearer(token_app: FastAPI) -> None:
    c = client(token_app)
    for path in ("/api/runs", "/api/runs/1", "/api/tables", "/metrics", "/openapi.json"):
        response = c.get(path)
        assert_error(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert_error(c.get(path, headers={"authorization": "Bearer wrong-token"}), 401)
        assert_error(c.get(path, headers={"authorization": f"Basic {TOKEN}"}), 401)
        ok = c.get(path, headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, path
    assert c.get("/health").status_code == 200  # open: for load balancers
    assert c.get("/static/headwater.css").status_code == 200
    assert_error(c.get("/api/runs/999", headers={"authorization": f"Bearer {TOKEN}"}), 404)


def test_token_pages_redirect_to_login(token_app: FastAPI) -> None:
    c = client(token_app, follow_redirects=False)
    response = html(c, "/runs?status=failed")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fruns%3Fstatus%3Dfailed"
    htmx = c.get("/runs/table", headers={"hx-request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/login?next=")
    login = html(c, "/login?next=/runs")
    assert login.status_code == 200 and 'name="token"' in login.text
    assert 'value="/runs"' in login.text
    hostile = html(c, '/login?next=/"><script>alert(1)</script>').text  # autoescaped
    assert "<script>alert" not in hostile and "&lt;script&gt;alert(1)" in hostile
    assert html(c, "/runs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_login_sets_a_session_cookie(token_app: FastAPI) -> None:
    c = client(token_app, follow_redirects=False)
    wrong = c.post("/login", data={"token": "not-it", "next": "/runs"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert "not right" in wrong.text
    assert html(c, "/runs").status_code == 303

    response = c.post("/login", data={"token": TOKEN, "next": "/runs"})
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{auth.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    value = c.cookies[auth.COOKIE]
    assert TOKEN not in value and value != TOKEN
    runs = html(c, "/runs")
    assert runs.status_code == 200 and 'id="run-2"' in runs.text
    assert c.get("/api/runs").status_code == 200  # the cookie works for the API too
    assert html(c, "/runs/2").status_code == 200

    logout = c.post("/logout")
    assert logout.status_code == 303
    assert html(c, "/runs").status_code == 303


def test_login_refuses_forged_cookies_and_foreign_redirects(token_app: FastAPI) -> None:
    c = client(token_app, follow_redirects=False)
    for forged in ("9999999999.00ff", TOKEN, auth.session_value("other-token", 9999999999)):
        c.cookies.set(auth.COOKIE, forged)
        assert html(c, "/runs").status_code == 303, forged
        assert_error(c.get("/api/runs"), 401)
    expired = auth.session_value(TOKEN, 1_000_000)
    c.cookies.set(auth.COOKIE, expired)
    assert html(c, "/").status_code == 303
    c.cookies.clear()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = c.post("/login", data={"token": TOKEN, "next": target})
        assert response.headers["location"] == "/", target


# ------------------------------------------------------------------ secrets


def every_response(c: TestClient) -> Iterator[tuple[str, str]]:
    for path in (
        "/",
        "/runs",
        "/runs/table",
        "/runs/1",
        "/runs/2",
        "/freshness",
        "/checks",
        "/login",
    ):
        yield path, html(c, path).text
    for path in (
        "/health",
        "/api/runs",
        "/api/runs/1",
        "/api/runs/2",
        "/api/tables",
        "/api/freshness",
        "/metrics",
        "/openapi.json",
    ):
        yield path, c.get(path).text


def test_no_response_holds_a_secret(served: Served, token_app: FastAPI) -> None:
    secrets = api.Secrets.of(served.project)
    assert SECRET in secrets.values and PASSWORD in secrets.values
    c = client(token_app, headers={"authorization": f"Bearer {TOKEN}"})
    seen = 0
    for path, text in [*every_response(client(create_app(served.project))), *every_response(c)]:
        seen += 1
        for secret in (SECRET, PASSWORD, TOKEN):
            assert secret not in text, (path, secret)
    assert seen == 32


def test_secrets_are_scrubbed_from_recorded_errors(tmp_path: Path) -> None:
    """A password that reached an error message in the state database is not shown."""
    root = new_project(tmp_path / "p")
    with (root / ".env").open("a") as env:
        env.write(f"HW_TEST_DB_PASSWORD={PASSWORD}\n")
    config = root / "headwater.yaml"
    config.write_text(
        config.read_text().replace(
            "sources:\n",
            "sources:\n  crm:\n    kind: sql\n"
            "    url: postgresql://reader:${HW_TEST_DB_PASSWORD}@db.example:5432/crm\n"
            "    tables: [customers]\n",
            1,
        )
    )
    project = Project.load(root)
    db = StateDB.open(project.state_url)
    try:
        run_id = start_run(db, "manual")
        message = (
            f"cannot connect to postgresql://reader:{PASSWORD}@db.example:5432/crm "
            f"(pii key {SECRET})"
        )
        finish_run(db, run_id, "failed", {"run_id": run_id, "error": message}, message)
    finally:
        db.dispose()
    c = client(create_app(project))
    texts = [
        c.get("/api/runs").text,
        c.get(f"/api/runs/{run_id}").text,
        html(c, "/runs").text,
        html(c, f"/runs/{run_id}").text,
        html(c, "/").text,
    ]
    for text in texts:
        assert PASSWORD not in text and SECRET not in text
    assert "postgresql://reader:***@db.example:5432/crm" in texts[0]
