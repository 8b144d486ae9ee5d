"""The cafe template's dashboards: every panel runs, and the numbers are right."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

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


def _panel(project: Project, dashboard: str, title: str) -> list[dict[str, object]]:
    panel = next(p for p in load_dashboards(project)[dashboard].panels if p.title == title)
    return panel_rows(project, panel).to_pylist()


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
