"""Dashboards as code: `dashboards/*.yaml`, each a title and panels of SQL plus a chart.

A panel reads the warehouse, or with `from: state` the run records (`hw_runs`,
`hw_files`). `headwater serve` (to come) draws them; `panel_rows` runs one.
"""

from __future__ import annotations

from typing import Literal

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from headwater.config import load_yaml, validation_error
from headwater.errors import ConfigError
from headwater.observe.state_tables import state_tables
from headwater.project import Project
from headwater.serve.query import QueryError, connect
from headwater.state.db import StateDB


class Panel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    title: str
    chart: Literal["number", "line", "bar", "table"] = "table"
    sql: str
    x: str | None = None
    y: str | list[str] | None = None
    from_: Literal["warehouse", "state"] = Field(default="warehouse", alias="from")


class Dashboard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    description: str | None = None
    panels: list[Panel]


def load_dashboards(project: Project) -> dict[str, Dashboard]:
    """Every dashboard of the project, by file stem; a bad file is a ConfigError."""
    out: dict[str, Dashboard] = {}
    folder = project.dashboards_dir
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        tree = load_yaml(path)
        try:
            out[path.stem] = Dashboard.model_validate(tree)
        except ValidationError as exc:
            raise validation_error(path, exc, tree) from None
    return out


def panel_rows(project: Project, panel: Panel) -> pa.Table:
    """Run one panel's query and return its rows."""
    if panel.from_ == "warehouse":
        with connect(project, lake=False) as conn:
            try:
                return conn.sql(panel.sql).to_arrow_table()
            except duckdb.Error as exc:
                raise QueryError(f"panel {panel.title!r}: {exc}") from None
    if not StateDB.exists(project.state_url):
        raise ConfigError("no run yet: the state database does not exist")
    db = StateDB.open(project.state_url, create=False)
    try:
        tables = state_tables(db)
    finally:
        db.dispose()
    conn = duckdb.connect()
    try:
        for name, table in tables.items():
            conn.register(name, table)
        return conn.sql(panel.sql).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"panel {panel.title!r}: {exc}") from None
    finally:
        conn.close()
