"""The query's simple predicates on a processed table as a pyiceberg row filter.

`iceberg_filter` turns the predicates `headwater.serve.prune` found for each
reading of a table into one filter for `table.scan(row_filter=...)`, which
skips the data files whose column bounds (or partitions) rule it out. The
filter is a relaxation of what DuckDB will test, never a tightening:

- constants are computed by DuckDB (`current_date - 7`, `DATE '2024-01-02'`),
  then placed in the column's type: a date against a timestamp column is its
  midnight, a timestamp against a date column its day (rounded outwards), a
  time zone mismatch widens the bound by a day, a fraction against an
  integer column is rounded outwards;
- `>` and `<` are planned as `>=` and `<=`, `ts::date = d` as
  `d 00:00 <= ts <= d+1 00:00`, `LIKE 'abc%'` as "starts with abc";
- a value that cannot be placed (a type the column is not compared in)
  gives no bound, so no file is skipped for it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
from pyiceberg.expressions import (
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    LessThanOrEqual,
    Or,
    Reference,
    StartsWith,
)
from pyiceberg.expressions.literals import literal as literal_value
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DateType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
)

from headwater.serve.prune import DIALECT, Pred, Ref

DAY = dt.timedelta(days=1)


def iceberg_filter(schema: Schema, refs: list[Ref], consts: Constants) -> BooleanExpression | None:
    """A row filter every row the query may use from this table passes (None: no pruning)."""
    fields = {f.name.lower(): f for f in schema.fields}
    per_ref: list[BooleanExpression] = []
    for ref in refs:
        terms = [t for p in ref.predicates(set(fields)) if (t := _term(p, fields, consts))]
        if not terms:
            return None  # this reading needs every file
        per_ref.append(terms[0] if len(terms) == 1 else And(*terms))
    if not per_ref:
        return None
    return per_ref[0] if len(per_ref) == 1 else Or(*per_ref)


def _term(pred: Pred, fields: dict[str, Any], consts: Constants) -> BooleanExpression | None:
    f = fields[pred.column]
    kind = f.field_type
    if pred.prefix is not None:
        if isinstance(kind, StringType) and not pred.as_date:
            return StartsWith(term=Reference(f.name), value=literal_value(pred.prefix))
        return None
    pairs = [(v, v) for v in pred.values] if pred.values else [(pred.low, pred.high)]
    parts: list[BooleanExpression] = []
    for low, high in pairs:
        lo = _bound(kind, consts.value(low), -1, pred.as_date) if low is not None else None
        hi = _bound(kind, consts.value(high), 1, pred.as_date) if high is not None else None
        bounds: list[BooleanExpression] = []
        if lo is not None:
            bounds.append(GreaterThanOrEqual(term=Reference(f.name), value=lo))
        if hi is not None:
            bounds.append(LessThanOrEqual(term=Reference(f.name), value=hi))
        if not bounds:
            return None  # one value that cannot be placed: no bound from this predicate
        parts.append(bounds[0] if len(bounds) == 1 else And(*bounds))
    return parts[0] if len(parts) == 1 else Or(*parts)


def _bound(kind: Any, value: Any, side: int, as_date: bool) -> Any:
    """`value` as an inclusive bound of the column on `side` (-1 low, 1 high), or None.

    The bound is never tighter than what DuckDB's comparison means, whatever
    the literal's type: dates and times are rounded outwards, time zones widen
    by a day, and a value that cannot be placed gives no bound.
    """
    if value is None or (isinstance(value, bool) and not isinstance(kind, BooleanType)):
        return None
    if as_date or isinstance(kind, DateType):
        day = _day(value)
        if day is None:
            return None
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            day += side * DAY  # its date depends on the session's time zone
        if isinstance(kind, DateType):
            return day.isoformat()
        # `ts::date` between two days: ts from the first day's start to the next day's start
        value = dt.datetime.combine(day + DAY if side > 0 else day, dt.time())
    if isinstance(kind, TimestampType | TimestamptzType):
        moment = _moment(value)
        if moment is None:
            return None
        exact = (moment.tzinfo is not None) == isinstance(kind, TimestamptzType)
        naive = moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
        if not exact:
            naive += side * DAY
        if isinstance(kind, TimestamptzType):
            return naive.replace(tzinfo=dt.UTC).isoformat(timespec="microseconds")
        return naive.isoformat(timespec="microseconds")
    if isinstance(kind, IntegerType | LongType):
        if isinstance(value, int):
            return value
        if isinstance(value, float | Decimal) and math.isfinite(value):
            return math.floor(value) if side < 0 else math.ceil(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        return None
    if isinstance(kind, StringType):
        return value if isinstance(value, str) else None
    if isinstance(kind, BooleanType):
        return value if isinstance(value, bool) else None
    return None


def _day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def _moment(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def describe(expr: BooleanExpression) -> str:
    """A row filter as short text: `transacted_at >= 2024-01-03T00:00:00`."""
    if isinstance(expr, And | Or):
        word = " AND " if isinstance(expr, And) else " OR "
        return "(" + describe(expr.left) + word + describe(expr.right) + ")"
    ops = {GreaterThanOrEqual: ">=", LessThanOrEqual: "<=", StartsWith: "starts with"}
    op = ops.get(type(expr))
    term = getattr(expr, "term", None)
    lit = getattr(expr, "literal", None)
    if op is None or term is None or lit is None:
        return str(expr)
    value = lit.value
    if isinstance(value, str):
        value = value.removesuffix(".000000").removesuffix(".000000+00:00")
    return f"{term.name} {op} {value}"


class Constants:
    """Values of constant SQL expressions, computed by DuckDB as the query would."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self.cache: dict[str, Any] = {}

    def value(self, node: Any) -> Any:
        text = node.sql(dialect=DIALECT)
        if text not in self.cache:
            try:
                table = self.conn.execute(f"SELECT {text} AS v").to_arrow_table()
                column = table.column(0)
                if pa.types.is_timestamp(column.type) and column.type.tz is not None:
                    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())[0].as_py()
                    self.cache[text] = (
                        None
                        if micros is None
                        else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
                        + dt.timedelta(microseconds=micros)
                    )
                else:
                    self.cache[text] = column[0].as_py()
            except (duckdb.Error, pa.ArrowException, OverflowError):
                self.cache[text] = None
        return self.cache[text]
