"""Vega-Lite specs for dashboard panels, and number formatting for the server-rendered ones.

A chart panel becomes one Vega-Lite spec with its rows inline (`data.values`), drawn in
the browser by vega-embed (SVG). Number and table panels are rendered on the server:
`format_value` implements the part of d3-format the panels use, so a number reads the
same in a table, a big number and a chart axis.

Field types come from the Arrow schema: dates and timestamps are temporal, numbers
quantitative, the rest nominal; a bar chart's x is always discrete (ordinal or nominal)
and keeps the query's order.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
import uuid
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from headwater.serve.dashboards import Panel

HEIGHT = 260
DONUT_INNER = 55
SERIES = "series"  # the color field of several y columns (folded)
VALUE = "value"

# d3-format: [[fill]align][sign][symbol][0][width][,][.precision][~][type]
FORMAT = re.compile(
    r"^(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+( ])?(?P<symbol>[$#])?(?P<zero>0)?"
    r"(?P<width>\d+)?(?P<comma>,)?(?:\.(?P<precision>\d+))?(?P<trim>~)?(?P<type>[defgrs%])?$"
)
SI = {
    -24: "y", -21: "z", -18: "a", -15: "f", -12: "p", -9: "n", -6: "µ", -3: "m",
    0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E", 21: "Z", 24: "Y",
}  # fmt: skip


def check_format(spec: str) -> str:
    """`spec` if it is a d3-format specifier headwater can apply, else ValueError."""
    if FORMAT.match(spec) is None:
        raise ValueError(
            f"{spec!r} is not a number format: expected a d3-format specifier such as "
            "',.2f', '$,.2f', '.1%', ',d', '.3s' (types d e f g r s %)"
        )
    return spec


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return None if not math.isfinite(value) else Decimal(repr(value))
    return None


def _trim(digits: str) -> str:
    """Drop insignificant trailing zeros (d3's `~`), keeping an exponent."""
    mantissa, e, exponent = digits.partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa + e + exponent


def _group(digits: str) -> str:
    whole, dot, frac = digits.partition(".")
    return f"{int(whole):,}" + dot + frac if whole.isdigit() else digits


def format_value(value: Any, spec: str | None = None, currency: str | None = None) -> str:
    """A cell or a big number as text: `spec` is a d3-format specifier (`,.2f`, `$,.0f`,
    `.1%`, `.3s`, `,d`); `currency` is what `$` prints (default `$`). Non-numbers, and
    numbers without a spec, print plainly (dates as ISO, NULL as empty). Halves round
    away from zero."""
    if value is None:
        return ""
    number = _number(value)
    match = None if spec is None else FORMAT.match(spec)
    if number is None or match is None:
        return _plain(value)
    m = match.groupdict()
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_UP
        ctx.prec = 60
        digits, suffix = _digits(abs(number), m["type"] or "", m["precision"])
    if m["trim"] or not m["type"]:
        digits = _trim(digits)
    if m["comma"]:
        digits = _group(digits)
    negative = number < 0 and any(c in "123456789" for c in digits.partition("e")[0])
    prefix = (currency or "$") if m["symbol"] == "$" else ""
    sign = m["sign"] or "-"
    if negative:
        lead, trail = ("(", ")") if sign == "(" else ("-", "")
    else:
        lead, trail = {"+": ("+", ""), " ": (" ", "")}.get(sign, ("", ""))
    text = f"{lead}{prefix}{digits}{suffix}{trail}"
    width = int(m["width"] or 0)
    if len(text) < width:
        fill = "0" if m["zero"] else m["fill"] or " "
        align = "=" if m["zero"] else m["align"] or ">"
        pad = width - len(text)
        if align == "<":
            text += fill * pad
        elif align == "^":
            text = fill * (pad // 2) + text + fill * (pad - pad // 2)
        elif align == "=":
            head = lead + prefix
            text = head + fill * pad + text[len(head) :]
        else:
            text = fill * pad + text
    return text


def _digits(x: Decimal, kind: str, precision: str | None) -> tuple[str, str]:
    """The digits of a non-negative number for a d3 type, and a suffix (`%`, SI prefix)."""
    p = None if precision is None else int(precision)
    if kind == "%":
        return f"{x * 100:.{6 if p is None else p}f}", "%"
    if kind == "f":
        return f"{x:.{6 if p is None else p}f}", ""
    if kind == "d":
        return f"{x.quantize(Decimal(1)):f}", ""
    if kind == "e":
        text = f"{x:.{6 if p is None else p}e}"
        mantissa, _, exponent = text.partition("e")
        return f"{mantissa}e{int(exponent):+d}", ""
    if kind == "s":
        significant = 6 if p is None else max(1, p)
        rounded = Decimal(_significant(x, significant))  # 999.9 -> 1000 -> 1.00k
        power = 0 if x == 0 else (rounded.adjusted() // 3) * 3
        power = max(-24, min(24, power))
        return _significant(rounded.scaleb(-power), significant), SI[power]
    if kind == "" and p is None:
        return f"{x.normalize():f}", ""
    return _significant(x, 12 if p is None else max(1, p)), ""  # g, r, none


def _significant(x: Decimal, digits: int) -> str:
    """`x` rounded to `digits` significant digits, in fixed notation, zeros kept."""
    if x == 0:
        return "0" + ("." + "0" * (digits - 1) if digits > 1 else "")
    exponent = x.adjusted()  # the power of ten of the first digit
    rounded = x.quantize(Decimal(1).scaleb(exponent - digits + 1))
    if rounded.adjusted() > exponent:  # 9.99 -> 10.0: one digit fewer after the point
        rounded = rounded.quantize(Decimal(1).scaleb(exponent - digits + 2))
    return f"{rounded:f}"


def _plain(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def json_value(value: Any) -> Any:
    """A value as JSON for Vega: decimals as numbers, times as local ISO text (no zone,
    so the browser reads them as written), NaN as null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()).isoformat()
    if isinstance(value, dt.time | dt.timedelta | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)


def field(name: str) -> str:
    """A column name as a Vega-Lite field: dots and brackets are not paths."""
    return re.sub(r"([.\[\]\\])", r"\\\1", name)


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_date(dtype) or pa.types.is_timestamp(dtype):
        return "temporal"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "quantitative"
    return "nominal"


def number_format(panel: Panel, column: str) -> str | None:
    """The d3-format of a column: `formats[column]`, else `format` for the y columns, else
    `$,.2f` for the y columns when only `currency` is set."""
    if column in panel.formats:
        return panel.formats[column]
    if column in panel.ys:
        return panel.format or ("$,.2f" if panel.currency else None)
    return None


def missing_columns(panel: Panel, columns: list[str]) -> list[str]:
    """The panel's x, y and series columns that the result does not have."""
    wanted = [c for c in (panel.x, *panel.ys, panel.series) if c]
    return [c for c in wanted if c not in columns]


def tick_spec(spec: str) -> str:
    """An axis's format: fixed-point and percent formats lose their precision, so Vega
    picks one that suits the tick step (£2,000 rather than £2,000.00; £0.5 when needed)."""
    return re.sub(r"\.\d+(?=~?[f%]$)", "", spec)


def label(column: str) -> str:
    """A column name as an axis or legend title: `branch_name` reads `branch name`."""
    return column.replace("_", " ")


def vega_lite(panel: Panel, table: pa.Table) -> dict[str, Any]:
    """The Vega-Lite spec of a chart panel (line, bar, stacked_bar, area, pie, donut)."""
    missing = missing_columns(panel, table.column_names)
    if missing:
        raise ValueError(
            f"column {missing[0]!r} is not in the result of the panel's SQL "
            f"(columns: {', '.join(table.column_names)})"
        )
    assert panel.x is not None and panel.ys, "validated at load"
    schema = {f.name: f.type for f in table.schema}
    values = [{k: json_value(v) for k, v in row.items()} for row in table.to_pylist()]
    config: dict[str, Any] = {
        "view": {"stroke": None},
        "axis": {"labelLimit": 220, "labelOverlap": True},
        "legend": {"orient": "bottom"},
    }
    if panel.currency:
        number = {"decimal": ".", "thousands": ",", "grouping": [3]}
        config["locale"] = {"number": {**number, "currency": [panel.currency, ""]}}
    horizontal = panel.horizontal and panel.chart in ("bar", "stacked_bar")
    spec: dict[str, Any] = {
        "description": panel.description or panel.title,
        "data": {"values": values},
        "width": "container",
        "height": _bars_height(panel, table) if horizontal else HEIGHT,
        "autosize": {"type": "fit", "contains": "padding"},
        "config": config,
    }
    folded = len(panel.ys) > 1
    y_name = VALUE if folded else panel.ys[0]
    y_format = number_format(panel, panel.ys[0])
    if folded:
        spec["transform"] = [{"fold": [field(y) for y in panel.ys], "as": [SERIES, VALUE]}]
    color_name = SERIES if folded else panel.series
    y_title = panel.y_title or ("" if folded else label(panel.ys[0]))
    y_enc: dict[str, Any] = {"field": field(y_name), "type": "quantitative", "title": y_title}
    tick_format = y_format if panel.format or panel.ys[0] in panel.formats else None
    if tick_format or panel.currency:
        y_enc["axis"] = {"format": tick_spec(tick_format or "$,f")}
    x_title = panel.x_title or label(panel.x)
    x_kind = _kind(schema[panel.x])
    is_date = pa.types.is_date(schema[panel.x])
    if panel.chart in ("pie", "donut"):
        mark: dict[str, Any] = {"type": "arc", "tooltip": True}
        if panel.chart == "donut":
            mark["innerRadius"] = DONUT_INNER
        spec["mark"] = mark
        spec["encoding"] = {
            "theta": {"field": field(y_name), "type": "quantitative", "stack": True},
            "color": {"field": field(panel.x), "type": "nominal", "title": x_title, "sort": None},
            "order": {"field": field(y_name), "type": "quantitative", "sort": "descending"},
            "tooltip": [
                {"field": field(panel.x), "type": "nominal", "title": x_title},
                {"field": field(y_name), "type": "quantitative", "title": y_title} | _fmt(y_format),
                *_other_tips(panel, schema),
            ],
        }
        return spec
    x_enc: dict[str, Any] = {"field": field(panel.x), "title": x_title}
    if panel.chart in ("bar", "stacked_bar"):
        x_enc["type"] = "nominal" if x_kind == "nominal" else "ordinal"  # one band per value
        spec["mark"] = {"type": "bar", "tooltip": True}
    else:
        x_enc["type"] = x_kind
        line = {"type": "line", "point": True, "tooltip": True}
        spec["mark"] = line if panel.chart == "line" else {**line, "type": "area", "line": True}
        if panel.chart == "area":
            spec["mark"].pop("point")
            y_enc["stack"] = "zero"
    if x_enc["type"] in ("nominal", "ordinal"):
        x_enc["sort"] = None  # the query's order
    if x_kind == "temporal" and is_date:
        x_enc["timeUnit"] = _time_unit(table.column(panel.x).to_pylist())
    encoding: dict[str, Any] = {"x": x_enc, "y": y_enc}
    tooltip = [{k: v for k, v in x_enc.items() if k in ("field", "type", "timeUnit", "title")}]
    if color_name:
        color_title = "" if folded else label(color_name)
        encoding["color"] = {
            "field": field(color_name),
            "type": "nominal",
            "title": color_title,
            "sort": None,
        }
        tooltip.append({"field": field(color_name), "type": "nominal", "title": color_title})
        if panel.chart == "bar":  # bars side by side; stacked_bar and area stack
            encoding["xOffset"] = {"field": field(color_name), "sort": None}
            y_enc["stack"] = None
        elif panel.chart == "stacked_bar":
            y_enc["stack"] = "zero"
    tip_title = y_title or VALUE
    tooltip.append(
        {"field": field(y_name), "type": "quantitative", "title": tip_title, **_fmt(y_format)}
    )
    if not folded:
        tooltip += _other_tips(panel, schema)
    encoding["tooltip"] = tooltip
    if horizontal:
        y_enc["axis"] = {**y_enc.get("axis", {}), "tickCount": 5}  # room for long labels
        encoding["x"], encoding["y"] = encoding["y"], encoding["x"]
        if "xOffset" in encoding:
            encoding["yOffset"] = encoding.pop("xOffset")
    spec["encoding"] = encoding
    return spec


def _time_unit(days: list[Any]) -> str:
    """Days on a date axis: one per month when every date is a month's first day
    (`date_trunc('month', ...)`), else one per day."""
    present = [d for d in days if isinstance(d, dt.date)]
    monthly = bool(present) and all(d.day == 1 for d in present) and len(set(present)) > 1
    return "yearmonth" if monthly else "yearmonthdate"


def _bars_height(panel: Panel, table: pa.Table) -> int:
    """A horizontal bar chart's height: a band of 22 px per category (more when bars of
    several series stand side by side), and room for the axis."""
    assert panel.x is not None
    categories = len(set(table.column(panel.x).to_pylist()))
    side_by_side = panel.chart == "bar" and (panel.series or len(panel.ys) > 1)
    if side_by_side:
        series = (
            len(panel.ys) if len(panel.ys) > 1 else len(set(table.column(panel.series).to_pylist()))
        )
        band = 8 + 14 * max(1, series)
    else:
        band = 22
    return max(80, categories * band)


def _other_tips(panel: Panel, schema: Mapping[str, pa.DataType]) -> list[dict[str, Any]]:
    """Tooltip lines for the result's other columns (e.g. transactions beside revenue)."""
    shown = {panel.x, *panel.ys, panel.series}
    tips: list[dict[str, Any]] = []
    for name, dtype in schema.items():
        if name in shown:
            continue
        kind = _kind(dtype)
        tip: dict[str, Any] = {"field": field(name), "type": kind, "title": label(name)}
        spec = number_format(panel, name)
        if spec and kind == "quantitative":
            tip["format"] = spec
        tips.append(tip)
    return tips


def _fmt(spec: str | None) -> dict[str, str]:
    return {"format": spec} if spec else {}
