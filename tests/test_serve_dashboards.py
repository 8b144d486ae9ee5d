"""Dashboard pages of `headwater serve`: every shipped dashboard renders, filters reach the
SQL as bound parameters, charts carry their data, a broken panel shows its error while the
rest renders, results are cached until the warehouse changes, and every asset is local."""

from __future__ import annotations

import html
import json
import re
import shutil
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ConfigError
from headwater.project import Project
from headwater.serve.app import create_app
from headwater.serve.dashboards import (
    CACHE,
    load_dashboards,
    panel_rows,
    validate_dashboards,
)
from headwater.serve.web import HERE, STATIC_DIR
from headwater.templates.cafe.generator import generate
from tests.conftest import new_project, run_project, warehouse_rows

with warnings.catch_warnings():  # starlette's note about httpx, at import time
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SPEC = re.compile(r'<script type="application/json" class="vl-spec">(.*?)</script>', re.DOTALL)
SECTION = re.compile(r'<section class="panel[^"]*"\s+id="panel-(\d+)".*?</section>', re.DOTALL)


def sections(page: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(0) for m in SECTION.finditer(page)}


def spec_of(section: str) -> dict[str, Any]:
    match = SPEC.search(section)
    assert match, section[:500]
    spec: dict[str, Any] = json.loads(match.group(1))
    return spec


def number_of(section: str) -> str:
    match = re.search(r'<span class="value">([^<]*)</span>', section)
    assert match, section[:500]
    return html.unescape(match.group(1))


def panel_index(project: Project, board: str, title: str) -> int:
    panels = load_dashboards(project)[board].panels
    return next(i for i, p in enumerate(panels) if p.title == title)


@pytest.fixture(scope="module")
def cafe(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Three branches over three days, run once."""
    root = new_project(tmp_path_factory.mktemp("serve") / "p")
    generate(root / "inbox", branches=3, days=3, seed=7, per_day=60)
    assert run_project(root).ok
    return Project.load(root)


@pytest.fixture
def client(cafe: Project) -> Iterator[TestClient]:
    CACHE.clear()
    with TestClient(create_app(cafe)) as c:
        yield c


# ------------------------------------------------------------------ pages


def test_list_and_every_dashboard_renders(client: TestClient, cafe: Project) -> None:
    listing = client.get("/dashboards")
    assert listing.status_code == 200
    assert 'href="/dashboards/sales"' in listing.text
    assert 'href="/dashboards/operations"' in listing.text
    for name, board in load_dashboards(cafe).items():
        page = client.get(f"/dashboards/{name}")
        assert page.status_code == 200, name
        found = sections(page.text)
        assert sorted(found) == list(range(len(board.panels))), name
        for i, panel in enumerate(board.panels):
            body = found[i]
            assert f'data-panel="{i}"' in body
            assert "panel-body error" not in body, (name, panel.title, body)
            if panel.chart in ("number", "table"):
                assert "drawn" in body
            elif 'class="note">No rows.' not in body:
                spec = spec_of(body)
                assert spec["data"]["values"], (name, panel.title)
            fragment = client.get(f"/dashboards/{name}/panels/{i}")
            assert fragment.status_code == 200
            assert f'id="panel-{i}"' in fragment.text


def test_unknown_dashboard_and_panel(client: TestClient) -> None:
    assert client.get("/dashboards/nope").status_code == 404
    assert client.get("/dashboards/sales/panels/99").status_code == 404
    assert client.get("/dashboards/..%2Fheadwater").status_code == 404


def test_filter_form_lists_branches_and_the_data_range(client: TestClient, cafe: Project) -> None:
    page = client.get("/dashboards/sales").text
    branches = [
        str(r[0]) for r in warehouse_rows(cafe.root, "select branch_name from branches order by 1")
    ]
    for branch in branches:
        assert f'<option value="{html.escape(branch)}">' in page
    low, high = warehouse_rows(
        cafe.root, "select min(transacted_at)::date, max(transacted_at)::date from transactions"
    )[0]
    assert f'name="date_from" value="{low}"' in page
    assert f'name="date_to" value="{high}"' in page
    assert 'hx-get="/dashboards/sales"' in page and 'hx-select="#panels"' in page


def test_branch_filter_gives_that_branchs_revenue(client: TestClient, cafe: Project) -> None:
    revenue = panel_index(cafe, "sales", "Revenue")
    per_day = panel_index(cafe, "sales", "Revenue per day")
    everything = sections(client.get("/dashboards/sales").text)
    (total,) = warehouse_rows(cafe.root, "select sum(total) from transactions")[0]
    assert number_of(everything[revenue]) == f"£{total:,.2f}"
    for (branch,) in warehouse_rows(cafe.root, "select branch_name from branches"):
        (expected,) = warehouse_rows(
            cafe.root,
            "select sum(total) from transactions join branches using (branch_id) "
            f"where branch_name = '{branch}'",
        )[0]
        page = client.get("/dashboards/sales", params={"branch": branch})
        found = sections(page.text)
        assert number_of(found[revenue]) == f"£{expected:,.2f}", branch
        days = spec_of(found[per_day])["data"]["values"]
        assert sum(Decimal(str(d["revenue"])) for d in days) == expected
        fragment = client.get(f"/dashboards/sales/panels/{revenue}", params={"branch": branch})
        assert number_of(fragment.text) == f"£{expected:,.2f}"
    # panel_rows takes the same parameters.
    panel = load_dashboards(cafe)["sales"].panels[revenue]
    one = panel_rows(cafe, panel, {"branch": "Leeds"}).to_pylist()[0]["revenue"]
    assert (
        one
        == warehouse_rows(
            cafe.root,
            "select sum(total) from transactions join branches using (branch_id) "
            "where branch_name = 'Leeds'",
        )[0][0]
    )


def test_date_filter_narrows_every_panel(client: TestClient, cafe: Project) -> None:
    (day,) = warehouse_rows(cafe.root, "select min(transacted_at)::date from transactions")[0]
    (expected,) = warehouse_rows(
        cafe.root, f"select sum(total) from transactions where transacted_at::date = '{day}'"
    )[0]
    page = client.get("/dashboards/sales", params={"date_from": str(day), "date_to": str(day)})
    found = sections(page.text)
    assert number_of(found[panel_index(cafe, "sales", "Revenue")]) == f"£{expected:,.2f}"
    days = spec_of(found[panel_index(cafe, "sales", "Revenue per day")])["data"]["values"]
    assert [d["day"][:10] for d in days] == [str(day)]
    customers = spec_of(found[panel_index(cafe, "sales", "New vs returning customers per day")])
    assert {row["day"][:10] for row in customers["data"]["values"]} == {str(day)}
    # A bad date is reported and the default used; the page still renders.
    bad = client.get("/dashboards/sales", params={"date_from": "yesterday"})
    assert bad.status_code == 200
    assert "is not a date" in bad.text
    assert len(sections(bad.text)) == len(load_dashboards(cafe)["sales"].panels)


@pytest.mark.parametrize(
    "value", ["'; drop table branches; --", "Leeds' or '1'='1", '"; select 1; --', "$branch"]
)
def test_filter_values_are_bound_not_pasted(client: TestClient, cafe: Project, value: str) -> None:
    revenue = panel_index(cafe, "sales", "Revenue")
    top = panel_index(cafe, "sales", "Top branches by revenue")
    page = client.get("/dashboards/sales", params={"branch": value})
    assert page.status_code == 200
    found = sections(page.text)
    assert number_of(found[revenue]) == "£0.00"  # no branch has that name
    assert "No rows." in found[top]
    assert "panel-body error" not in page.text
    assert warehouse_rows(cafe.root, "select count(*) from branches")[0][0] == 3


def test_chart_specs_carry_data_and_marks(client: TestClient, cafe: Project) -> None:
    found = sections(client.get("/dashboards/sales").text)

    def spec(title: str) -> dict[str, Any]:
        return spec_of(found[panel_index(cafe, "sales", title)])

    line = spec("Revenue per day")
    assert line["mark"]["type"] == "line"
    assert line["encoding"]["x"]["type"] == "temporal"
    (days,) = warehouse_rows(
        cafe.root, "select count(distinct transacted_at::date) from transactions"
    )[0]
    assert len(line["data"]["values"]) == days
    assert "renderer" not in line and "$schema" not in line  # nothing to fetch

    stacked = spec("Revenue per day by payment method")
    assert stacked["mark"]["type"] == "bar"
    assert stacked["encoding"]["color"]["field"] == "payment_method"
    assert stacked["encoding"]["y"]["stack"] == "zero"

    donut = spec("Card vs cash")
    assert donut["mark"]["type"] == "arc" and donut["mark"]["innerRadius"] > 0
    got = {v["payment_method"]: v["revenue"] for v in donut["data"]["values"]}
    expected: dict[object, object] = {
        r[0]: r[1]
        for r in warehouse_rows(
            cafe.root, "select payment_method, sum(total)::double from transactions group by 1"
        )
    }
    assert got == expected

    top = spec("Top branches by revenue")
    assert top["mark"]["type"] == "bar"
    assert top["encoding"]["y"]["field"] == "branch_name"  # horizontal
    assert top["encoding"]["y"]["sort"] is None  # the query's order
    revenues = [v["revenue"] for v in top["data"]["values"]]
    assert revenues == sorted(revenues, reverse=True)

    folded = spec("New vs returning customers per day")
    assert folded["transform"][0]["fold"] == ["new_customers", "returning_customers"]


def test_table_and_number_panels_are_html(client: TestClient, cafe: Project) -> None:
    page = client.get("/dashboards/operations").text
    found = sections(page)
    last_runs = found[panel_index(cafe, "operations", "Last runs")]
    assert "<table>" in last_runs and ">run_id</th>" in last_runs
    assert '<td class="num">1</td>' in last_runs
    sales = sections(client.get("/dashboards/sales").text)
    (count,) = warehouse_rows(cafe.root, "select count(*) from transactions")[0]
    assert number_of(sales[panel_index(cafe, "sales", "Transactions")]) == f"{count:,}"


# ------------------------------------------------------------------ errors


@pytest.fixture
def broken(tmp_path: Path, cafe: Project) -> Project:
    """A copy of the cafe project with a dashboard whose second panel fails."""
    root = tmp_path / "copy"
    shutil.copytree(cafe.root, root)
    (root / "dashboards" / "broken.yaml").write_text(
        """title: Broken
filters:
  - {name: date, kind: date_range, column: transactions.transacted_at}
panels:
  - title: Good
    chart: number
    y: n
    sql: select count(*) as n from transactions where transacted_at::date between $date_from and $date_to
  - title: Bad table
    chart: bar
    x: a
    y: b
    sql: select a, b from no_such_table
  - title: Wrong column
    chart: line
    x: day
    y: nope
    sql: select 1 as day, 2 as revenue
  - title: Also good
    chart: table
    sql: select branch_name from branches order by 1
""",
        encoding="utf-8",
    )
    return Project.load(root)


def test_a_failing_panel_shows_its_error_and_the_rest_renders(broken: Project) -> None:
    CACHE.clear()
    with TestClient(create_app(broken)) as client:
        page = client.get("/dashboards/broken")
        assert page.status_code == 200
        found = sections(page.text)
        assert len(found) == 4
        assert '<span class="value">' in found[0]
        assert 'class="panel-body error' in found[1] and "no_such_table" in found[1]
        assert 'class="panel-body error' in found[2] and "&#39;nope&#39;" in found[2]
        assert "<table>" in found[3]
        fragment = client.get("/dashboards/broken/panels/1")
        assert fragment.status_code == 200 and "no_such_table" in fragment.text
        # The other dashboards are untouched.
        assert client.get("/dashboards/sales").status_code == 200
    problems = validate_dashboards(broken)
    assert len(problems) == 2, problems
    assert "broken.yaml: panels[1] ('Bad table')" in problems[0]
    assert "no_such_table" in problems[0]
    assert "panels[2] ('Wrong column'): column 'nope'" in problems[1]


def test_invalid_dashboard_file(broken: Project) -> None:
    path = broken.root / "dashboards" / "typo.yaml"
    path.write_text(
        "title: T\npanels:\n  - title: P\n    sql: select $branch as b\n", encoding="utf-8"
    )
    with pytest.raises(
        ConfigError, match=r"typo.yaml: panels\[0\] \('P'\): unknown parameter \$branch"
    ):
        load_dashboards(broken)
    with TestClient(create_app(broken)) as client:
        listing = client.get("/dashboards")
        assert listing.status_code == 200
        assert "unknown parameter $branch" in html.unescape(listing.text)
        assert 'href="/dashboards/sales"' in listing.text  # the others are still listed
        page = client.get("/dashboards/typo")
        assert page.status_code == 500 and "unknown parameter" in page.text


def test_shipped_dashboards_validate(cafe: Project) -> None:
    assert validate_dashboards(cafe) == []


# ------------------------------------------------------------------ caching


def test_results_cached_until_the_warehouse_changes(tmp_path: Path) -> None:
    root = new_project(tmp_path / "c")
    generate(root / "inbox", branches=2, days=1, seed=3, per_day=30)
    assert run_project(root).ok
    project = Project.load(root)
    revenue = panel_index(project, "sales", "Revenue")
    warehouse_panels = sum(
        1 for p in load_dashboards(project)["sales"].panels if p.from_ == "warehouse"
    )
    CACHE.clear()
    with TestClient(create_app(project)) as client:
        first = sections(client.get("/dashboards/sales").text)
        assert CACHE.executions == warehouse_panels
        again = sections(client.get("/dashboards/sales").text)
        assert CACHE.executions == warehouse_panels  # nothing ran: all from the cache
        assert number_of(again[revenue]) == number_of(first[revenue])
        assert 'data-cached="true"' in again[revenue]
        # Other parameters are other results.
        client.get("/dashboards/sales", params={"branch": "Leeds"})
        assert CACHE.executions == 2 * warehouse_panels
        # A run with nothing new leaves the warehouse alone: still cached.
        assert run_project(root).ok
        client.get("/dashboards/sales")
        assert CACHE.executions == 2 * warehouse_panels
        # A run that loads new data invalidates every result.
        generate(root / "inbox", branches=3, days=2, seed=3, per_day=30)
        assert run_project(root).ok
        fresh = sections(client.get("/dashboards/sales").text)
        assert CACHE.executions == 3 * warehouse_panels
        (total,) = warehouse_rows(root, "select sum(total) from transactions")[0]
        assert number_of(fresh[revenue]) == f"£{total:,.2f}"
        assert number_of(fresh[revenue]) != number_of(first[revenue])


# ------------------------------------------------------------------ assets


def test_vendored_assets_exist_and_pages_reference_only_local_urls(client: TestClient) -> None:
    vendor = Path(STATIC_DIR) / "vendor"
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "htmx.min.js"):
        assert (vendor / name).stat().st_size > 10_000, name
        assert client.get(f"/static/vendor/{name}").status_code == 200
    for name in ("vega", "vega-lite", "vega-embed", "htmx"):
        assert (
            "Redistribution" in (vendor / f"{name}.LICENSE").read_text()
            or "BSD" in (vendor / f"{name}.LICENSE").read_text()
        )
    assert "vega-lite" in (vendor / "README.md").read_text()
    assert client.get("/static/dashboard.js").status_code == 200
    total = sum(f.stat().st_size for f in vendor.glob("*.js"))
    assert total < 1_500_000
    remote = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
    for template in ("base.html", "dashboard.html", "dashboards.html", "panel.html"):
        text = (HERE / "templates" / template).read_text()
        assert not remote.search(text), template
    page = client.get("/dashboards/sales").text
    assert not remote.search(page)
    for url in re.findall(r'<script src="([^"]+)"', page):
        assert url.startswith("/static/"), url
        assert client.get(url).status_code == 200, url


# ------------------------------------------------------------------ PostgreSQL warehouses


def use_postgres_warehouse(root: Path, url: str, schema: str = "analytics") -> None:
    """Point a project's warehouse at PostgreSQL (the URL in .env, as `init` does)."""
    path = root / "headwater.yaml"
    text = path.read_text()
    duckdb_section = "warehouse:\n  type: duckdb\n  path: .headwater/warehouse.duckdb"
    assert duckdb_section in text
    path.write_text(
        text.replace(
            duckdb_section,
            f"warehouse:\n  type: postgres\n  url: ${{WAREHOUSE_URL}}\n  schema_name: {schema}",
        )
    )
    with (root / ".env").open("a") as env:
        env.write(f"WAREHOUSE_URL={url}\n")


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_cafe_on_a_postgres_warehouse(tmp_path: Path, pg_database: str) -> None:
    root = new_project(tmp_path / "pgw")
    use_postgres_warehouse(root, pg_database)
    generate(root / "inbox", branches=2, days=2, seed=11, per_day=40)
    assert run_project(root).ok
    project = Project.load(root)
    assert not project.warehouse_path.exists()  # nothing read from a DuckDB file
    revenue = panel_index(project, "sales", "Revenue")
    board = load_dashboards(project)["sales"]
    warehouse_panels = sum(1 for p in board.panels if p.from_ == "warehouse")
    CACHE.clear()
    with TestClient(create_app(project)) as client:
        page = client.get("/dashboards/sales")
        assert page.status_code == 200
        assert "panel-body error" not in page.text
        found = sections(page.text)
        [(total,)] = pg_rows(pg_database, "select sum(total) from analytics.transactions")
        assert number_of(found[revenue]) == f"£{total:,.2f}"
        [(branch,)] = pg_rows(pg_database, "select min(branch_name) from analytics.branches")
        [(one,)] = pg_rows(
            pg_database,
            "select sum(total) from analytics.transactions join analytics.branches "
            f"using (branch_id) where branch_name = '{branch}'",
        )
        filtered = sections(client.get("/dashboards/sales", params={"branch": branch}).text)
        assert number_of(filtered[revenue]) == f"£{one:,.2f}"
        assert f'<option value="{branch}"' in page.text
        assert CACHE.executions == 2 * warehouse_panels
        client.get("/dashboards/sales")
        assert CACHE.executions == 2 * warehouse_panels  # cached: _headwater_loads unchanged
        generate(root / "inbox", branches=3, days=2, seed=11, per_day=40)
        assert run_project(root).ok
        fresh = sections(client.get("/dashboards/sales").text)
        assert CACHE.executions == 3 * warehouse_panels
        [(total,)] = pg_rows(pg_database, "select sum(total) from analytics.transactions")
        assert number_of(fresh[revenue]) == f"£{total:,.2f}"
        operations = client.get("/dashboards/operations")
        assert operations.status_code == 200 and "panel-body error" not in operations.text
    assert validate_dashboards(project) == []
    # The warehouse is attached read-only.
    from headwater.serve.query import QueryError, connect_warehouse

    with connect_warehouse(project) as conn:
        with pytest.raises(Exception, match=r"(?i)read.only"):
            conn.execute("delete from transactions").fetchall()
        assert conn.execute("select count(*) from branches").fetchall() == [(3,)]
    # A wrong password is reported without the password.
    with pytest.raises(QueryError) as failed:
        from headwater.serve.query import connect_postgres

        connect_postgres("postgresql://postgres:s3cr3t-pw@127.0.0.1:1/nothing")
    assert "s3cr3t-pw" not in str(failed.value) and "***" in str(failed.value)


def test_totesys_dashboards_render_and_filter_by_currency(tmp_path: Path, pg_database: str) -> None:
    from headwater.runs.pipeline import run
    from headwater.templates import init_project
    from headwater.templates.totesys.source_db import create_schema, load_fixture_folder
    from tests.conftest import SECRET, shared_data

    create_schema(pg_database)
    load_fixture_folder(
        pg_database, shared_data() / "totesys" / "sample_2024-11-15_orders_before_2023-03-01"
    )
    root = tmp_path / "t"
    init_project(root, "totesys")
    (root / ".env").write_text(f"TOTESYS_DB_URL={pg_database}\nHEADWATER_PII_SECRET={SECRET}\n")
    project = Project.load(root)
    assert run(project).ok
    boards = load_dashboards(project)
    assert set(boards) == {"sales", "purchases", "payments"}
    assert validate_dashboards(project) == []
    CACHE.clear()
    with TestClient(create_app(project)) as client:
        for name, board in boards.items():
            page = client.get(f"/dashboards/{name}")
            assert page.status_code == 200
            assert "panel-body error" not in page.text, name
            found = sections(page.text)
            assert len(found) == len(board.panels)
            for i, panel in enumerate(board.panels):
                if panel.chart not in ("number", "table"):
                    assert spec_of(found[i])["data"]["values"], (name, panel.title)
        payments = sections(client.get("/dashboards/payments").text)
        donut = spec_of(payments[0])
        assert donut["mark"]["type"] == "arc" and donut["mark"]["innerRadius"] > 0
        assert {v["status"] for v in donut["data"]["values"]} == {"paid", "unpaid"}
        # A currency: the sales value of that currency only.
        for code in ("EUR", "GBP", "USD"):
            [(expected,)] = warehouse_rows(
                root,
                "with latest as (select * from fact_sales_order qualify row_number() over "
                "(partition by sales_order_id order by sales_record_id desc) = 1) "
                "select sum(units_sold * unit_price) from latest join dim_currency "
                f"using (currency_id) where currency_code = '{code}'",
            )
            page = client.get("/dashboards/sales", params={"currency": code})
            assert number_of(sections(page.text)[0]) == f"{expected:,.2f}", code


def test_before_the_first_run_panels_say_so(tmp_path: Path) -> None:
    project = Project.load(new_project(tmp_path / "empty"))
    with TestClient(create_app(project)) as client:
        assert client.get("/dashboards").status_code == 200
        for name in ("sales", "operations"):
            page = client.get(f"/dashboards/{name}")
            assert page.status_code == 200
            found = sections(page.text)
            assert found and all('class="panel-body error' in body for body in found.values())
            assert "run `headwater run` first" in page.text or "no run yet" in page.text
    assert validate_dashboards(project) == []  # nothing to compile against yet
