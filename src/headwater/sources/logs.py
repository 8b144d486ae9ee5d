"""`format: log`: text lines to records to fields, as configured (`LogOptions`).

1. Lines (`textlines.Lines`): blank lines are counted and skipped.
2. Records: with `separator`, a line matching it ends a record (and is not
   data); with `start`, a line matching it begins one; with neither, every
   line is a record. A record never spans files. Its line number is that of
   its first non-blank line.
3. Fields: each pattern is searched (RE2, Arrow's `extract_regex`) in the
   lines it applies to (`line: 1` the first line of each record, `any`
   every line); the first line of a record it matches gives its named
   groups. With `pairs`, the `key=value` pairs of every line (`pairs.py`)
   add one column per key, named in snake case (`TicketID` -> `ticket_id`);
   a pattern's group wins over a pair of the same name, the first of
   repeated keys wins. With `rest`, the lines of a record that no pattern
   matches and that hold no pair are joined into that field.
4. Rejects (one per record, the first rule it breaks, in this order):
   `encoding` (the file does not decode), `unbalanced_quote` (a quoted value
   not closed on its line), `unmatched_line` (a line no pattern matches and,
   with pairs, holding no pair), `pattern` (no line matches a pattern that is
   not optional), `type` (a value that does not convert, `fieldtypes.py`).

Every step is a numpy or Arrow operation over all lines or records of a
chunk; Python loops run over patterns and distinct keys only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.config import PiiPolicy
from headwater.config_formats import LogOptions, to_re2
from headwater.sources import fieldtypes, pairs
from headwater.sources.csvparse import ParsedChunk
from headwater.sources.spans import grouped
from headwater.sources.textlines import BoolArray, IntArray, Lines, TextPiece, counts, to_bool
from headwater.sources.textnames import snake_name


class _Records:
    """Which content line belongs to which record."""

    def __init__(self, lines: Lines, options: LogOptions) -> None:
        nonblank = np.flatnonzero(~lines.blank)
        self.separators = np.zeros(len(lines), dtype=bool)
        if options.separator is not None:
            self.separators[nonblank] = lines.match(nonblank, to_re2(options.separator))
            content = nonblank[~self.separators[nonblank]]
        else:
            content = nonblank
        self.lines: IntArray = content  # line index of each content line
        piece = lines.piece[content]
        new = np.ones(len(content), dtype=bool)
        if options.separator is not None:
            seps = np.cumsum(self.separators)[content]
            new[1:] = (seps[1:] != seps[:-1]) | (piece[1:] != piece[:-1])
        elif options.start is not None:
            new = lines.match(content, to_re2(options.start))
            if len(new):
                new[0] = True
                new[1:] |= piece[1:] != piece[:-1]
        self.of_line: IntArray = np.cumsum(new, dtype=np.int64) - 1  # record of each content line
        self.first: IntArray = np.flatnonzero(new)  # content position of each record's first line
        self.rank: IntArray = np.arange(len(content), dtype=np.int64) - self.first[self.of_line]
        self.count = len(self.first)
        self.piece = lines.piece[content[self.first]]
        self.number = lines.number[content[self.first]]


def _expand(values: pa.Array, idx: IntArray) -> pa.Array:
    """`values[idx]` with NULL where idx < 0."""
    return values.take(pa.array(idx, mask=idx < 0))


def _first_per_record(records: IntArray) -> BoolArray:
    """For non-decreasing record ids: the first occurrence of each."""
    first = np.ones(len(records), dtype=bool)
    if len(records) > 1:
        first[1:] = records[1:] != records[:-1]
    return first


class _Fields:
    """Columns being assembled, one value per record."""

    def __init__(self, count: int, skip: frozenset[str]) -> None:
        self.count = count
        self.skip = skip
        self.columns: dict[str, pa.Array] = {}
        self.names: list[str] = []  # every field seen, including skipped ones

    def add(self, name: str, column: pa.Array | None) -> None:
        """A column for `name`; an existing one keeps its values, the new one fills its gaps."""
        if name not in self.names:
            self.names.append(name)
        if name in self.skip or column is None:
            return
        old = self.columns.get(name)
        self.columns[name] = column if old is None else pc.coalesce(old, column)


def _apply_patterns(
    lines: Lines, records: _Records, options: LogOptions, fields: _Fields, used: BoolArray
) -> list[tuple[int, BoolArray]]:
    """Cut pattern groups out of lines; returns (number, records matched) of required patterns."""
    required = []
    texts: dict[int | str, tuple[IntArray, pa.Array]] = {}  # by `line`: lines and their text
    for number, pattern in enumerate(options.all_patterns(), start=1):
        if pattern.line not in texts:
            if pattern.line == "any":
                cand = np.arange(len(records.lines), dtype=np.int64)
            else:
                cand = np.flatnonzero(records.rank == pattern.line - 1)
            texts[pattern.line] = (cand, lines.text(records.lines[cand]))
        cand, text = texts[pattern.line]
        found = pc.extract_regex(text, pattern.re2)
        matched = to_bool(found.is_valid())
        used[records.lines[cand[matched]]] = True
        hit = np.flatnonzero(matched)
        recs = records.of_line[cand[hit]]
        first = _first_per_record(recs)
        idx = np.full(records.count, -1, dtype=np.int64)
        idx[recs[first]] = hit[first]
        for i, name in enumerate(pattern.names):
            column = None
            if name not in fields.skip:
                column = _expand(found.field(i), idx)
            fields.add(name, column)
        if not pattern.optional:
            required.append((number, idx >= 0))
    return required


def _apply_pairs(
    lines: Lines, records: _Records, options: LogOptions, fields: _Fields, used: BoolArray
) -> BoolArray:
    """One column per distinct key (snake case); returns the lines with an unclosed quote.

    The values are cut out once, in text order (one pass over the bytes), then
    put in column order with one `take`; each column is a slice of that.
    """
    assert options.pairs is not None
    record_of = np.full(len(lines), -1, dtype=np.int64)
    record_of[records.lines] = records.of_line
    native = pairs.scan_records(lines, record_of, options.pairs)
    if native is not None:
        names = [snake_name(k) for k in native.keys.to_pylist()]
        if len(set(names)) == len(names):  # else two keys share a column: first-wins per column
            used |= native.used
            _native_columns(records, fields, native, names, lines)
            return native.unbalanced
    content = np.zeros(len(lines), dtype=bool)
    content[records.lines] = True
    found = pairs.scan(lines, content, options.pairs)
    used[found.line] = True
    if not len(found):
        return found.unbalanced
    pair_record = record_of[found.line]
    names = [snake_name(k) for k in found.keys.to_pylist()]
    distinct = list(dict.fromkeys(names))  # first-appearance order (the dictionary's order)
    column_of_key = np.array([distinct.index(n) for n in names], dtype=np.int64)
    column = column_of_key[found.key]
    skipped = np.array([n in fields.skip for n in distinct], dtype=bool)
    order = np.argsort(
        column.astype(np.int16 if len(distinct) < 2**15 else np.int64), kind="stable"
    )
    by_column = column[order]
    bounds = np.searchsorted(by_column, np.arange(len(distinct) + 1))
    # The first pair of each column in each record (records ascend within a column).
    recs = pair_record[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (recs[1:] != recs[:-1]) | (by_column[1:] != by_column[:-1])
    first &= ~skipped[by_column]
    chosen = order[first]  # column by column
    wanted = np.zeros(len(found), dtype=bool)
    wanted[chosen] = True
    in_text = np.cumsum(wanted, dtype=np.int64) - 1  # index among the wanted, in text order
    values = found.values(lines, np.flatnonzero(wanted))
    if len(values):
        values = values.take(pa.array(in_text[chosen]))
    starts = np.concatenate(([0], np.cumsum(first, dtype=np.int64)))[bounds]
    for j, name in enumerate(distinct):
        if skipped[j]:
            fields.add(name, None)
            continue
        lo, hi = int(starts[j]), int(starts[j + 1])
        column_values = values.slice(lo, hi - lo)
        if hi - lo == records.count:  # every record has the key: already in record order
            fields.add(name, column_values)
            continue
        idx = np.full(records.count, -1, dtype=np.int64)
        idx[pair_record[chosen[lo:hi]]] = np.arange(hi - lo, dtype=np.int64)
        fields.add(name, _expand(column_values, idx))
    return found.unbalanced


def _native_columns(
    records: _Records, fields: _Fields, found: pairs.RecordPairs, names: list[str], lines: Lines
) -> None:
    """One column per key from the compiled scan (already one pair per key and record)."""
    record, start, end, escaped, bounds = grouped(
        found.code, len(names), found.record, found.value_start, found.value_end, found.escaped
    )
    for j, name in enumerate(names):
        if name in fields.skip:
            fields.add(name, None)
            continue
        lo, hi = int(bounds[j]), int(bounds[j + 1])  # the key's pairs, in text order
        values = pairs.span_values(lines, start[lo:hi], end[lo:hi], escaped[lo:hi], found.escape)
        if hi - lo == records.count:  # every record has the key: already in record order
            fields.add(name, values)
            continue
        idx = np.full(records.count, -1, dtype=np.int64)
        idx[record[lo:hi]] = np.arange(hi - lo, dtype=np.int64)
        fields.add(name, _expand(values, idx))


def _rest(lines: Lines, records: _Records, unused: BoolArray) -> pa.Array:
    """Per record, its unmatched lines joined by newlines (NULL when it has none)."""
    positions = np.flatnonzero(unused[records.lines])
    recs = records.of_line[positions]
    first = _first_per_record(recs)
    starts = np.flatnonzero(first)
    offsets = np.append(starts, len(positions)).astype(np.int32)
    joined = pc.binary_join(
        pa.ListArray.from_arrays(pa.array(offsets), lines.text(records.lines[positions])), "\n"
    )
    idx = np.full(records.count, -1, dtype=np.int64)
    idx[recs[first]] = np.arange(len(starts), dtype=np.int64)
    return _expand(joined, idx)


def _rejects(
    lines: Lines,
    records: _Records,
    bad_lines: Mapping[str, BoolArray],
    required: list[tuple[int, BoolArray]],
    pieces: list[TextPiece],
    has_pairs: bool,
) -> tuple[BoolArray, pa.Table]:
    """Which records are rejected, and one reject row per record: its first broken rule."""
    rejected = np.zeros(records.count, dtype=bool)
    parts: list[pa.Table] = []

    def add(mask: BoolArray, rule: str, reasons: npt.NDArray[np.str_]) -> None:
        """Reject `mask`ed records not rejected yet; `reasons` has one text per record."""
        new = mask & ~rejected
        rejected[new] = True
        if new.any():
            count = int(new.sum())
            parts.append(
                pa.table(
                    {
                        "_fidx": pa.array(records.piece[new], pa.int32()),
                        "_line": pa.array(records.number[new], pa.int64()),
                        "rule": pa.array(np.full(count, rule), pa.string()),
                        "reason": pa.array(reasons[new], pa.string()),
                    }
                )
            )

    errors = np.array([p.error or "" for p in pieces], dtype=str)
    if (errors != "").any():
        of_record = errors[records.piece]
        add(of_record != "", "encoding", np.char.add("file is ", of_record))
    for rule, flagged in bad_lines.items():
        if not flagged.any():
            continue
        positions = np.flatnonzero(flagged[records.lines])
        recs = records.of_line[positions]
        first = _first_per_record(recs)
        mask = np.zeros(records.count, dtype=bool)
        mask[recs[first]] = True
        numbers = np.zeros(records.count, dtype=np.int64)
        numbers[recs[first]] = lines.number[records.lines[positions[first]]]
        if rule == "unbalanced_quote":
            tail = ": a quoted value is not closed on its line"
        else:
            tail = " matches no pattern" + (" and holds no key=value pair" if has_pairs else "")
        add(mask, rule, np.char.add(np.char.add("line ", numbers.astype(str)), tail))
    for number, matched in required:
        add(~matched, "pattern", np.full(records.count, f"no line matches pattern {number}"))
    table = pa.concat_tables(parts) if parts else fieldtypes.REJECT_SCHEMA.empty_table()
    return rejected, table


def parse_log(
    pieces: list[TextPiece], options: LogOptions, pii: Mapping[str, PiiPolicy]
) -> ParsedChunk:
    """Records and rejects of some pieces (each a file or part of one), accounting for every line.

    `rows` has `_fidx` (index into `pieces`), `_line` (first line of the
    record) and one column per field. Fields of a `drop` PII policy are never
    cut out; fields the patterns, `fields` or `pii` name are always present
    (NULL where no line had them), so a chunk's columns do not depend on luck.
    """
    lines = Lines(pieces)
    records = _Records(lines, options)
    skip = frozenset(c for c, p in pii.items() if p.policy == "drop")
    fields = _Fields(records.count, skip)
    used = np.zeros(len(lines), dtype=bool)
    required = _apply_patterns(lines, records, options, fields, used)
    bad_lines: dict[str, BoolArray] = {}
    if options.pairs is not None:
        bad_lines["unbalanced_quote"] = _apply_pairs(lines, records, options, fields, used)
    unused = np.zeros(len(lines), dtype=bool)
    unused[records.lines] = ~used[records.lines]
    if options.rest is not None:
        fields.add(options.rest, _rest(lines, records, unused))
    else:
        bad_lines["unmatched_line"] = unused
    rejected, rejects = _rejects(
        lines, records, bad_lines, required, pieces, options.pairs is not None
    )
    typed = options.all_fields()
    for name in [*options.static_columns(), *pii]:
        absent = name not in fields.columns
        fields.add(name, pa.nulls(records.count, pa.string()) if absent else None)
    keep = ~rejected
    columns = fields.columns
    if rejected.any():
        mask = pa.array(keep)
        columns = {n: c.filter(mask) for n, c in columns.items()}
    table = pa.table(
        {
            "_fidx": pa.array(records.piece[keep], pa.int32()),
            "_line": pa.array(records.number[keep], pa.int64()),
            **columns,
        }
    )
    rows, type_rejects = fieldtypes.typed(table, typed, set(pii))
    rejects = pa.concat_tables([rejects, type_rejects])
    return ParsedChunk(
        rows=rows, rejects=rejects, counts=counts(lines, rows, rejects), columns=fields.names
    )
