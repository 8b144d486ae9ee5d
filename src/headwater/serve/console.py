"""The SQL console: `/sql` (a form), `/sql/run` (htmx: the result table), `/sql/csv` (a download).

Every query goes through `headwater.serve.sandbox`: read-only, over a hardened
connection, at most `limit` rows (CSV: up to 1,000,000, streamed) and stopped
after the timeout (`app.state.sql_timeout`, 10 s unless set; a whole CSV download after
`app.state.sql_stream_timeout`, 300 s).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from headwater.errors import HeadwaterError
from headwater.serve import sandbox
from headwater.serve.query import QueryError
from headwater.serve.sandbox import Result, Target
from headwater.serve.web import project_of, render, templates

router = APIRouter()

TEMPLATE = "console.html"


def timeout_of(request: Request) -> float:
    return float(getattr(request.app.state, "sql_timeout", sandbox.DEFAULT_TIMEOUT))


def _target(value: str | None) -> Target:
    value = (value or "warehouse").strip().lower()
    if value == "lake":
        return "lake"
    if value == "warehouse":
        return "warehouse"
    raise QueryError(f"unknown target {value!r}: expected warehouse or lake")


def _limit(value: str | int | None) -> int:
    if value is None or value == "":
        return sandbox.DEFAULT_LIMIT
    try:
        return int(value)
    except ValueError:
        raise QueryError(f"row limit must be a whole number, not {value!r}") from None


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _context(
    sql: str, target: str, limit: int, result: Result | None, error: str | None
) -> dict[str, Any]:
    numeric = []
    if result is not None:
        numeric = [
            pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_decimal(f.type)
            for f in result.table.schema
        ]
    return {
        "sql": sql,
        "target": target,
        "limit": limit,
        "targets": sandbox.TARGETS,
        "max_limit": sandbox.MAX_LIMIT,
        "csv_limit": sandbox.CSV_LIMIT,
        "result": result,
        "rows": [[_cell(v) for v in row] for row in result.rows()] if result else [],
        "numeric": numeric,
        "error": error,
        "csv_url": "/sql/csv?" + urlencode({"sql": sql, "target": target}) if sql else None,
    }


def _execute(
    request: Request, sql: str, target: str | None, limit: str | int | None
) -> tuple[dict[str, Any], int]:
    """Run a console query for a page or fragment: (template context, status)."""
    shown_target = (target or "warehouse").strip().lower()
    try:
        rows = _limit(limit)
    except QueryError as exc:
        return _context(sql, shown_target, sandbox.DEFAULT_LIMIT, None, str(exc)), 400
    try:
        result = sandbox.run(
            project_of(request), sql, _target(target), limit=rows, timeout=timeout_of(request)
        )
    except HeadwaterError as exc:
        return _context(sql, shown_target, rows, None, str(exc)), 400
    return _context(sql, shown_target, rows, result, None), 200


@router.get("/sql", response_class=HTMLResponse)
def console_page(
    request: Request, sql: str = "", target: str = "warehouse", limit: str = ""
) -> Any:
    """The console. With `sql` (the form without JavaScript), the result is on the page."""
    if not sql.strip():
        context = _context("", target, _limit_or_default(limit), None, None)
        return render(request, TEMPLATE, context)
    context, status = _execute(request, sql, target, limit)
    return render(request, TEMPLATE, context, status_code=status)


def _limit_or_default(value: str) -> int:
    try:
        return _limit(value)
    except QueryError:
        return sandbox.DEFAULT_LIMIT


async def _form(request: Request) -> dict[str, str]:
    """The posted fields (url-encoded form, as htmx sends it, or JSON)."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in fields.items()}


@router.post("/sql/run", response_class=HTMLResponse)
async def console_run(request: Request) -> Response:
    """The result of one query as an HTML fragment (status 400 with the error instead)."""
    form = await _form(request)
    context, status = await run_in_threadpool(
        _execute, request, form.get("sql", ""), form.get("target"), form.get("limit")
    )
    template = templates.env.get_template(TEMPLATE)
    block = template.blocks["result"]
    html = "".join(block(template.new_context(context)))
    return HTMLResponse(html, status_code=status)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)


@router.get("/sql/csv")
def console_csv(
    request: Request, sql: str = "", target: str = "warehouse", limit: str = ""
) -> Response:
    """The query's rows as CSV (up to 1,000,000, streamed); errors as JSON with status 400."""
    try:
        rows = _limit(limit) if limit else sandbox.CSV_LIMIT
        stream = sandbox.stream(
            project_of(request),
            sql,
            _target(target),
            limit=rows,
            timeout=timeout_of(request),
            stream_timeout=float(
                getattr(request.app.state, "sql_stream_timeout", sandbox.STREAM_TIMEOUT)
            ),
        )
    except HeadwaterError as exc:
        return error_response(400, str(exc))
    return StreamingResponse(
        _csv(stream),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="query.csv"'},
    )


def _flat(schema: pa.Schema) -> pa.Schema:
    """Nested columns (lists, structs, maps) are written as JSON text."""
    return pa.schema(
        [pa.field(f.name, pa.string()) if pa.types.is_nested(f.type) else f for f in schema]
    )


def _flatten(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = []
    for column, field in zip(batch.columns, batch.schema, strict=True):
        if pa.types.is_nested(field.type):
            values = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
            columns.append(pa.array(values, pa.string()))
        else:
            columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _csv(stream: sandbox.Stream) -> Iterator[bytes]:
    schema = _flat(stream.schema)
    sink = io.BytesIO()
    try:
        with pacsv.CSVWriter(sink, schema) as writer:
            yield _take(sink)  # the header, even for no rows
            for batch in stream.batches:
                writer.write_batch(_flatten(batch, schema))
                yield _take(sink)
    finally:
        stream.close()
    tail = _take(sink)
    if tail:
        yield tail


def _take(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data
