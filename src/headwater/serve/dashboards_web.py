"""Dashboard pages of `headwater serve`.

- `GET /dashboards`: every dashboard of the project (a broken file is listed with its error).
- `GET /dashboards/{name}`: the filter form and every panel, rendered on the server. Changing
  a filter re-requests the page with htmx and swaps `#panels` (the URL follows, so a
  filtered view can be bookmarked); without JavaScript the form's submit button does the
  same.
- `GET /dashboards/{name}/panels/{index}`: one panel, as a fragment, with the same query
  string.

A chart panel is a `<div class="chart" data-panel="i">` beside a `<script
type="application/json" class="vl-spec">` holding its Vega-Lite spec (rows inline);
static/dashboard.js draws it with vega-embed (SVG, no actions) and adds the class `drawn`.
Number and table panels are plain HTML (already `drawn`). A panel whose SQL fails shows
the error in its place (class `error`); the page is still 200.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from headwater.errors import ConfigError, HeadwaterError
from headwater.project import Project
from headwater.serve.charts import format_value, missing_columns, number_format, vega_lite
from headwater.serve.dashboards import (
    Dashboard,
    FilterView,
    Panel,
    Result,
    Session,
    dashboard_file,
    load_dashboard,
    parameter_values,
    resolve_filters,
    run_panel,
)
from headwater.serve.web import project_of, render

router = APIRouter(include_in_schema=False)

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


@dataclass
class PanelView:
    """What panel.html needs to draw one panel."""

    index: int
    panel: Panel
    error: str | None = None
    spec: Markup | None = None  # Vega-Lite JSON, safe inside <script type="application/json">
    value: str | None = None  # a number panel's text
    columns: list[str] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False
    cached: bool = False
    url: str = ""
    notes: list[str] = field(default_factory=list)  # filter values that could not be used
    empty: bool = False  # a chart with no rows to draw

    @property
    def kind(self) -> str:
        return self.panel.chart

    @property
    def is_chart(self) -> bool:
        return self.spec is not None


def spec_json(spec: dict[str, Any]) -> Markup:
    """JSON that cannot end its <script> element early (`</script>`, `<!--`)."""
    text = json.dumps(spec, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(text.translate(JSON_ESCAPES))  # noqa: S704  (escaped just above)


def panel_view(index: int, panel: Panel, result: Result, url: str = "") -> PanelView:
    view = PanelView(index, panel, truncated=result.truncated, cached=result.cached, url=url)
    if result.error is not None or result.table is None:
        view.error = result.error or "no result"
        return view
    table = result.table
    try:
        if panel.chart == "number":
            missing = missing_columns(panel, table.column_names)
            if missing:
                raise ValueError(
                    f"column {missing[0]!r} is not in the result of the panel's SQL "
                    f"(columns: {', '.join(table.column_names)})"
                )
            column = panel.ys[0] if panel.ys else table.column_names[0]
            raw = table.column(column)[0].as_py() if table.num_rows else None
            spec = number_format(panel, column) or panel.format
            view.value = "–" if raw is None else format_value(raw, spec, panel.currency)
        elif panel.chart == "table":
            view.columns = list(table.column_names)
            formats = [number_format(panel, c) for c in view.columns]
            view.numeric = [_is_number(table.schema.field(c).type) for c in view.columns]
            view.rows = [
                [format_value(v, f, panel.currency) for v, f in zip(row, formats, strict=True)]
                for row in zip(*(table.column(c).to_pylist() for c in view.columns), strict=True)
            ]
        elif table.num_rows:
            view.spec = spec_json(vega_lite(panel, table))
        else:
            view.empty = True
    except ValueError as exc:
        view.error = str(exc)
    return view


def group_numbers(panels: list[PanelView]) -> list[list[PanelView]]:
    """Consecutive number panels share a row (a strip of figures); every other panel is
    alone in its group."""
    groups: list[list[PanelView]] = []
    for view in panels:
        if view.kind == "number" and groups and groups[-1][0].kind == "number":
            groups[-1].append(view)
        else:
            groups.append([view])
    return groups


def _is_number(dtype: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
    )


def _load(project: Project, name: str) -> Dashboard | None:
    """The dashboard `name`, None if there is no such file; ConfigError if it is invalid."""
    if not NAME.match(name):
        return None
    path = dashboard_file(project, name)
    if not path.is_file():
        return None
    return load_dashboard(path)


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _panel_url(name: str, index: int, query: dict[str, str]) -> str:
    qs = urlencode(query)
    return f"/dashboards/{name}/panels/{index}" + (f"?{qs}" if qs else "")


def _filter_query(views: list[FilterView]) -> dict[str, str]:
    """The current filter values as a query string (what a panel fragment is asked with)."""
    return {p: view.text(p) for view in views for p in view.filter.parameters}


@router.get("/dashboards", response_class=HTMLResponse)
def dashboards_page(request: Request) -> Any:
    project = project_of(request)
    folder = project.dashboards_dir
    entries: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            board: Dashboard | None = load_dashboard(path)
            error = None
        except HeadwaterError as exc:
            board, error = None, str(exc)
        entries.append({"name": path.stem, "dashboard": board, "error": error})
    return render(request, "dashboards.html", {"entries": entries, "folder": folder})


@router.get("/dashboards/{name}", response_class=HTMLResponse)
def dashboard_page(request: Request, name: str) -> Any:
    project = project_of(request)
    try:
        board = _load(project, name)
    except ConfigError as exc:
        return render(
            request, "dashboard.html", {"name": name, "board": None, "error": str(exc)}, 500
        )
    if board is None:
        error = f"no dashboard {name!r}: expected {project.dashboards_dir}/{name}.yaml"
        return render(request, "dashboard.html", {"name": name, "board": None, "error": error}, 404)
    query = _query(request)
    with Session(project) as session:
        filters = resolve_filters(session, board.filters, query)
        params = parameter_values(filters)
        shown = _filter_query(filters)
        panels = [
            panel_view(
                i,
                panel,
                run_panel(session, (name, i), panel, params),
                _panel_url(name, i, shown),
            )
            for i, panel in enumerate(board.panels)
        ]
    context = {
        "name": name,
        "board": board,
        "filters": filters,
        "groups": group_numbers(panels),
        "error": None,
    }
    return render(request, "dashboard.html", context)


@router.get("/dashboards/{name}/panels/{index}", response_class=HTMLResponse)
def panel_fragment(request: Request, name: str, index: int) -> Any:
    project = project_of(request)
    try:
        board = _load(project, name)
    except ConfigError as exc:
        return HTMLResponse(f'<p class="error">{escape(str(exc))}</p>', status_code=500)
    if board is None or not 0 <= index < len(board.panels):
        error = f"no panel {index} in dashboard {name!r}"
        return HTMLResponse(f'<p class="error">{escape(error)}</p>', status_code=404)
    panel = board.panels[index]
    query = _query(request)
    with Session(project) as session:
        filters = resolve_filters(session, board.filters, query, needed=panel.parameters)
        result = run_panel(session, (name, index), panel, parameter_values(filters))
    view = panel_view(index, panel, result, _panel_url(name, index, _filter_query(filters)))
    view.notes = [v.error for v in filters if v.error]
    return render(request, "panel.html", {"p": view, "name": name})
