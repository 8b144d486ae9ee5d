"""Dashboards as code: `dashboards/*.yaml`, each a title, filters and panels of SQL plus a chart.

A panel reads the warehouse (DuckDB file, or a PostgreSQL warehouse through DuckDB), or
with `from: state` the run records (`hw_runs`, `hw_files`). Filters (a date range, a
select over any column) reach a panel's SQL as named DuckDB parameters (`$date_from`),
bound, never pasted into the text; each panel gets only the parameters it names.

Results are cached per (dashboard, panel, SQL, parameters) until the warehouse changes:
the DuckDB file's identity, size and modification time (and its WAL's), or for a
PostgreSQL warehouse the `_headwater_loads` table headwater writes in each load's
transaction. `from: state` panels are read fresh each time (they are small).

`headwater serve` draws them (serve/dashboards_web.py); `panel_rows` runs one panel;
`validate_dashboards` is the `headwater check` part: the files, then each panel's SQL
compiled against the warehouse when there is one.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import pyarrow as pa
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.exc import SQLAlchemyError

from headwater.config import NAME_PATTERN, PostgresWarehouseConfig, load_yaml, validation_error
from headwater.errors import ConfigError, HeadwaterError
from headwater.observe.state_tables import state_tables
from headwater.project import Project
from headwater.serve.charts import check_format
from headwater.serve.query import (
    QueryError,
    check_read_only,
    connect_warehouse,
    head,
    warehouse_scrub,
)
from headwater.sql import quote_ident
from headwater.state.db import StateDB

ChartKind = Literal["number", "line", "bar", "stacked_bar", "area", "pie", "donut", "table"]
XY_CHARTS = ("line", "bar", "stacked_bar", "area", "pie", "donut")
COLUMN = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"
# A date bound: an ISO date, or today / min / max (the filter column's first and last
# day), optionally moved by whole days or weeks: `max-6d`, `today - 4w`.
BOUND = re.compile(r"^(?P<anchor>today|min|max)(?:\s*(?P<op>[-+])\s*(?P<n>\d+)\s*(?P<unit>[dw]))?$")
OPTIONS_LIMIT = 1000


# ------------------------------------------------------------------ the YAML


class DateRangeDefault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: dt.date | str | None = Field(default=None, alias="from")
    to: dt.date | str | None = None

    @field_validator("from_", "to")
    @classmethod
    def _bound(cls, value: dt.date | str | None) -> dt.date | str | None:
        if isinstance(value, str):
            text = value.strip()
            if BOUND.match(text) is None:
                try:
                    return dt.date.fromisoformat(text)
                except ValueError:
                    raise ValueError(
                        "expected a date (2021-08-25), today, min or max, optionally "
                        "with a number of days or weeks added or taken (max-6d, today-4w)"
                    ) from None
            return text
        return value


class DateRangeFilter(BaseModel):
    """Two parameters, `$<name>_from` and `$<name>_to` (DATE), from two date inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["date_range"]
    label: str | None = None
    column: str | None = Field(default=None, pattern=COLUMN)
    default: DateRangeDefault = DateRangeDefault()

    def problem(self) -> str | None:
        for bound in (self.default.from_, self.default.to):
            if isinstance(bound, str) and bound.startswith(("min", "max")) and not self.column:
                return f"default {bound!r} needs `column` (table.column)"
        return None

    @property
    def parameters(self) -> tuple[str, ...]:
        return (f"{self.name}_from", f"{self.name}_to")

    @property
    def bounds(self) -> tuple[dt.date | str | None, dt.date | str | None]:
        """The default bounds: as written, else the column's first and last day."""
        low, high = self.default.from_, self.default.to
        if self.column:
            low = "min" if low is None else low
            high = "max" if high is None else high
        return low, high

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


class SelectFilter(BaseModel):
    """One parameter, `$<name>` (text, NULL for all), chosen among the values of a column
    or of `options_sql`'s first column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["select"]
    label: str | None = None
    column: str | None = Field(default=None, pattern=COLUMN)
    options_sql: str | None = None
    default: str | int | float | None = None

    def problem(self) -> str | None:
        if (self.column is None) == (self.options_sql is None):
            return "a select filter needs exactly one of `column` and `options_sql`"
        return None

    @property
    def parameters(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


Filter = Annotated[DateRangeFilter | SelectFilter, Field(discriminator="kind")]


class Panel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    title: str
    chart: ChartKind = "table"
    sql: str
    description: str | None = None
    x: str | None = None
    y: str | list[str] | None = None
    series: str | None = Field(default=None, validation_alias=AliasChoices("series", "color"))
    format: str | None = None
    formats: dict[str, str] = Field(default_factory=dict)
    currency: str | None = Field(default=None, max_length=8)
    x_title: str | None = None
    y_title: str | None = None
    horizontal: bool = False
    wide: bool = False
    limit: int = Field(default=5000, ge=1, le=100_000)
    from_: Literal["warehouse", "state"] = Field(default="warehouse", alias="from")
    _filters: tuple[DateRangeFilter | SelectFilter, ...] = PrivateAttr(default=())

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        return None if value is None else check_format(value)

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: dict[str, str]) -> dict[str, str]:
        for spec in value.values():
            check_format(spec)
        return value

    @field_validator("sql")
    @classmethod
    def _sql(cls, value: str) -> str:
        sql_parameters(value)  # positional parameters are errors
        kind = statement_kind(value)
        if kind not in ("SELECT", "EXPLAIN"):
            raise ValueError(f"a panel runs one read-only query (SELECT), not {kind}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Panel:
        ys = self.ys
        if self.chart in XY_CHARTS and (self.x is None or not ys):
            raise ValueError(f"a {self.chart} chart needs `x` and `y` columns")
        if self.chart in ("pie", "donut", "number") and len(ys) > 1:
            raise ValueError(f"a {self.chart} chart takes one `y` column")
        if self.series and len(ys) > 1:
            raise ValueError("give either several `y` columns or a `series` column, not both")
        if self.series and self.chart not in ("line", "bar", "stacked_bar", "area"):
            raise ValueError(
                f"`series` applies to line, bar, stacked_bar and area, not {self.chart}"
            )
        if self.chart == "stacked_bar" and not self.series and len(ys) < 2:
            raise ValueError("a stacked_bar chart needs a `series` column or several `y` columns")
        return self

    @property
    def ys(self) -> list[str]:
        return [self.y] if isinstance(self.y, str) else list(self.y or [])

    @property
    def parameters(self) -> frozenset[str]:
        """The named parameters the SQL uses (`$name`)."""
        return sql_parameters(self.sql)

    @property
    def filters(self) -> tuple[DateRangeFilter | SelectFilter, ...]:
        """The filters of the dashboard this panel belongs to."""
        return self._filters


class Dashboard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    description: str | None = None
    filters: list[Filter] = Field(default_factory=list)
    panels: list[Panel]

    @model_validator(mode="after")
    def _filters_unique(self) -> Dashboard:
        seen: set[str] = set()
        for f in self.filters:
            for name in f.parameters:
                if name in seen:
                    raise ValueError(f"filters: parameter ${name} is given by two filters")
                seen.add(name)
        for panel in self.panels:
            panel._filters = tuple(self.filters)
        return self

    @property
    def parameters(self) -> list[str]:
        return [p for f in self.filters for p in f.parameters]


@lru_cache(maxsize=1024)
def sql_parameters(sql: str) -> frozenset[str]:
    """The `$name` parameters of a query (not in strings or comments); `?` and `$1` are
    refused: panels name their parameters."""
    names: set[str] = set()
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error as exc:  # pragma: no cover - the tokenizer accepts any text
        raise ValueError(f"cannot read the SQL: {exc}") from None
    for offset, kind in tokens:
        if str(kind).rsplit(".", 1)[-1] != "operator":
            continue
        if sql.startswith("?", offset):
            raise ValueError("use named parameters ($name), not `?`")
        if not sql.startswith("$", offset):
            continue
        match = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)|\$(\d+)", sql[offset:])
        if match is None:
            raise ValueError(f"a parameter is written $name (near {sql[offset : offset + 12]!r})")
        if match.group(2):
            raise ValueError(f"use named parameters ($name), not ${match.group(2)}")
        names.add(match.group(1))
    return frozenset(names)


@lru_cache(maxsize=1024)
def statement_kind(sql: str) -> str:
    """SELECT, EXPLAIN, ... for one statement; ValueError otherwise."""
    conn = duckdb.connect()
    try:
        check_read_only(conn, sql)
        return str(conn.extract_statements(sql)[0].type).rsplit(".", 1)[-1]
    except QueryError as exc:
        raise ValueError(str(exc)) from None
    finally:
        conn.close()


def dashboard_file(project: Project, name: str) -> Path:
    return project.dashboards_dir / f"{name}.yaml"


def load_dashboards(project: Project) -> dict[str, Dashboard]:
    """Every dashboard of the project, by file stem; a bad file is a ConfigError naming the
    file, the key and, for a parameter no filter gives, the panel and the parameter."""
    out: dict[str, Dashboard] = {}
    folder = project.dashboards_dir
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        out[path.stem] = load_dashboard(path)
    return out


def load_dashboard(path: Path) -> Dashboard:
    tree = load_yaml(path)
    try:
        board = Dashboard.model_validate(tree)
    except ValidationError as exc:
        raise validation_error(path, exc, tree) from None
    known = set(board.parameters)
    for i, panel in enumerate(board.panels):
        unknown = sorted(panel.parameters - known)
        if unknown:
            given = ", ".join(f"${p}" for p in board.parameters) or "none (no filters)"
            raise ConfigError(
                f"{path}: panels[{i}] ({panel.title!r}): unknown parameter ${unknown[0]} "
                f"(the filters of this dashboard give: {given})"
            )
    for i, f in enumerate(board.filters):
        problem = f.problem()
        if problem:
            raise ConfigError(f"{path}: filters[{i}] ({f.name}): {problem}")
        if isinstance(f, SelectFilter) and f.options_sql is not None:
            where = f"{path}: filters[{i}].options_sql"
            try:
                used = sql_parameters(f.options_sql)
                statement_kind(f.options_sql)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            if used:
                raise ConfigError(f"{where}: takes no parameters (got ${sorted(used)[0]})")
    return board


# ------------------------------------------------------------------ warehouse version


def warehouse_version(project: Project) -> tuple[object, ...] | None:
    """What changes when the warehouse does; None when it cannot be told (no caching)."""
    config = project.config.warehouse
    if isinstance(config, PostgresWarehouseConfig):
        return _postgres_version(config.url.get_secret_value(), config.schema_name)
    if config.type != "duckdb":
        return None
    path = project.warehouse_path
    parts: list[object] = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st = p.stat()
        except FileNotFoundError:
            parts.append(None)
            continue
        parts.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return None if parts[0] is None else ("duckdb", str(path), *parts)


def _postgres_version(url: str, schema_name: str) -> tuple[object, ...] | None:
    import psycopg

    from headwater.warehouse.postgres import CONNECT_TIMEOUT, LOADS, split_url

    conninfo, public, _ = split_url(url)
    loads = f"{quote_ident(schema_name)}.{quote_ident(LOADS)}"
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
            [(exists,)] = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [loads]).fetchall()
            if not exists:
                return ("postgres", public, schema_name, "empty")
            [row] = conn.execute(
                f"SELECT count(*), max(loaded_at)::text, sum(snapshot_id)::text, "
                f"sum(max_batch)::text, max(run_id) FROM {loads}"
            ).fetchall()
    except psycopg.Error:
        return None
    return ("postgres", public, schema_name, *row)


# ------------------------------------------------------------------ the result cache


@dataclass(frozen=True)
class Result:
    """A panel's rows (at most `limit`), or the error its SQL gave."""

    table: pa.Table | None
    error: str | None = None
    truncated: bool = False  # the query returned more than `limit` rows
    cached: bool = False


class ResultCache:
    """Least-recently-used results, keyed by warehouse version: a new version misses."""

    def __init__(self, max_entries: int = 512) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[object, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.executions = 0  # panel queries run (cached or not)

    def get(self, key: tuple[object, ...]) -> Any | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple[object, ...], value: Any) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = self.executions = 0

    def counted(self) -> None:
        with self._lock:
            self.executions += 1


CACHE = ResultCache()


# ------------------------------------------------------------------ running panels


class Session:
    """One request's view of the warehouse: its version, read once, and one connection
    opened only when something is not in the cache."""

    def __init__(self, project: Project, cache: ResultCache = CACHE) -> None:
        self.project = project
        self.cache = cache
        self.version = warehouse_version(project)
        self._stack = ExitStack()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._failed: duckdb.Error | HeadwaterError | None = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._conn = None

    def conn(self) -> duckdb.DuckDBPyConnection:
        """The warehouse, connected on first use; a failure to connect is raised again
        for every later use (one attempt per request, not one per panel)."""
        if self._failed is not None:
            raise self._failed
        if self._conn is None:
            try:
                self._conn = self._stack.enter_context(connect_warehouse(self.project))
            except (duckdb.Error, HeadwaterError) as exc:
                self._failed = exc
                raise
        return self._conn

    def scrub(self, text: str) -> str:
        return warehouse_scrub(self.project, text)

    def key(self, *parts: object) -> tuple[object, ...] | None:
        """A cache key for this project and warehouse version; None: do not cache."""
        if self.version is None:
            return None
        return (str(self.project.root), self.version, *parts)

    def cached(self, parts: tuple[object, ...], compute: Callable[[], Any]) -> Any:
        """`compute()`, from the cache when the warehouse has not changed since."""
        key = self.key(*parts)
        hit = None if key is None else self.cache.get(key)
        if hit is not None:
            return hit
        value = compute()
        if key is not None:
            self.cache.put(key, value)
        return value


@dataclass
class FilterView:
    """A filter as the form shows it: current values, choices, bounds, problems."""

    filter: DateRangeFilter | SelectFilter
    values: dict[str, Any]  # parameter -> value (date or text or None)
    options: list[str] = field(default_factory=list)
    low: dt.date | None = None  # the column's first and last day (date range)
    high: dt.date | None = None
    error: str | None = None

    @property
    def kind(self) -> str:
        return self.filter.kind

    @property
    def name(self) -> str:
        return self.filter.name

    @property
    def title(self) -> str:
        return self.filter.title

    def text(self, parameter: str) -> str:
        value = self.values.get(parameter)
        if isinstance(value, dt.date):
            return value.isoformat()
        return "" if value is None else str(value)


def _column(spec: str) -> tuple[str, str]:
    table, column = spec.split(".")
    return quote_ident(table), quote_ident(column)


def _date_bounds(session: Session, f: DateRangeFilter) -> tuple[dt.date | None, dt.date | None]:
    if f.column is None:
        return None, None
    table, column = _column(f.column)
    sql = f"SELECT min({column})::DATE, max({column})::DATE FROM {table}"

    def compute() -> tuple[dt.date | None, dt.date | None]:
        [(low, high)] = session.conn().execute(sql).fetchall()
        return low, high

    bounds: tuple[dt.date | None, dt.date | None] = session.cached(("bounds", sql), compute)
    return bounds


def _options(session: Session, f: SelectFilter) -> list[str]:
    if f.options_sql is not None:
        sql = f"SELECT * FROM ({f.options_sql}) LIMIT {OPTIONS_LIMIT}"
    else:
        assert f.column is not None
        table, column = _column(f.column)
        sql = (
            f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL "
            f"ORDER BY 1 LIMIT {OPTIONS_LIMIT}"
        )

    def compute() -> list[str]:
        rows = session.conn().execute(sql).fetchall()
        return ["" if r[0] is None else str(r[0]) for r in rows]

    options: list[str] = session.cached(("options", sql), compute)
    return options


def _resolve_bound(
    bound: dt.date | str | None, low: dt.date | None, high: dt.date | None
) -> dt.date | None:
    if bound is None or isinstance(bound, dt.date):
        return bound
    match = BOUND.match(bound)
    assert match is not None, "validated at load"
    anchor = {"today": dt.date.today(), "min": low, "max": high}[match["anchor"]]
    if anchor is None or not match["n"]:
        return anchor
    days = int(match["n"]) * (7 if match["unit"] == "w" else 1)
    return anchor + dt.timedelta(days=days if match["op"] == "+" else -days)


def resolve_filters(
    session: Session,
    filters: tuple[DateRangeFilter | SelectFilter, ...] | list[DateRangeFilter | SelectFilter],
    query: Mapping[str, str] | None = None,
    needed: frozenset[str] | None = None,
) -> list[FilterView]:
    """Each filter's values: from `query` (the page's query string), else its default.
    A bad date in the query is reported on the filter and the default used. Filters
    whose parameters are not in `needed` (when given) are left at NULL untouched."""
    query = query or {}
    views: list[FilterView] = []
    for f in filters:
        view = FilterView(filter=f, values=dict.fromkeys(f.parameters))
        views.append(view)
        if needed is not None and not needed & set(f.parameters):
            continue
        try:
            if isinstance(f, DateRangeFilter):
                view.low, view.high = _date_bounds(session, f)
                for parameter, bound in zip(f.parameters, f.bounds, strict=True):
                    value = _resolve_bound(bound, view.low, view.high)
                    text = (query.get(parameter) or "").strip()
                    if text:  # an empty input means the default
                        try:
                            value = dt.date.fromisoformat(text)
                        except ValueError:
                            view.error = f"{parameter}: {text!r} is not a date (YYYY-MM-DD)"
                    view.values[parameter] = value
            else:
                chosen = query.get(f.name)
                default = None if f.default is None else str(f.default)
                view.values[f.name] = (default if chosen is None else chosen) or None
                if needed is None:  # the form shows the choices
                    view.options = _options(session, f)
        except (duckdb.Error, HeadwaterError) as exc:
            view.error = session.scrub(_message(exc))
    return views


def parameter_values(views: list[FilterView]) -> dict[str, Any]:
    return {k: v for view in views for k, v in view.values.items()}


def _message(exc: BaseException, one_line: bool = False) -> str:
    """DuckDB's message: in a panel whole (its hint and the line it points at), in
    `headwater check` the first line."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if one_line else text


def _fetch(
    conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], limit: int
) -> tuple[pa.Table, bool]:
    """At most `limit` rows of the query, and whether there were more."""
    cursor = conn.execute(sql, params) if params else conn.execute(sql)
    return head(cursor.to_arrow_reader(min(limit + 1, 10_000)), limit)


def run_panel(
    session: Session,
    key: tuple[object, ...],
    panel: Panel,
    params: Mapping[str, Any],
    use_cache: bool = True,
) -> Result:
    """One panel's rows with these parameter values (only those it names are bound)."""
    bound = {name: params.get(name) for name in sorted(panel.parameters)}

    def compute() -> Result:
        session.cache.counted()
        try:
            if panel.from_ == "state":
                with _state_connection(session.project) as conn:
                    table, more = _fetch(conn, panel.sql, bound, panel.limit)
            else:
                table, more = _fetch(session.conn(), panel.sql, bound, panel.limit)
        except (duckdb.Error, HeadwaterError) as exc:
            return Result(None, error=session.scrub(_message(exc)))
        return Result(table, truncated=more)

    cacheable = use_cache and panel.from_ == "warehouse"
    full = session.key("panel", *key, panel.sql, panel.limit, tuple(bound.items()))
    hit = session.cache.get(full) if cacheable and full is not None else None
    if isinstance(hit, Result):
        return replace(hit, cached=True)
    result = compute()
    if cacheable and full is not None and result.error is None:
        session.cache.put(full, result)
    return result


@contextmanager
def _state_connection(project: Project) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the run records as `hw_runs` and `hw_files`."""
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
        yield conn
    finally:
        conn.close()


def panel_rows(project: Project, panel: Panel, params: Mapping[str, Any] | None = None) -> pa.Table:
    """Run one panel's query and return its rows (at most its `limit`). Parameters not
    given take their filter's default; a failing query raises QueryError."""
    with Session(project) as session:
        given = dict(params or {})
        missing = panel.parameters - set(given)
        if missing:
            views = resolve_filters(session, panel.filters, needed=frozenset(missing))
            problems = [v.error for v in views if v.error]
            if problems:
                raise QueryError(f"panel {panel.title!r}: {problems[0]}")
            given = {**parameter_values(views), **given}
        result = run_panel(session, ("panel_rows",), panel, given, use_cache=False)
    if result.error is not None or result.table is None:
        raise QueryError(f"panel {panel.title!r}: {result.error}")
    return result.table


# ------------------------------------------------------------------ headwater check


def validate_dashboards(project: Project) -> list[str]:
    """`headwater check` for dashboards: load every file (a ConfigError if one is
    invalid), then, when the warehouse exists, compile each panel's SQL against it (bound
    with sample values, not run) and check its x, y and series columns. The state panels
    are compiled against the run records when there are some. Returns the problems."""
    from headwater.serve.charts import missing_columns

    boards = load_dashboards(project)
    problems: list[str] = []
    if not boards:
        return problems
    with ExitStack() as stack:
        warehouse = _try_connect(stack, project)
        state = _try_state(stack, project)
        for name, board in boards.items():
            path = dashboard_file(project, name)
            sample: dict[str, Any] = {}
            for i, f in enumerate(board.filters):
                where = f"{path}: filters[{i}] ({f.name})"
                if isinstance(f, DateRangeFilter):
                    sample |= {p: dt.date(2000, 1, 1) for p in f.parameters}
                    if f.column and warehouse is not None:
                        table, column = _column(f.column)
                        sql = f"SELECT min({column})::DATE FROM {table}"
                        problems += _compile(warehouse, sql, {}, where)
                else:
                    sample[f.name] = ""
                    if warehouse is not None:
                        table, column = _column(f.column) if f.column else ("", "")
                        sql = f.options_sql or f"SELECT {column} FROM {table}"
                        problems += _compile(warehouse, sql, {}, where)
            for i, panel in enumerate(board.panels):
                conn = warehouse if panel.from_ == "warehouse" else state
                if conn is None:
                    continue
                where = f"{path}: panels[{i}] ({panel.title!r})"
                params = {p: sample[p] for p in panel.parameters}
                columns: list[str] = []
                found = _compile(conn, panel.sql, params, where, columns)
                problems += found
                if not found:
                    problems += [
                        f"{where}: column {c!r} is not in the result of its SQL "
                        f"(columns: {', '.join(columns)})"
                        for c in missing_columns(panel, columns)
                    ]
    return [warehouse_scrub(project, p) for p in problems]


def _try_connect(stack: ExitStack, project: Project) -> duckdb.DuckDBPyConnection | None:
    """The warehouse when it exists and can be reached, else None (nothing to compile)."""
    config = project.config.warehouse
    if config.type == "duckdb" and not project.warehouse_path.exists():
        return None
    if config.type not in ("duckdb", "postgres"):
        return None
    try:
        return stack.enter_context(connect_warehouse(project))
    except (duckdb.Error, HeadwaterError):
        return None


def _try_state(stack: ExitStack, project: Project) -> duckdb.DuckDBPyConnection | None:
    """The run records when there are some and they can be read, else None."""
    if not StateDB.exists(project.state_url):
        return None
    try:
        return stack.enter_context(_state_connection(project))
    except (duckdb.Error, HeadwaterError, SQLAlchemyError):
        return None


def _compile(
    conn: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any],
    where: str,
    columns: list[str] | None = None,
) -> list[str]:
    """Bind the query (tables, columns, types) without running it: DESCRIBE."""
    if statement_kind(sql) != "SELECT":
        return []
    try:
        rows = conn.execute(f"DESCRIBE {sql}", params or None).fetchall()
    except duckdb.Error as exc:
        return [f"{where}: {_message(exc, one_line=True)}"]
    if columns is not None:
        columns.extend(str(r[0]) for r in rows)
    return []
