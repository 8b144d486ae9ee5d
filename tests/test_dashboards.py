"""The cafe template's dashboards: every panel runs, and the numbers are right."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.project import Project
from headwater.serve.dashboards import load_dashboards, panel_rows
from headwater.templates.cafe.generator import generate
from tests.conftest import CANONICAL, run_project


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Three branches on day one; one of them misses day two."""
    from tests.conftest import new_project

    root = new_project(tmp_path_factory.mktemp("dash") / "p")
    generate(root / "inbox", branches=3, days=2, seed=5, per_day=80)
    missing = sorted((root / "inbox").glob("*_26-08-2021_*.csv"))[0]
    missing.unlink()
    assert run_project(root).ok
    return Project.load(root)


def test_every_panel_runs(two_days: Project) -> None:
    dashboards = load_dashboards(two_days)
    assert set(dashboards) == {"sales", "operations"}
    for dashboard in dashboards.values():
        for panel in dashboard.panels:
            table = panel_rows(two_days, panel)
            assert table.num_columns >= 1, panel.title
            if panel.x:
                assert panel.x in table.column_names, panel.title
            ys = [panel.y] if isinstance(panel.y, str) else panel.y or []
            assert set(ys) <= set(table.column_names), panel.title


def _panel(project: Project, dashboard: str, title: str) -> list[dict[str, Any]]:
    panel = next(p for p in load_dashboards(project)[dashboard].panels if p.title == title)
    rows: list[dict[str, Any]] = panel_rows(project, panel).to_pylist()
    return rows


def test_branch_that_did_not_report(two_days: Project) -> None:
    rows = _panel(two_days, "operations", "Branches that did not report on the latest day")
    assert len(rows) == 1
    assert str(rows[0]["last_day"]) == "2021-08-25"


def test_returning_customers_on_day_two(two_days: Project) -> None:
    rows = _panel(two_days, "sales", "New vs returning customers per day")
    assert [str(r["day"]) for r in rows] == ["2021-08-25", "2021-08-26"]
    assert rows[0]["returning_customers"] == 0
    assert rows[1]["returning_customers"] > 0  # the generator's regular customers come back


def test_runs_panel(two_days: Project) -> None:
    rows = _panel(two_days, "operations", "Rows loaded and quarantined per run")
    assert len(rows) == 1 and rows[0]["rows_loaded"] > 0 and rows[0]["rows_quarantined"] == 0


def test_sales_panels_on_the_canonical_file(
    make_project: Callable[..., Path], cafe_data: Path
) -> None:
    root = make_project([cafe_data / CANONICAL])
    assert run_project(root).ok
    project = Project.load(root)
    payments = {r["payment_method"]: r["revenue"] for r in _panel(project, "sales", "Card vs cash")}
    assert payments == {"CARD": Decimal("1413.30"), "CASH": Decimal("675.35")}
    top = _panel(project, "sales", "Top products by units")[0]
    assert top == {"product": "Large Latte", "units": 78}
    by_revenue = _panel(project, "sales", "Top products by revenue")[0]
    assert by_revenue == {
        "product": "Large Flavoured latte - Hazelnut",
        "revenue": Decimal("205.20"),
    }
    hours = {
        r["hour"]: r["transactions"]
        for r in _panel(project, "sales", "Transactions by hour of day")
    }
    assert hours == {9: 29, 10: 61, 11: 23, 12: 13, 13: 29, 14: 47, 15: 48, 16: 18}


# ------------------------------------------------------------------ the YAML


def _write(tmp_path: Path, text: str) -> Project:
    from tests.conftest import new_project

    root = new_project(tmp_path / "p")
    for old in (root / "dashboards").glob("*.yaml"):
        old.unlink()
    (root / "dashboards" / "d.yaml").write_text(text, encoding="utf-8")
    return Project.load(root)


GOOD_FILTERS = """filters:
  - {name: date, kind: date_range, column: transactions.transacted_at}
  - {name: branch, kind: select, column: branches.branch_name}
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            GOOD_FILTERS + "panels:\n  - {title: P, sql: 'select $brnch as b'}\n",
            r"d.yaml: panels\[0\] \('P'\): unknown parameter \$brnch \(the filters of this "
            r"dashboard give: \$date_from, \$date_to, \$branch\)",
        ),
        (
            "panels:\n  - {title: P, sql: 'select $x'}\n",
            r"unknown parameter \$x \(the filters of this dashboard give: none",
        ),
        ("panels:\n  - {title: P, sql: 'select ?'}\n", r"panels\[0\].sql: use named parameters"),
        ("panels:\n  - {title: P, sql: 'select $1'}\n", r"not \$1"),
        ("panels:\n  - {title: P, sql: 'drop table branches'}\n", r"read-only"),
        ("panels:\n  - {title: P, sql: 'select 1; select 2'}\n", r"one SQL statement"),
        ("panels:\n  - {title: P, chart: line, x: a, sql: 'select 1'}\n", r"needs `x` and `y`"),
        ("panels:\n  - {title: P, chart: pie, x: a, y: [b, c], sql: 'select 1'}\n", r"one `y`"),
        ("panels:\n  - {title: P, chart: stacked_bar, x: a, y: b, sql: 'select 1'}\n", r"series"),
        (
            "panels:\n  - {title: P, chart: donut, x: a, y: b, series: c, sql: 'select 1'}\n",
            r"series",
        ),
        (
            "panels:\n  - {title: P, format: 'dollars', sql: 'select 1'}\n",
            r"panels\[0\].format: .*d3-format",
        ),
        ("panels:\n  - {title: P, chart: gauge, sql: 'select 1'}\n", r"panels\[0\].chart"),
        (
            "panels:\n  - {title: P, sql: 'select 1', colour: red}\n",
            r"panels\[0\].colour: unknown key",
        ),
        (
            "filters:\n  - {name: b, kind: select}\npanels: []\n",
            r"filters\[0\] \(b\): a select filter needs exactly one of `column` and `options_sql`",
        ),
        (
            "filters:\n  - {name: b, kind: select, options_sql: 'select $b'}\npanels: []\n",
            r"filters\[0\].options_sql: takes no parameters",
        ),
        (
            "filters:\n  - {name: d, kind: date_range, default: {from: max-7d}}\npanels: []\n",
            r"filters\[0\] \(d\): default .max-7d. needs `column`",
        ),
        (
            "filters:\n  - {name: d, kind: date_range, column: t.c, default: {from: soon}}\npanels: []\n",
            r"filters\[0\].default.from: expected a date",
        ),
        (
            "filters:\n  - {name: d, kind: date_range, column: t.c}\n"
            "  - {name: d_from, kind: select, column: t.c}\npanels: []\n",
            r"\$d_from is given by two filters",
        ),
        ("filters:\n  - {name: d, kind: slider}\npanels: []\n", r"filters\[0\]"),
    ],
)
def test_invalid_dashboards_name_file_key_and_problem(
    tmp_path: Path, body: str, message: str
) -> None:
    from headwater.errors import ConfigError

    project = _write(tmp_path, "title: D\n" + body)
    with pytest.raises(ConfigError, match=message):
        load_dashboards(project)


def test_parameters_are_read_from_the_sql_not_strings_or_comments() -> None:
    from headwater.serve.dashboards import sql_parameters

    sql = (
        "select '$not_me', $a, \"$col\" -- $comment\n"
        "from t where x = $b and y::date between $b and $c_1 /* $nor_me */"
    )
    assert sql_parameters(sql) == {"a", "b", "c_1"}
    assert sql_parameters("select $$dollar $quoted$$") == frozenset()


def test_a_panel_gets_only_its_parameters_and_defaults(two_days: Project) -> None:
    sales = load_dashboards(two_days)["sales"]
    hours = next(p for p in sales.panels if p.title == "Transactions by hour of day")
    assert hours.parameters == {"date_from", "date_to", "branch"}
    everything = panel_rows(two_days, hours).to_pylist()
    day_one = panel_rows(
        two_days, hours, {"date_to": __import__("datetime").date(2021, 8, 25)}
    ).to_pylist()
    assert sum(r["transactions"] for r in day_one) < sum(r["transactions"] for r in everything)
    nobody = panel_rows(two_days, hours, {"branch": "'; drop table branches; --"})
    assert nobody.num_rows == 0


def test_date_range_defaults(tmp_path: Path) -> None:
    import datetime as dt

    from headwater.serve.dashboards import DateRangeFilter, _resolve_bound

    low, high = dt.date(2021, 8, 25), dt.date(2021, 8, 31)
    assert _resolve_bound("max-6d", low, high) == low
    assert _resolve_bound("min + 1w", low, high) == dt.date(2021, 9, 1)
    assert _resolve_bound("today", low, high) == dt.date.today()
    assert _resolve_bound(dt.date(2020, 1, 1), low, high) == dt.date(2020, 1, 1)
    f = DateRangeFilter.model_validate({"name": "d", "kind": "date_range", "column": "t.c"})
    assert f.bounds == ("min", "max")
    g = DateRangeFilter.model_validate(
        {"name": "d", "kind": "date_range", "default": {"from": "2021-08-25", "to": "today"}}
    )
    assert g.bounds == (dt.date(2021, 8, 25), "today")


# ------------------------------------------------------------------ formats and charts


@pytest.mark.parametrize(
    ("value", "spec", "currency", "text"),
    [
        (1234.5, ",.2f", None, "1,234.50"),
        (Decimal("1413.30"), "$,.2f", "£", "£1,413.30"),
        (Decimal("0.125"), ".2f", None, "0.13"),
        (0.1234, ".1%", None, "12.3%"),
        (1234.6, ",d", None, "1,235"),
        (1234, ".3s", None, "1.23k"),
        (999.9, ".3s", None, "1.00k"),
        (1500, "~s", None, "1.5k"),
        (-1234.5, "($,.2f", None, "($1,234.50)"),
        (3, "+d", None, "+3"),
        (42, "05d", None, "00042"),
        (123456, ".2e", None, "1.23e+5"),
        (1.5, None, None, "1.5"),
        (None, ",.2f", None, ""),
        ("text", ",.2f", None, "text"),
    ],
)
def test_format_value_follows_d3_format(
    value: object, spec: str | None, currency: str | None, text: str
) -> None:
    from headwater.serve.charts import format_value

    assert format_value(value, spec, currency) == text


def test_spec_json_cannot_close_its_script() -> None:
    from headwater.serve.dashboards_web import spec_json

    text = str(spec_json({"data": {"values": [{"name": "</script><script>alert(1)</script>"}]}}))
    assert "</script>" not in text and "<" not in text
    import json

    assert json.loads(text)["data"]["values"][0]["name"].startswith("</script>")


def test_chart_kinds_build_specs() -> None:
    import datetime as dt

    import pyarrow as pa

    from headwater.serve.charts import vega_lite
    from headwater.serve.dashboards import Panel

    table = pa.table(
        {
            "day": [dt.date(2021, 8, 25), dt.date(2021, 8, 26)],
            "kind": ["a.b", "c"],
            "amount": [Decimal("1.50"), Decimal("2.25")],
            "other": [1, 2],
        }
    )

    def spec(**kw: object) -> dict[str, object]:
        panel = Panel.model_validate({"title": "T", "sql": "select 1", **kw})
        return vega_lite(panel, table)

    line = spec(chart="line", x="day", y="amount", format=",.2f")
    assert line["mark"] == {"type": "line", "point": True, "tooltip": True}
    assert line["data"] == {
        "values": [
            {"day": "2021-08-25T00:00:00", "kind": "a.b", "amount": 1.5, "other": 1},
            {"day": "2021-08-26T00:00:00", "kind": "c", "amount": 2.25, "other": 2},
        ]
    }
    assert line["encoding"]["y"]["axis"] == {"format": ",f"}  # type: ignore[index]
    area = spec(chart="area", x="day", y=["amount", "other"])
    assert area["transform"] == [{"fold": ["amount", "other"], "as": ["series", "value"]}]
    assert area["encoding"]["y"]["stack"] == "zero"  # type: ignore[index]
    bar = spec(chart="bar", x="kind", y="amount", series="other")
    assert bar["encoding"]["x"]["field"] == "kind"  # type: ignore[index]
    assert bar["encoding"]["xOffset"]["field"] == "other"  # type: ignore[index]
    escaped = spec(chart="bar", x="kind", y="amount", color="kind", horizontal=True)
    assert escaped["encoding"]["y"]["field"] == "kind"  # type: ignore[index]
    pie = spec(chart="pie", x="kind", y="amount", currency="€")
    assert pie["mark"] == {"type": "arc", "tooltip": True}
    assert pie["config"]["locale"]["number"]["currency"] == ["€", ""]  # type: ignore[index]
    with pytest.raises(ValueError, match="column 'nope' is not in the result"):
        spec(chart="line", x="day", y="nope")
    dotted = pa.table({"a.b": ["x"], "v": [1]})
    panel = Panel.model_validate(
        {"title": "T", "sql": "select 1", "chart": "bar", "x": "a.b", "y": "v"}
    )
    assert vega_lite(panel, dotted)["encoding"]["x"]["field"] == "a\\.b"
