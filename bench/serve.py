"""Benchmark of `headwater serve`: a 6-panel dashboard page over 10M fact rows.

Builds a cafe project in ``bench/out/serve/`` whose DuckDB warehouse holds N rows in
the fact table ``transactions`` (default 10,000,000), made directly with DuckDB SQL:
50 branches (5 of them opened during the period) over 2 years, daily volume shaped by
weekday, season and growth, hours of day as the cafe generator draws them, baskets of
1 to 6 items from the template's menu (``transaction_items``, totals are the sum of
the basket), per-branch card shares and regular customers, and ``_headwater_loads`` as
a load writes it. The file is reused while ``generated.json`` matches.

It writes ``dashboards/bench.yaml`` (6 panels, the sales dashboard's date-range and
branch filters) and measures, in a child process (a fresh interpreter: app start,
then requests) with FastAPI's ``TestClient`` (in-process ASGI, no socket),
``GET /dashboards/bench``:

- cold: the first request after the app starts (empty cache);
- cached: ``--repeat`` requests after it (median, p95);
- cold after a load: a load-like write (one row appended to ``transactions`` and
  ``_headwater_loads`` updated, in one transaction) changes the warehouse file, so the
  cache misses; ``--cold-repeat`` times;
- the same, cold and cached, with the branch filter (``?branch=<--branch>``);
- cold after a load with the warehouse file also dropped from the OS page cache
  (``posix_fadvise(DONTNEED)``), so DuckDB reads it from disk.

It also runs the page's queries on DuckDB alone (no headwater), for reference. With
``--profile``, another child profiles the first, a cold and the cached requests.

Server time is taken by an ASGI wrapper around the app (from the request reaching the
app to the last body byte); the client round trip and the process CPU time are given
beside it. Per-panel query times come from wrapping the functions the page calls. The
appended rows are deleted at the end. Results: a markdown table and
``bench/out/serve.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from benchkit import environment as base_environment
from benchkit import log, verdict

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
ROOT = OUT / "serve"  # the project
RESULTS = OUT / "serve.json"
CHILD_RESULT = ROOT / "child.json"
MARKER = ROOT / "generated.json"
WAREHOUSE = ROOT / ".headwater" / "warehouse.duckdb"
DASHBOARD = "bench"
SECRET = "bench"

BRANCHES = 50
LATE_BRANCHES = 5  # the last 5 branches open during the period
DAYS = 730
START = dt.date(2022, 1, 1)
SEED = 1
CUSTOMERS = 200_000  # pool of customer keys; each branch also has 150 regulars
REGULARS = 150

TARGET_COLD_S = 1.0  # cold page, server time, at most
TARGET_CACHED_S = 0.050  # cached page, server time (p95), at most
LOAD_ID_BASE = -1  # appended rows get transaction_id -1, -2, ... (real ids are >= 0)


# --------------------------------------------------------------------------- the dashboard

WHERE = """\
      from transactions join branches using (branch_id)
      where transacted_at::date between $date_from and $date_to
        and ($branch is null or branch_name = $branch)"""

DASHBOARD_YAML = f"""\
# Written by bench/serve.py (overwritten on each run): 6 panels over every
# transaction, with the sales dashboard's filters. Reference: docs/dashboards.md.
title: Bench
description: Six panels over the whole fact table (bench/serve.py).
filters:
  - name: date
    kind: date_range
    label: Dates
    column: transactions.transacted_at
  - name: branch
    kind: select
    label: Branch
    column: branches.branch_name

panels:
  - title: Revenue
    chart: number
    y: revenue
    currency: "£"
    sql: |
      select coalesce(sum(total), 0) as revenue
{WHERE}

  - title: Transactions
    chart: number
    y: transactions
    format: ",d"
    sql: |
      select count(*) as transactions
{WHERE}

  - title: Revenue per day
    chart: line
    x: day
    y: revenue
    currency: "£"
    wide: true
    sql: |
      select transacted_at::date as day, sum(total) as revenue
{WHERE}
      group by 1 order by 1

  - title: Top branches by revenue
    chart: bar
    horizontal: true
    x: branch_name
    y: revenue
    currency: "£"
    sql: |
      select branch_name, sum(total) as revenue
{WHERE}
      group by 1 order by revenue desc limit 10

  - title: Card vs cash
    chart: donut
    x: payment_method
    y: revenue
    currency: "£"
    sql: |
      select payment_method, sum(total) as revenue
{WHERE}
      group by 1 order by 1

  - title: Revenue per month by payment method
    chart: stacked_bar
    x: month
    y: revenue
    series: payment_method
    currency: "£"
    sql: |
      select date_trunc('month', transacted_at)::date as month, payment_method,
             sum(total) as revenue
{WHERE}
      group by 1, 2 order by 1, 2
"""


# --------------------------------------------------------------------------- the warehouse


def environment() -> dict[str, Any]:
    import fastapi

    return base_environment({"fastapi": fastapi.__version__})


def _values(rows: Sequence[Sequence[object]]) -> str:
    from headwater.sql import literal

    return ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)


def generation_sql(rows: int) -> list[str]:
    """The statements that fill a fresh warehouse file with `rows` transactions."""
    from headwater.templates.cafe import generator

    names = generator.branch_names(BRANCHES)
    branches = _values(list(enumerate(names)))
    hours = _values(sorted(generator.HOUR_WEIGHTS.items()))
    menu = []
    for p, (text, regular, large) in enumerate(generator.MENU):
        name, _, variant = text.partition(" - ")
        for s, (size, pence) in enumerate(zip(generator.SIZES, (regular, large), strict=True)):
            menu.append((2 * p + s, p, name, variant, size, pence))
    basket_cdf = [sum(generator.BASKET_SIZE_PROBS[: k + 1]) for k in range(5)]
    basket = " ".join(
        f"WHEN unit(i, 'basket') < {c!r} THEN {k + 1}" for k, c in enumerate(basket_cdf)
    )
    return [
        f"CREATE TEMP MACRO unit(a, b) AS (hash(a, b, {SEED}) % 1000003) / 1000003.0",
        # Branches: volume 0.5x to 1.5x, opening and closing hours as the generator's,
        # card share 62-78%, 20-50% of sales to regulars; the last few open later.
        f"""
        CREATE TEMP TABLE g_branches AS
        SELECT branch_index, branch_name,
               (hash('branch', branch_name, {SEED}) >> 2)::BIGINT AS branch_id,
               0.5 + unit(branch_index, 'volume') AS volume,
               CASE WHEN branch_index >= {BRANCHES - LATE_BRANCHES}
                    THEN (60 + unit(branch_index, 'opened') * 540)::INTEGER ELSE 0 END
                   AS opened_day,
               CASE WHEN unit(branch_index, 'open') < 0.35 THEN 8 ELSE 9 END AS open_hour,
               CASE WHEN unit(branch_index, 'close') < 0.4 THEN 17
                    WHEN unit(branch_index, 'close') < 0.7 THEN 18
                    WHEN unit(branch_index, 'close') < 0.9 THEN 19 ELSE 20 END AS close_hour,
               0.62 + 0.16 * unit(branch_index, 'card') AS card_share,
               0.2 + 0.3 * unit(branch_index, 'regular') AS regular_share
        FROM (VALUES {branches}) v(branch_index, branch_name)
        """,
        # Days: weekday shape (Saturday busiest), a summer peak, 25% growth over the
        # period; closed on Christmas day.
        f"""
        CREATE TEMP TABLE g_days AS
        SELECT d, day,
               CASE WHEN month(day) = 12 AND dayofmonth(day) = 25 THEN 0.0
                    ELSE [0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 0.85][isodow(day)]
                         * (1 + 0.1 * cos(2 * pi() * (dayofyear(day) - 200) / 365.25))
                         * (1 + 0.25 * d / {DAYS}) END AS factor
        FROM (SELECT d, DATE '{START.isoformat()}' + d::INTEGER AS day FROM range({DAYS}) t(d))
        """,
        # One cell per branch-day (a file, in the template's terms), +-15% noise; the
        # rows are shared out in (day, branch) order, as nightly loads append them.
        f"""
        CREATE TEMP TABLE g_cells AS
        WITH w AS (
            SELECT d.d, d.day, b.branch_index,
                   b.volume * d.factor * (0.85 + 0.3 * unit(b.branch_index * 100000 + d.d, 'cell'))
                       AS weight
            FROM g_days d CROSS JOIN g_branches b
            WHERE d.factor > 0 AND d.d >= b.opened_day
        ), c AS (
            SELECT *, floor({rows} * (sum(weight) OVER (ORDER BY d, branch_index
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                                      - weight) / sum(weight) OVER ())::BIGINT AS start_row
            FROM w
        )
        SELECT d, day, branch_index, start_row,
               lead(start_row, 1, {rows}) OVER (ORDER BY d, branch_index) - start_row AS n
        FROM c
        """,
        "DELETE FROM g_cells WHERE n = 0",
        # Minute of day: each branch's opening hours, weighted by the generator's hours.
        f"""
        CREATE TEMP TABLE g_minutes AS
        WITH m AS (
            SELECT b.branch_index, m.m AS minute, h.weight
            FROM g_branches b CROSS JOIN range(24 * 60) m(m)
            JOIN (VALUES {hours}) h(hour, weight) ON h.hour = m.m // 60
            WHERE m.m >= b.open_hour * 60 AND m.m < b.close_hour * 60
        )
        SELECT branch_index, minute,
               (sum(weight) OVER (PARTITION BY branch_index ORDER BY minute
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - weight)
                   / sum(weight) OVER (PARTITION BY branch_index) AS cum_start
        FROM m
        """,
        # The menu: 74 items (product x size); popularity falls with a hashed rank.
        f"""
        CREATE TEMP TABLE g_codes AS
        WITH m AS (
            SELECT code, p, name, nullif(variant, '') AS variant, size,
                   (pence / 100)::DECIMAL(10, 2) AS price
            FROM (VALUES {_values(menu)}) v(code, p, name, variant, size, pence)
        ), r AS (
            SELECT *, dense_rank() OVER (ORDER BY hash(name, variant, {SEED})) AS rank FROM m
        ), w AS (
            SELECT *, (1.0 / rank ^ 0.8) * CASE WHEN size = 'Large' THEN 0.45 ELSE 0.55 END
                       AS weight
            FROM r
        )
        SELECT code, name, variant, size, price,
               (hash('product', name, coalesce(variant, ''), size, {SEED}) >> 2)::BIGINT
                   AS product_id,
               (sum(weight) OVER (ORDER BY code ROWS BETWEEN UNBOUNDED PRECEDING
                                  AND CURRENT ROW) - weight) / sum(weight) OVER () AS cum_start
        FROM w
        """,
        # One row per transaction; timestamps rise through each branch-day.
        f"""
        CREATE TEMP TABLE g_tx AS
        WITH r AS (
            SELECT r.i, c.day, c.branch_index, (r.i - c.start_row + 0.5) / c.n AS u_minute
            FROM range({rows}) r(i) ASOF JOIN g_cells c ON r.i >= c.start_row
        )
        SELECT r.i,
               (hash(r.i, 'transaction', {SEED}) >> 2)::BIGINT AS transaction_id,
               b.branch_id,
               r.day + to_minutes(m.minute::BIGINT) AS transacted_at,
               CASE WHEN unit(r.i, 'payment') < b.card_share THEN 'CARD' ELSE 'CASH' END
                   AS payment_method,
               printf('%016x', hash(
                   CASE WHEN unit(r.i, 'regular') < b.regular_share
                        THEN hash(b.branch_index, hash(r.i, 'which') % {REGULARS}, 'regular')
                             % {CUSTOMERS}
                        ELSE hash(r.i, 'customer') % {CUSTOMERS} END,
                   'customer key', {SEED})) AS customer_key,
               CASE {basket} ELSE 6 END AS basket
        FROM r
        ASOF JOIN g_minutes m ON r.branch_index = m.branch_index AND r.u_minute >= m.cum_start
        JOIN g_branches b ON b.branch_index = r.branch_index
        """,
        """
        CREATE TEMP TABLE g_items AS
        WITH lines AS (SELECT i, unnest(range(basket)) AS j FROM g_tx),
        picked AS (
            SELECT l.i, c.code
            FROM (SELECT i, unit(i * 8 + j, 'item') AS u FROM lines) l
            ASOF JOIN g_codes c ON l.u >= c.cum_start
        )
        SELECT i, code, count(*)::INTEGER AS quantity FROM picked GROUP BY i, code
        """,
        # The published tables, with the types a real load gives them.
        "CREATE TABLE branches (branch_id BIGINT, branch_name VARCHAR)",
        "INSERT INTO branches SELECT branch_id, branch_name FROM g_branches ORDER BY branch_index",
        "CREATE TABLE products (product_id BIGINT, product_name VARCHAR, variant VARCHAR, "
        "size VARCHAR, price DECIMAL(10,2))",
        "INSERT INTO products SELECT product_id, name, variant, size, price FROM g_codes "
        "ORDER BY code",
        "CREATE TABLE transactions (transaction_id BIGINT, branch_id BIGINT, "
        "transacted_at TIMESTAMP, total DECIMAL(10,2), payment_method VARCHAR, "
        "customer_key VARCHAR)",
        """
        INSERT INTO transactions
        SELECT t.transaction_id, t.branch_id, t.transacted_at, s.total, t.payment_method,
               t.customer_key
        FROM g_tx t
        JOIN (SELECT g.i, sum(g.quantity * c.price)::DECIMAL(10, 2) AS total
              FROM g_items g JOIN g_codes c USING (code) GROUP BY g.i) s USING (i)
        ORDER BY t.i
        """,
        "CREATE TABLE transaction_items (transaction_id BIGINT, product_id BIGINT, "
        "quantity INTEGER, unit_price DECIMAL(10,2), line_total DECIMAL(10,2))",
        """
        INSERT INTO transaction_items
        SELECT t.transaction_id, c.product_id, g.quantity, c.price,
               (g.quantity * c.price)::DECIMAL(10, 2)
        FROM g_items g JOIN g_tx t USING (i) JOIN g_codes c USING (code)
        ORDER BY g.i, g.code
        """,
        # What DuckDBWarehouse.load writes in the same transaction as the rows.
        "CREATE TABLE _headwater_loads (table_name VARCHAR PRIMARY KEY, max_batch BIGINT, "
        "snapshot_id BIGINT, run_id BIGINT, loaded_at TIMESTAMP)",
        f"""
        INSERT INTO _headwater_loads
        SELECT t, (SELECT count(*) FROM g_cells), (hash(t, 'snapshot', {SEED}) >> 2)::BIGINT, 1,
               now()::TIMESTAMP
        FROM (VALUES ('branches'), ('products'), ('transactions'), ('transaction_items')) v(t)
        """,
    ]


def marker_params(rows: int) -> dict[str, Any]:
    text = "\n".join(generation_sql(rows))
    return {
        "rows": rows,
        "sql": hashlib.sha256(text.encode()).hexdigest()[:16],
        "duckdb": duckdb.__version__,
    }


def write_project() -> None:
    """The cafe template in bench/out/serve (the warehouse is kept), .env, bench.yaml."""
    from headwater.templates import init_project

    ROOT.mkdir(parents=True, exist_ok=True)
    init_project(ROOT, "cafe", force=True)  # rewrites the template's files only
    (ROOT / ".env").write_text(f"HEADWATER_PII_SECRET={SECRET}\n")
    (ROOT / "dashboards" / f"{DASHBOARD}.yaml").write_text(DASHBOARD_YAML)


def undo_loads(conn: duckdb.DuckDBPyConnection) -> int:
    """Delete the rows a measurement appended (negative ids) and put back the loads row."""
    [(extra,)] = conn.execute(
        "SELECT count(*) FROM transactions WHERE transaction_id < 0"
    ).fetchall()
    if extra:
        conn.execute("BEGIN TRANSACTION").fetchall()
        conn.execute("DELETE FROM transactions WHERE transaction_id < 0").fetchall()
        conn.execute(
            "UPDATE _headwater_loads SET max_batch = max_batch - ?, run_id = run_id - ? "
            "WHERE table_name = 'transactions'",
            [extra, extra],
        ).fetchall()
        conn.execute("COMMIT").fetchall()
        conn.execute("CHECKPOINT").fetchall()
    return int(extra)


def ensure_warehouse(rows: int) -> dict[str, Any]:
    """bench/out/serve/.headwater/warehouse.duckdb with `rows` transactions, made once."""
    params = marker_params(rows)
    recorded: dict[str, Any] = {}
    if MARKER.is_file():
        try:
            recorded = json.loads(MARKER.read_text())
        except ValueError:
            recorded = {}
    if recorded.get("params") == params and WAREHOUSE.is_file():
        conn = duckdb.connect(str(WAREHOUSE))
        try:
            removed = undo_loads(conn)
            [(count,)] = conn.execute("SELECT count(*) FROM transactions").fetchall()
        finally:
            conn.close()
        if removed:
            log(f"removed {removed} row(s) left by an interrupted run")
        if count == rows:
            log(
                f"reusing {WAREHOUSE.relative_to(REPO)}: {count:,} transactions, "
                f"{WAREHOUSE.stat().st_size / 1e6:,.0f} MB"
            )
            return dict(recorded["result"]) | {"bytes": WAREHOUSE.stat().st_size}
    MARKER.unlink(missing_ok=True)
    WAREHOUSE.parent.mkdir(parents=True, exist_ok=True)
    for stale in WAREHOUSE.parent.glob(WAREHOUSE.name + "*"):
        stale.unlink()
    tmp = WAREHOUSE.with_name("generating.duckdb")
    for stale in tmp.parent.glob(tmp.name + "*"):
        stale.unlink()
    log(f"generating {rows:,} transactions into {WAREHOUSE.relative_to(REPO)} ...")
    start = time.perf_counter()
    conn = duckdb.connect(str(tmp))
    try:
        for sql in generation_sql(rows):
            conn.execute(sql).fetchall()

        def one(sql: str) -> Any:
            return conn.execute(sql).fetchall()[0][0]

        result = {
            "transactions": one("SELECT count(*) FROM transactions"),
            "transaction_items": one("SELECT count(*) FROM transaction_items"),
            "branches": one("SELECT count(*) FROM branches"),
            "products": one("SELECT count(*) FROM products"),
            "days": one("SELECT count(DISTINCT transacted_at::DATE) FROM transactions"),
            "revenue": str(one("SELECT sum(total) FROM transactions")),
        }
        conn.execute("CHECKPOINT").fetchall()
    finally:
        conn.close()
    tmp.replace(WAREHOUSE)
    seconds = time.perf_counter() - start
    result["seconds"] = round(seconds, 1)
    result["bytes"] = WAREHOUSE.stat().st_size
    MARKER.write_text(json.dumps({"params": params, "result": result}, indent=2) + "\n")
    log(
        f"  {result['transactions']:,} transactions, {result['transaction_items']:,} items, "
        f"{result['days']} days, {result['bytes'] / 1e6:,.0f} MB in {seconds:.1f} s"
    )
    return result


# --------------------------------------------------------------------------- measuring (child)


@dataclass
class Request:
    """One GET of the dashboard page."""

    label: str
    server_s: float
    client_s: float
    cpu_s: float
    status: int
    bytes: int
    steps: dict[str, float] = field(default_factory=dict)  # breakdown, seconds
    panels: list[dict[str, Any]] = field(default_factory=list)  # per panel: query s, rows


class Recorder:
    """Wraps the functions the dashboard page calls, to time its steps."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.panels: list[dict[str, Any]] = []
        self.tables: dict[int, Any] = {}
        self._connect = 0.0  # seconds spent connecting, to leave out of the enclosing step

    def reset(self) -> None:
        self.steps, self.panels, self.tables, self._connect = {}, [], {}, 0.0

    def add(self, step: str, seconds: float) -> None:
        self.steps[step] = self.steps.get(step, 0.0) + seconds

    def timed(self, step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            before, start = self._connect, time.perf_counter()
            value = function(*args, **kwargs)
            self.add(step, time.perf_counter() - start - (self._connect - before))
            return value

        return wrapper

    def install(self) -> None:
        from headwater.serve import dashboards, dashboards_web

        connect = dashboards.connect_warehouse
        run_panel = dashboards_web.run_panel

        @contextmanager
        def timed_connect(project: Any) -> Iterator[Any]:
            start = time.perf_counter()
            manager = connect(project)
            conn = manager.__enter__()
            seconds = time.perf_counter() - start
            self._connect += seconds
            self.add("connect (DuckDB file, read-only)", seconds)
            try:
                yield conn
            except BaseException:
                if not manager.__exit__(*sys.exc_info()):
                    raise
            else:
                start = time.perf_counter()
                manager.__exit__(None, None, None)
                self.add("close the connection", time.perf_counter() - start)

        def timed_run_panel(session: Any, key: Any, panel: Any, params: Any, **kw: Any) -> Any:
            before, start = self._connect, time.perf_counter()
            result = run_panel(session, key, panel, params, **kw)
            seconds = time.perf_counter() - start - (self._connect - before)
            index = int(key[-1])
            rows = None if result.table is None else result.table.num_rows
            self.panels.append(
                {
                    "index": index,
                    "title": panel.title,
                    "chart": panel.chart,
                    "seconds": seconds,
                    "rows": rows,
                    "cached": result.cached,
                    "error": result.error,
                }
            )
            self.tables[index] = result.table
            self.add("panel queries", seconds)
            return result

        dashboards.connect_warehouse = timed_connect
        dashboards_web.run_panel = timed_run_panel
        dashboards_web.resolve_filters = self.timed(
            "filters (date bounds, branch list)", dashboards_web.resolve_filters
        )
        dashboards_web.panel_view = self.timed(
            "panel views (Vega-Lite specs, numbers)", dashboards_web.panel_view
        )
        dashboards_web._load = self.timed("read the dashboard YAML", dashboards_web._load)
        dashboards_web.render = self.timed("render the page (Jinja2)", dashboards_web.render)


class ServerTimer:
    """ASGI wrapper: time from the request reaching the app to its last body byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last = time.perf_counter() - start
            await send(message)

        await self.app(scope, receive, timed_send)


def load_one_row(k: int, branch: str) -> None:
    """What a load does to the warehouse, in small: rows appended and `_headwater_loads`
    updated in one transaction (the file's size and mtime change: the cache misses)."""
    conn = duckdb.connect(str(WAREHOUSE))
    try:
        conn.execute("BEGIN TRANSACTION").fetchall()
        conn.execute(
            "INSERT INTO transactions SELECT ?, branch_id, "
            "(SELECT max(transacted_at) FROM transactions), 4.50, 'CARD', 'bench00000000000' "
            "FROM branches WHERE branch_name = ?",
            [LOAD_ID_BASE - k, branch],
        ).fetchall()
        conn.execute(
            "UPDATE _headwater_loads SET max_batch = max_batch + 1, run_id = run_id + 1, "
            "loaded_at = now()::TIMESTAMP WHERE table_name = 'transactions'"
        ).fetchall()
        conn.execute("COMMIT").fetchall()
    finally:
        conn.close()


def drop_page_cache(path: Path) -> None:
    """Evict the file's pages from the OS page cache (posix_fadvise DONTNEED: no root
    needed, clean pages only; the load's connection is closed, so none are dirty), as
    after a reboot or when other work pushed them out."""
    for p in (path, path.with_name(path.name + ".wal")):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def expected_numbers(branch: str | None) -> tuple[Decimal, int]:
    """Revenue and transactions of the whole period, straight from DuckDB."""
    conn = duckdb.connect(str(WAREHOUSE), read_only=True)
    try:
        [(revenue, count)] = conn.execute(
            "SELECT coalesce(sum(total), 0), count(*) FROM transactions JOIN branches "
            "USING (branch_id) WHERE ? IS NULL OR branch_name = ?",
            [branch, branch],
        ).fetchall()
    finally:
        conn.close()
    return Decimal(revenue), int(count)


def measure(args: argparse.Namespace) -> int:
    """In a fresh interpreter: start the app, then the requests; writes child.json."""
    if args.no_pandas:
        sys.modules["pandas"] = None  # type: ignore[assignment]  # as if not installed
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # starlette's notice that httpx is deprecated for it
        warnings.filterwarnings("ignore", message=".*httpx.*")
        from fastapi.testclient import TestClient

    from headwater.project import Project
    from headwater.serve.app import create_app
    from headwater.serve.dashboards import CACHE

    imported = time.perf_counter() - t0
    start = time.perf_counter()
    app = create_app(Project.load(ROOT))
    created = time.perf_counter() - start
    recorder = Recorder()
    recorder.install()
    timer = ServerTimer(app)
    url = f"/dashboards/{DASHBOARD}"
    filtered = f"{url}?branch={args.branch}"
    problems: list[str] = []
    requests: list[Request] = []
    profiles: dict[str, str] = {}
    floor: dict[str, Any] = {}

    def get(client: TestClient, path: str, label: str, cold: bool) -> Request:
        recorder.reset()
        start, cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        client_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        request = Request(
            label,
            timer.last,
            client_s,
            cpu_s,
            response.status_code,
            len(response.content),
            dict(recorder.steps),
            list(recorder.panels),
        )
        if response.status_code != 200:
            problems.append(f"{label}: HTTP {response.status_code}")
        if len(request.panels) != 6:
            problems.append(f"{label}: {len(request.panels)} panels ran, not 6")
        for p in request.panels:
            if p["error"]:
                problems.append(f"{label}: panel {p['index']}: {p['error']}")
            if p["cached"] == cold:
                problems.append(f"{label}: panel {p['index']} cached={p['cached']}")
        requests.append(request)
        return request

    def check_numbers(label: str, branch: str | None) -> None:
        revenue, count = expected_numbers(branch)
        got = [recorder.tables.get(i) for i in (0, 1)]
        values = [None if t is None else t.column(0)[0].as_py() for t in got]
        if values != [revenue, count]:
            problems.append(f"{label}: panels show {values}, the warehouse {[revenue, count]}")

    try:
        with TestClient(timer) as client:
            CACHE.clear()
            if args.child == "profile":
                profiles = profile_requests(client, url, args, get)
            else:
                get(client, url, "cold: first request", cold=True)
                check_numbers("cold: first request", None)
                for _ in range(args.repeat):
                    get(client, url, "cached", cold=False)
                for k in range(args.cold_repeat):
                    load_one_row(k, args.load_branch)
                    get(client, url, "cold: after a load", cold=True)
                    check_numbers("cold: after a load", None)
                for k in range(args.cold_repeat, 2 * args.cold_repeat):
                    load_one_row(k, args.load_branch)
                    get(client, filtered, "cold: branch filter, after a load", cold=True)
                    check_numbers("cold: branch filter, after a load", args.branch)
                for _ in range(args.repeat):
                    get(client, filtered, "cached: branch filter", cold=False)
                label = "cold: after a load, file out of the OS page cache"
                for k in range(2 * args.cold_repeat, 3 * args.cold_repeat):
                    load_one_row(k, args.load_branch)
                    drop_page_cache(WAREHOUSE)
                    get(client, url, label, cold=True)
                    check_numbers(label, None)
                floor = duckdb_alone(args.cold_repeat)
    finally:
        conn = duckdb.connect(str(WAREHOUSE))
        try:
            undo_loads(conn)
        finally:
            conn.close()
    payload = {
        "import_s": imported,
        "create_app_s": created,
        "requests": [asdict(r) for r in requests],
        "problems": problems,
        "profiles": profiles,
        "floor": floor,
        "pandas_imported": "pandas" in sys.modules and sys.modules["pandas"] is not None,
    }
    CHILD_RESULT.write_text(json.dumps(payload, default=str) + "\n")
    return 0


def duckdb_alone(tries: int) -> dict[str, Any]:
    """The page's queries straight on DuckDB, no headwater: the date bounds and branch
    list, then the 6 panels with the parameters the page binds. Once on a fresh read-only
    connection (what each cold page does) and again on the same connection (its blocks
    already in DuckDB's buffer pool), `tries` times; the fastest try of each is kept."""
    from headwater.serve.dashboards import load_dashboard

    board = load_dashboard(ROOT / "dashboards" / f"{DASHBOARD}.yaml")
    best: dict[str, dict[str, float]] = {}
    for _ in range(tries):
        start = time.perf_counter()
        conn = duckdb.connect(str(WAREHOUSE), read_only=True)
        times = {"connect": time.perf_counter() - start}
        for run in ("fresh", "again"):
            start = time.perf_counter()
            [(low, high)] = conn.execute(
                "SELECT min(transacted_at)::DATE, max(transacted_at)::DATE FROM transactions"
            ).fetchall()
            conn.execute(
                "SELECT DISTINCT branch_name FROM branches WHERE branch_name IS NOT NULL "
                "ORDER BY 1 LIMIT 1000"
            ).fetchall()
            times[f"{run}: filters"] = time.perf_counter() - start
            values = {"date_from": low, "date_to": high, "branch": None}
            for i, panel in enumerate(board.panels):
                params = {n: values[n] for n in sorted(panel.parameters)}
                start = time.perf_counter()
                conn.execute(panel.sql, params).to_arrow_reader(5001).read_all()
                times[f"{run}: panel {i}"] = time.perf_counter() - start
        start = time.perf_counter()
        conn.close()
        times["close"] = time.perf_counter() - start
        for key, seconds in times.items():
            best.setdefault(key, {"seconds": seconds})
            best[key]["seconds"] = min(best[key]["seconds"], seconds)
    return {k: v["seconds"] for k, v in best.items()}


def profile_requests(
    client: Any, url: str, args: argparse.Namespace, get: Callable[..., Request]
) -> dict[str, str]:
    """cProfile of the first request (cold), of a cold one after a load and of
    `--repeat` cached ones; in their own child, so the measured run is not profiled.

    The page's endpoint is synchronous: FastAPI runs it in a worker thread (not the
    thread calling the TestClient), so the profiler is switched on inside that thread,
    around the endpoint (routing and the ASGI transport are left out)."""
    import fastapi.routing

    original = fastapi.routing.run_in_threadpool
    profiler = cProfile.Profile()

    async def profiled(target: Callable[..., Any], /, *a: Any, **kw: Any) -> Any:
        def call(*inner_a: Any, **inner_kw: Any) -> Any:
            profiler.enable()
            try:
                return target(*inner_a, **inner_kw)
            finally:
                profiler.disable()

        return await original(call, *a, **kw)

    fastapi.routing.run_in_threadpool = profiled  # type: ignore[assignment]
    out: dict[str, str] = {}
    cases = (("first", True, 1), ("after_load", True, 1), ("cached", False, args.repeat))
    for name, cold, count in cases:
        if name == "after_load":
            load_one_row(0, args.load_branch)
        profiler = cProfile.Profile()
        for _ in range(count):
            get(client, url, f"profile: {name}", cold=cold)
        path = ROOT / f"{name}.prof"
        profiler.dump_stats(str(path))
        out[name] = profile_text(pstats.Stats(str(path)), count)
        log(f"\n### cProfile: {name} ({count} request(s), {path.relative_to(REPO)})\n")
        log(out[name])
    fastapi.routing.run_in_threadpool = original
    return out


def _where(key: tuple[str, int, str]) -> str:
    """`file:function` with the path cut after site-packages/ or src/."""
    path, _, function = key
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{function}"


def profile_text(stats: pstats.Stats, requests: int, top: int = 25) -> str:
    """The functions with the most own time and the most cumulative time, per request."""
    entries = stats.stats  # type: ignore[attr-defined]
    lines: list[str] = []
    for title, index in (("own time (tottime)", 2), ("cumulative time", 3)):
        ranked = sorted(entries.items(), key=lambda kv: kv[1][index], reverse=True)[:top]
        lines += [
            f"| {title}: function | own ms | cumulative ms | calls |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {_where(key)} | {v[2] * 1000 / requests:,.1f} | {v[3] * 1000 / requests:,.1f} | "
            f"{v[1] / requests:,.0f} |"
            for key, v in ranked
        ]
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- report (parent)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def median_request(requests: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(requests, key=lambda r: r["server_s"])
    return ordered[(len(ordered) - 1) // 2]


def report(args: argparse.Namespace, data: dict[str, Any], child: dict[str, Any]) -> bool:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in child["requests"]:
        if not r["label"].startswith("profile"):
            groups.setdefault(r["label"], []).append(r)
    lines = [
        "",
        f"## headwater serve: a 6-panel dashboard over {data['transactions']:,} transactions "
        f"({data['bytes'] / 1e6:,.0f} MB DuckDB warehouse), {os.cpu_count()} CPUs",
        "",
        "`GET /dashboards/bench` through FastAPI's TestClient (in-process ASGI, no socket). "
        f"App start: imports {child['import_s']:.2f} s, create_app "
        f"{child['create_app_s'] * 1000:.0f} ms. pandas "
        f"{'imported (DuckDB loads it on the first query with a parameter)' if child.get('pandas_imported') else 'not importable (--no-pandas)' if args.no_pandas else 'not imported'}.",
        "",
        "| request | n | server median ms | server p95 ms | server max ms | client median ms "
        "| CPU median ms | KB | target | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    verdicts: dict[str, bool] = {}
    for label, rs in groups.items():
        server = [r["server_s"] for r in rs]
        cold = label.startswith("cold")
        target = TARGET_COLD_S if cold else TARGET_CACHED_S
        judged = max(server) if cold else percentile(server, 0.95)
        ok = judged < target
        verdicts[label] = ok
        rule = f"max < {target * 1000:,.0f} ms" if cold else f"p95 < {target * 1000:,.0f} ms"
        lines.append(
            f"| {label} | {len(rs)} | {ms(statistics.median(server))} | "
            f"{ms(percentile(server, 0.95))} | {ms(max(server))} | "
            f"{ms(statistics.median(r['client_s'] for r in rs))} | "
            f"{ms(statistics.median(r['cpu_s'] for r in rs))} | "
            f"{statistics.median(r['bytes'] for r in rs) / 1024:,.0f} | {rule} | {verdict(ok)} |"
        )

    # Where the time of a request goes: the median request of each group.
    shown = {label: median_request(rs) for label, rs in groups.items()}
    labels = list(shown)
    lines += [
        "",
        "Where the server time goes (the median request of each row above; ms):",
        "",
        "| step | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    seen: list[str] = []
    for r in shown.values():
        seen += [s for s in r["steps"] if s not in seen and s != "panel queries"]
    first_steps = [
        "read the dashboard YAML",
        "connect (DuckDB file, read-only)",
        "filters (date bounds, branch list)",
    ]
    before = [s for s in first_steps if s in seen]
    after = [s for s in seen if s not in first_steps]

    def step_row(name: str) -> str:
        return f"| {name} | " + " | ".join(ms(r["steps"].get(name, 0.0)) for r in shown.values())

    lines += [step_row(name) + " |" for name in before]
    first = next(iter(shown.values()))
    for p in sorted(first["panels"], key=lambda p: p["index"]):
        cells = []
        for r in shown.values():
            match = [q for q in r["panels"] if q["index"] == p["index"]]
            cached = " (cached)" if match and match[0]["cached"] else ""
            cells.append(ms(match[0]["seconds"]) + cached if match else "")
        lines.append(
            f"| panel {p['index']}: {p['title']} ({p['chart']}, {p['rows']} rows) | "
            + " | ".join(cells)
            + " |"
        )
    lines += [step_row(name) + " |" for name in after]
    rest = [r["server_s"] - sum(r["steps"].values()) for r in shown.values()]
    lines.append(
        "| rest (routing, Session, middleware) | " + " | ".join(ms(x) for x in rest) + " |"
    )
    lines.append(
        "| **server total** | " + " | ".join(ms(r["server_s"]) for r in shown.values()) + " |"
    )

    floor = child.get("floor") or {}
    after_load = shown.get("cold: after a load")
    if floor and after_load is not None:
        by_index = {p["index"]: p for p in after_load["panels"]}
        steps = after_load["steps"]
        rows: list[tuple[str, float, float | None, float]] = [
            ("connect", floor["connect"], None, steps.get(first_steps[1], 0.0)),
            (
                "date bounds + branch list",
                floor["fresh: filters"],
                floor["again: filters"],
                steps.get(first_steps[2], 0.0),
            ),
        ]
        rows += [
            (
                f"panel {i}: {by_index[i]['title']}" if i in by_index else f"panel {i}",
                floor[f"fresh: panel {i}"],
                floor[f"again: panel {i}"],
                by_index[i]["seconds"] if i in by_index else 0.0,
            )
            for i in range(6)
        ]
        rows.append(("close", floor["close"], None, steps.get("close the connection", 0.0)))
        totals = [sum(r[k] or 0.0 for r in rows) for k in (1, 2, 3)]
        lines += [
            "",
            "The same queries on DuckDB alone (no headwater; fastest of "
            f"{args.cold_repeat}), beside the median cold page after a load (ms):",
            "",
            "| step | DuckDB, fresh connection | DuckDB, same connection again | "
            "headwater page, cold after a load |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r[0]} | {ms(r[1])} | {'–' if r[2] is None else ms(r[2])} | {ms(r[3])} |"
            for r in rows
        ]
        lines.append(
            f"| **total** | {ms(totals[0])} | {ms(totals[1])} | {ms(totals[2])} "
            f"(page: {ms(after_load['server_s'])}) |"
        )

    problems = child["problems"]
    checked = not problems
    lines += [
        "",
        "| target | value | verdict |",
        "|---|---:|---|",
    ]
    for label, ok in verdicts.items():
        rs = groups[label]
        server = [r["server_s"] for r in rs]
        if label.startswith("cold"):
            lines.append(
                f"| {label}: max server time < {TARGET_COLD_S:g} s | {max(server):.3f} s | "
                f"{verdict(ok)} |"
            )
        else:
            lines.append(
                f"| {label}: p95 server time < {TARGET_CACHED_S * 1000:g} ms | "
                f"{ms(percentile(server, 0.95))} ms | {verdict(ok)} |"
            )
    lines.append(
        f"| every page 200, 6 panels without error, cold/cached as expected, numbers match "
        f"the warehouse | {checked} | {verdict(checked)} |"
    )
    log("\n".join(lines))
    for problem in problems[:20]:
        log(f"  problem: {problem}")

    OUT.mkdir(parents=True, exist_ok=True)
    summary = {
        label: {
            "n": len(rs),
            "server_median_s": statistics.median(r["server_s"] for r in rs),
            "server_p95_s": percentile([r["server_s"] for r in rs], 0.95),
            "server_max_s": max(r["server_s"] for r in rs),
            "client_median_s": statistics.median(r["client_s"] for r in rs),
            "cpu_median_s": statistics.median(r["cpu_s"] for r in rs),
            "pass": verdicts[label],
            "median_request": shown[label],
        }
        for label, rs in groups.items()
    }
    RESULTS.write_text(
        json.dumps(
            {
                **environment(),
                "rows": args.rows,
                "repeat": args.repeat,
                "cold_repeat": args.cold_repeat,
                "branch": args.branch,
                "warehouse": data,
                "targets": {"cold_max_s": TARGET_COLD_S, "cached_p95_s": TARGET_CACHED_S},
                "app_start": {"import_s": child["import_s"], "create_app_s": child["create_app_s"]},
                "results": summary,
                "problems": problems,
                "all_requests": child["requests"],
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    log(f"\nwrote {RESULTS.relative_to(REPO)}")
    return checked and all(verdicts.values())


def run(args: argparse.Namespace) -> int:
    write_project()
    data = ensure_warehouse(args.rows)
    CHILD_RESULT.unlink(missing_ok=True)
    command = [
        sys.executable,
        __file__,
        "--child",
        "measure",
        "--rows",
        str(args.rows),
        "--repeat",
        str(args.repeat),
        "--cold-repeat",
        str(args.cold_repeat),
        "--branch",
        args.branch,
        "--load-branch",
        args.load_branch,
    ]
    if args.no_pandas:
        command.append("--no-pandas")
    log(
        f"\nmeasuring in a child process: 1 cold + {args.repeat} cached, "
        f"{args.cold_repeat} cold after a load (unfiltered and ?branch={args.branch}), "
        f"{args.repeat} cached with the filter, {args.cold_repeat} cold out of the OS page "
        "cache ..."
    )
    proc = subprocess.run(command, check=False)
    if proc.returncode != 0 or not CHILD_RESULT.is_file():
        raise SystemExit(f"the measuring child failed (exit {proc.returncode})")
    child = json.loads(CHILD_RESULT.read_text())
    ok = report(args, data, child)
    if args.profile:
        log("\nprofiling in another child process (its times are inflated by cProfile) ...")
        command[command.index("measure")] = "profile"
        proc = subprocess.run(command, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"the profiling child failed (exit {proc.returncode})")
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark a 6-panel dashboard page of headwater serve over N fact rows.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--rows", type=int, default=10_000_000, help="transactions in the warehouse"
    )
    parser.add_argument(
        "--repeat", type=int, default=50, help="cached requests measured (each case)"
    )
    parser.add_argument(
        "--cold-repeat",
        type=int,
        default=3,
        help="cold requests after a load (each case: unfiltered, branch filter)",
    )
    parser.add_argument("--branch", default="Leeds", help="the branch filter's value")
    parser.add_argument(
        "--load-branch", default="Chesterfield", help=argparse.SUPPRESS
    )  # the branch of the appended rows
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then, in another child, profile the first request, a cold one after a load and "
        "the cached ones with cProfile (bench/out/serve/*.prof)",
    )
    parser.add_argument(
        "--no-pandas",
        action="store_true",
        help="measure as if pandas were not installed (it is a dev extra; DuckDB imports it "
        "on the first query with a parameter)",
    )
    parser.add_argument("--child", choices=("measure", "profile"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < 1_000:
        parser.error("--rows must be at least 1000")
    if args.repeat < 1 or args.cold_repeat < 1:
        parser.error("--repeat and --cold-repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return measure(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
