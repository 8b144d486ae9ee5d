"""`format: jsonl`: one JSON object per line, flattened into columns, parsed in DuckDB.

- Blank lines are counted and skipped; every other line is a record.
- A line that is not valid JSON is rejected (rule `json`), as is one that
  holds something other than an object (an array, a string...).
- Keys become columns in snake case; a nested object's keys are joined to
  its own with `_` (`{"http": {"statusCode": 200}}` gives `http_status_code`).
  A key holding an object in some lines and something else in others, an
  array, or an empty object is one column holding the JSON text. Scalars are
  text (`true`, `12.5`); JSON `null` is NULL. Keys that give the same column
  name are merged (the first non-NULL in key order).
- The columns are those of the keys seen in the chunk: a key that appears
  in later files becomes a new column of the table (NULL in earlier rows).

DuckDB finds the keys of all lines at once (`json_group_structure`) and
extracts every path of a line in one call (`json_extract_string` with a list
of paths), on a private connection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from headwater.config import PiiPolicy
from headwater.config_formats import JsonLinesOptions
from headwater.sources import fieldtypes
from headwater.sources.csvparse import ParsedChunk
from headwater.sources.textlines import Lines, TextPiece, counts
from headwater.sources.textnames import snake_name
from headwater.sql import literal, quote_ident


def _paths(structure: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Leaf key paths of a `json_group_structure` result: objects are walked, all else is a leaf."""
    out: list[tuple[str, ...]] = []
    if not isinstance(structure, dict):  # only empty objects: no keys at all
        return out
    for key, value in structure.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            out += _paths(value, path)
        else:
            out.append(path)
    return out


def _json_path(path: tuple[str, ...]) -> str:
    parts = ".".join('"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in path)
    return f"$.{parts}"


def parse_jsonl(
    pieces: list[TextPiece], options: JsonLinesOptions, pii: Mapping[str, PiiPolicy]
) -> ParsedChunk:
    """Rows and rejects of some pieces; `rows` has `_fidx`, `_line` and one column per key path."""
    lines = Lines(pieces)
    content = np.flatnonzero(~lines.blank)
    skip = frozenset(c for c, p in pii.items() if p.policy == "drop")
    errors = np.array([p.error or "" for p in pieces], dtype=str)
    table = pa.table(
        {
            "_fidx": pa.array(lines.piece[content], pa.int32()),
            "_line": pa.array(lines.number[content], pa.int64()),
            "_bad_file": pa.array(errors[lines.piece[content]], pa.string()),
            "j": lines.text(content),
        }
    )
    with fieldtypes.connect() as conn:
        conn.register("__hw_lines", table)
        conn.execute(
            "CREATE TEMP TABLE __hw_json AS SELECT _fidx, _line, _bad_file, "
            "TRY_CAST(j AS JSON) AS doc FROM __hw_lines"
        ).fetchall()
        conn.unregister("__hw_lines")
        del table
        rejects = conn.execute(
            "SELECT _fidx, _line, "
            "CASE WHEN _bad_file <> '' THEN 'encoding' ELSE 'json' END AS rule, "
            "CASE WHEN _bad_file <> '' THEN 'file is ' || _bad_file "
            "WHEN doc IS NULL THEN 'line is not valid JSON' "
            "ELSE 'line holds a JSON ' || lower(json_type(doc)) || ', not an object' END AS reason "
            "FROM __hw_json WHERE _bad_file <> '' OR doc IS NULL OR json_type(doc) <> 'OBJECT'"
        ).to_arrow_table()
        conn.execute(
            "DELETE FROM __hw_json WHERE _bad_file <> '' OR doc IS NULL "
            "OR json_type(doc) <> 'OBJECT'"
        ).fetchall()
        [(structure,)] = conn.execute("SELECT json_group_structure(doc) FROM __hw_json").fetchall()
        paths = _paths(json.loads(structure)) if structure else []
        names = ["_".join(snake_name(k) for k in p) for p in paths]
        fields = options.fields
        columns: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            columns.setdefault(name, []).append(i + 1)
        for name in [*fields, *pii]:
            columns.setdefault(name, [])
        select = []
        for name, positions in columns.items():
            if name in skip:
                continue
            values = [f"__hw_v[{i}]" for i in positions]
            expr = (
                "NULL::VARCHAR"
                if not values
                else values[0]
                if len(values) == 1
                else f"coalesce({', '.join(values)})"
            )
            select.append(f"{expr} AS {quote_ident(name)}")
        listing = ", ".join(literal(_json_path(p)) for p in paths)
        extract = f"json_extract_string(doc, [{listing}])" if paths else "[]::VARCHAR[]"
        rows = conn.execute(
            f"SELECT _fidx, _line{''.join(', ' + s for s in select)} "
            f"FROM (SELECT _fidx, _line, {extract} AS __hw_v FROM __hw_json) ORDER BY _fidx, _line"
        ).to_arrow_table()
        rows = rows.cast(
            pa.schema(
                [
                    pa.field("_fidx", pa.int32()),
                    pa.field("_line", pa.int64()),
                    *(f for f in rows.schema if not f.name.startswith("_")),
                ]
            )
        )
        rows, type_rejects = fieldtypes.apply_types(conn, rows, fields, set(pii))
    rejects = pa.concat_tables([rejects.cast(fieldtypes.REJECT_SCHEMA), type_rejects])
    return ParsedChunk(
        rows=rows, rejects=rejects, counts=counts(lines, rows, rejects), columns=list(columns)
    )
