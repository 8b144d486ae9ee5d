"""CSV text to Arrow columns, with the physical line number of every row.

Real drops are damaged: headers added by hand (sometimes several), blank
lines, CRLF, a byte-order mark, padding, lines with too few fields. Every
line must end up somewhere: a row, a header, a blank, or a reject with its
line number and reason. General CSV readers cannot promise that (one stray
quote swallows the rest of a file), so this module splits lines itself,
vectorised with numpy over the bytes of many files at once:

1. files are normalised (encoding to UTF-8, BOM removed, final newline added)
   and concatenated into one buffer;
2. newline, quote and delimiter positions are found with numpy; a delimiter
   separates fields when an even number of quotes precede it on its line;
3. lines with unbalanced quotes or the wrong number of fields are rejected,
   blank lines and header lines counted;
4. each column is cut out of the buffer by building an Arrow string array
   whose offsets point at the field boundaries, then `take`-ing every other
   element: no Python loop over rows.

A record never spans lines (quoted line breaks are not supported; such a
line is rejected with "unbalanced quote").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.config import CsvOptions
from headwater.sources.spans import strings

BOM = b"\xef\xbb\xbf"
HEADER_SCAN_LINES = 20
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RawText:
    """One file's bytes as delivered."""

    name: str
    data: bytes | bytearray


@dataclass
class FileCounts:
    """What became of every line of one file."""

    lines: int = 0
    rows: int = 0
    rejected: int = 0
    header_lines: int = 0
    blank_lines: int = 0


@dataclass
class ParsedChunk:
    """Rows and rejects of several files.

    `rows` has `_fidx` (index into the chunk's files), `_line` (1-based
    physical line) and one string column per CSV column. `rejects` has
    `_fidx`, `_line`, `rule` (`field_count`, `unbalanced_quote`, `encoding`)
    and `reason`.
    """

    rows: pa.Table
    rejects: pa.Table
    counts: list[FileCounts]
    columns: list[str]


def normalise(data: bytes | bytearray, encoding: str) -> tuple[bytes | bytearray, str | None]:
    """Bytes as UTF-8 without BOM and with a final newline, or an error message.

    A `bytearray` is given its final newline in place (no copy of the file when
    it has room for one more byte, as the stage's reads leave): pass a copy to
    keep the original as it was.
    """
    enc = encoding.lower().replace("_", "-")
    if enc in ("utf-8", "utf8", "utf-8-sig"):
        bom = len(BOM) if data.startswith(BOM) else 0
        if bom:
            data = data[bom:]
        if not data.isascii() and not _valid_utf8(data):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                offset = exc.start + bom
                return b"", f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {offset}"
    else:
        try:
            data = data.decode(encoding).encode("utf-8").removeprefix(BOM)
        except UnicodeDecodeError as exc:
            return b"", f"not valid {encoding}: byte 0x{data[exc.start]:02x} at offset {exc.start}"
    if data and not data.endswith(b"\n"):
        data += b"\n"
    return data, None


def _valid_utf8(data: bytes | bytearray) -> bool:
    """Whether the bytes are UTF-8 (Arrow's validation: many times faster than decoding)."""
    offsets = np.array([0, len(data)], dtype=np.int64)
    text = pa.LargeStringArray.from_buffers(1, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def header_names(fields: list[str]) -> list[str]:
    """Column names from header fields: lower case, non-alphanumerics to `_`."""
    names: list[str] = []
    for i, field in enumerate(fields):
        name = re.sub(r"[^0-9a-z]+", "_", field.strip().strip('"').lower()).strip("_")
        if not name or name[0].isdigit():
            name = f"column_{i + 1}"
        while name in names:
            name += "_"
        names.append(name)
    return names


class _Lines:
    """Line geometry of one buffer: starts, ends (without CR/LF), file and number of each line."""

    def __init__(
        self, buf: npt.NDArray[np.uint8], newlines: IntArray, file_starts: IntArray
    ) -> None:
        self.starts = np.concatenate(([0], newlines[:-1] + 1)).astype(np.int64)[: len(newlines)]
        has_cr = np.zeros(len(newlines), dtype=bool)
        nonempty = newlines > self.starts
        has_cr[nonempty] = buf[newlines[nonempty] - 1] == 13
        self.ends = newlines - has_cr
        self.file = (np.searchsorted(file_starts, self.starts, side="right") - 1).astype(np.int32)
        first_line = np.searchsorted(self.starts, file_starts)
        self.number = np.arange(len(self.starts), dtype=np.int64) - first_line[self.file] + 1

    def __len__(self) -> int:
        return len(self.starts)


@dataclass
class _Geometry:
    fields: IntArray  # fields per line
    quotes: IntArray  # quote characters per line
    dpos: IntArray  # separating delimiter positions, sorted
    dline: IntArray  # line of each separating delimiter
    qpos: IntArray  # quote positions, sorted

    def quotes_between(self, left: IntArray, right: IntArray) -> IntArray:
        return np.searchsorted(self.qpos, right) - np.searchsorted(self.qpos, left)


def _scan(
    buf: npt.NDArray[np.uint8], file_starts: IntArray, delim: int, quote: int
) -> tuple[_Lines, _Geometry]:
    """Lines and field boundaries from one pass over the bytes.

    Newlines, delimiters and quotes are found together ("events"); running
    counts over the events give each delimiter its line and the number of
    quotes before it on that line. A delimiter separates fields when that
    number is even. Everything is linear in the number of events.
    """
    events = np.flatnonzero((buf == 10) | (buf == delim) | (buf == quote))
    kind = buf[events]
    is_nl, is_delim, is_quote = kind == 10, kind == delim, kind == quote
    nl_before = np.cumsum(is_nl, dtype=np.int64) - is_nl  # line index of each event
    quotes_upto = np.cumsum(is_quote, dtype=np.int64)  # quotes at or before each event
    newline_events = np.flatnonzero(is_nl)
    lines = _Lines(buf, events[newline_events].astype(np.int64), file_starts)
    quotes_at_eol = quotes_upto[newline_events]
    quotes_before_line = np.concatenate(([0], quotes_at_eol[:-1]))
    quotes = quotes_at_eol - quotes_before_line
    dline = nl_before[is_delim]
    separating = ((quotes_upto[is_delim] - quotes_before_line[dline]) & 1) == 0
    dpos = events[is_delim][separating].astype(np.int64)
    dline = dline[separating]
    fields = np.bincount(dline, minlength=len(lines)).astype(np.int64) + 1
    qpos = events[is_quote].astype(np.int64)
    return lines, _Geometry(fields, quotes, dpos, dline, qpos)


_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 32]] = True


def _cut_column(
    raw: pa.Buffer,
    buf: npt.NDArray[np.uint8],
    geo: _Geometry,
    left: IntArray,
    right: IntArray,
    options: CsvOptions,
) -> pa.Array:
    """One column: quoted fields unquoted, padding trimmed, straight from the bytes."""
    quote = ord(options.quote)
    start = left.copy()  # where the field begins, padding included
    nonempty = right > left
    first = np.where(nonempty, buf[np.minimum(left, len(buf) - 1)], 0)
    last = np.where(nonempty, buf[np.maximum(right - 1, 0)], 0)
    lead_space = nonempty & _SPACE[first]
    if lead_space.any():  # `  "x"`: look past the padding for an opening quote
        sel = np.flatnonzero(lead_space)
        text = strings(raw, left[sel], right[sel])
        stripped = pc.utf8_ltrim(text, characters=" \t")
        pad = pc.subtract(pc.binary_length(text), pc.binary_length(stripped))
        left[sel] += np.asarray(pad.to_numpy(zero_copy_only=False), dtype=np.int64)
        nonempty = right > left
        first = np.where(nonempty, buf[np.minimum(left, len(buf) - 1)], 0)
    quoted = nonempty & (first == quote)
    if quoted.any():
        quoted[quoted] = geo.quotes_between(left[quoted], right[quoted]) >= 2
    # Unquoted fields keep their padding unless trimming; quoted ones lose what is
    # outside their quotes.
    lo, hi = np.where(quoted | options.trim, left, start), right.copy()
    doubled = np.zeros(len(left), dtype=bool)
    if quoted.any():
        q = np.flatnonzero(quoted)
        # The closing quote is the last quote in the field; padding may follow it.
        count = geo.quotes_between(left[q], right[q])
        lo[q] = left[q] + 1
        hi[q] = geo.qpos[np.searchsorted(geo.qpos, right[q]) - 1]
        doubled[q] = count > 2
    column = strings(raw, lo, hi)
    if doubled.any():
        column = pc.if_else(
            pa.array(doubled),
            pc.replace_substring(column, options.quote * 2, options.quote),
            column,
        )
    if options.trim:
        pad = (nonempty & _SPACE[last]) | lead_space | (quoted & (hi < right))
        if quoted.any():
            inner_first = buf[np.minimum(lo, len(buf) - 1)]
            inner_last = buf[np.maximum(hi - 1, 0)]
            pad |= quoted & (hi > lo) & (_SPACE[inner_first] | _SPACE[inner_last])
        if pad.any():
            column = pc.if_else(pa.array(pad), pc.utf8_trim(column, characters=" \t"), column)
    return column


def parse_chunk(
    files: list[RawText],
    options: CsvOptions,
    columns: list[str],
    skip: frozenset[str] = frozenset(),
) -> ParsedChunk:
    """Split the files into rows of `len(columns)` fields, accounting for every line.

    Columns named in `skip` are counted as fields but never cut out of the
    text (a PII policy drops them anyway); they are absent from `rows`.
    """
    ncols = len(columns)
    counts = [FileCounts() for _ in files]
    undecodable: list[pa.Table] = []  # every line of a file that does not decode
    parts: list[bytes | bytearray] = []
    file_starts: list[int] = []
    offset = 0
    for i, f in enumerate(files):
        data, error = normalise(f.data, options.encoding)
        if error is not None:
            nlines = f.data.count(b"\n") + (0 if f.data.endswith(b"\n") or not f.data else 1)
            counts[i].lines = counts[i].rejected = nlines
            undecodable.append(
                pa.table(
                    {
                        "_fidx": pa.array(np.full(nlines, i, dtype=np.int32)),
                        "_line": pa.array(np.arange(1, nlines + 1, dtype=np.int64)),
                        "rule": pa.repeat("encoding", nlines),
                        "reason": pa.repeat(f"file is {error}", nlines),
                    }
                )
            )
            data = b""
        file_starts.append(offset)
        parts.append(data)
        offset += len(data)
    raw = pa.py_buffer(b"".join(parts))
    buf = np.frombuffer(raw, dtype=np.uint8)
    lines, geo = _scan(
        buf, np.asarray(file_starts, dtype=np.int64), ord(options.delimiter), ord(options.quote)
    )
    fields, quotes = geo.fields, geo.quotes
    odd = (quotes & 1).astype(bool)
    blank = _blank_lines(raw, lines, fields, quotes)
    header = _header_lines(options, raw, lines, blank, (fields == ncols) & ~odd)
    good = (fields == ncols) & ~odd & ~blank & ~header
    rejected = ~good & ~blank & ~header

    nfiles = len(files)
    tallies = {
        "lines": np.ones(len(lines), dtype=bool),
        "rows": good,
        "rejected": rejected,
        "header_lines": header,
        "blank_lines": blank,
    }
    for attr, mask in tallies.items():
        tally = np.bincount(lines.file[mask], minlength=nfiles)
        for i in range(nfiles):
            setattr(counts[i], attr, getattr(counts[i], attr) + int(tally[i]))

    good_idx = np.flatnonzero(good)
    bounds = geo.dpos[good[geo.dline]].reshape(len(good_idx), ncols - 1)
    left = np.empty((len(good_idx), ncols), dtype=np.int64)
    right = np.empty((len(good_idx), ncols), dtype=np.int64)
    left[:, 0] = lines.starts[good_idx]
    right[:, ncols - 1] = lines.ends[good_idx]
    left[:, 1:] = bounds + 1
    right[:, :-1] = bounds
    rows = pa.table(
        [
            pa.array(lines.file[good_idx], pa.int32()),
            pa.array(lines.number[good_idx], pa.int64()),
            *(
                _cut_column(raw, buf, geo, left[:, j].copy(), right[:, j].copy(), options)
                for j in range(ncols)
                if columns[j] not in skip
            ),
        ],
        names=["_fidx", "_line", *(c for c in columns if c not in skip)],
    )

    rej = np.flatnonzero(rejected)
    rules = np.where(odd[rej], "unbalanced_quote", "field_count")
    reasons = np.where(
        odd[rej],
        "unbalanced quote: a quoted field is not closed on its line",
        np.char.add(f"expected {ncols} fields, found ", fields[rej].astype(str)),
    )
    rejects = pa.table(
        {
            "_fidx": pa.array(lines.file[rej], pa.int32()),
            "_line": pa.array(lines.number[rej], pa.int64()),
            "rule": pa.array(rules, pa.string()),
            "reason": pa.array(reasons, pa.string()),
        }
    )
    if undecodable:
        rejects = pa.concat_tables([rejects, *undecodable])
    return ParsedChunk(rows=rows, rejects=rejects, counts=counts, columns=columns)


def _group_rank(groups: npt.NDArray[np.int32]) -> IntArray:
    """0, 1, 2... within each run of equal, contiguous group ids."""
    n = len(groups)
    first = np.r_[True, groups[1:] != groups[:-1]] if n else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else np.zeros(0, np.int64)
    return np.arange(n, dtype=np.int64) - start


def _mask(values: pa.Array) -> npt.NDArray[np.bool_]:
    out = np.zeros(len(values), dtype=bool)
    out[:] = values.to_numpy(zero_copy_only=False)
    return out


def _blank_lines(
    raw: pa.Buffer, lines: _Lines, fields: IntArray, quotes: IntArray
) -> npt.NDArray[np.bool_]:
    """Lines that are empty or hold only spaces and tabs."""
    blank: npt.NDArray[np.bool_] = lines.ends == lines.starts
    cand = np.flatnonzero((fields == 1) & (quotes == 0) & ~blank)
    if len(cand):
        text = strings(raw, lines.starts[cand], lines.ends[cand])
        blank[cand] = _mask(pc.equal(pc.utf8_length(pc.utf8_trim(text, characters=" \t")), 0))
    return blank


def _header_lines(
    options: CsvOptions,
    raw: pa.Buffer,
    lines: _Lines,
    blank: npt.NDArray[np.bool_],
    well_formed: npt.NDArray[np.bool_],
) -> npt.NDArray[np.bool_]:
    """Which lines are headers.

    `header: true`: the first non-blank line of each file. `header: false`:
    none. `header: auto`: the leading non-blank lines of a file that hold no
    digit and have the right number of fields, when a later line has a digit
    (looking at the first 20 non-blank lines), and any later line identical
    to one of them (a repeated header).
    """
    header = np.zeros(len(lines), dtype=bool)
    idx = np.flatnonzero(~blank)
    if options.header is False or len(idx) == 0:
        return header
    rank = _group_rank(lines.file[idx])
    if options.header is True:
        header[idx[rank == 0]] = True
        return header
    cand = idx[rank < HEADER_SCAN_LINES]
    cand_text = strings(raw, lines.starts[cand], lines.ends[cand])
    has_digit = _mask(pc.match_substring_regex(cand_text, "[0-9]"))
    # Leading run without digits: nothing with a digit up to and including the line.
    cand_file = lines.file[cand]
    seen = np.cumsum(has_digit)
    first = np.r_[True, cand_file[1:] != cand_file[:-1]]
    before_group = np.maximum.accumulate(np.where(first, np.arange(len(cand)), 0))
    seen_in_file: IntArray = seen - (seen[before_group] - has_digit[before_group])
    leading = (seen_in_file == 0) & well_formed[cand]
    files_with_data = np.unique(cand_file[has_digit])
    header[cand[leading & np.isin(cand_file, files_with_data)]] = True
    if header.any():
        # A later line equal to a header line of the same file is a repeated header.
        found = np.flatnonzero(header)
        texts = strings(raw, lines.starts[found], lines.ends[found])
        length = lines.ends - lines.starts
        rest = np.flatnonzero(
            ~blank
            & ~header
            & np.isin(length, np.unique(length[found]))
            & np.isin(lines.file, np.unique(lines.file[found]))
        )
        if len(rest):
            rest_text = strings(raw, lines.starts[rest], lines.ends[rest])
            rest = rest[_mask(pc.is_in(rest_text, value_set=texts))]
        if len(rest):
            # Few lines get here (those equal to some header): match them by (file, text).
            own = set(zip(lines.file[found].tolist(), texts.to_pylist(), strict=True))
            again = strings(raw, lines.starts[rest], lines.ends[rest]).to_pylist()
            same_file = [
                (f, t) in own for f, t in zip(lines.file[rest].tolist(), again, strict=True)
            ]
            header[rest[np.asarray(same_file, dtype=bool)]] = True
    return header


def detect_columns(first: RawText, options: CsvOptions) -> list[str] | None:
    """Column names from a file's first non-blank line, if the file has one."""
    data, error = normalise(first.data, options.encoding)
    if error is not None:
        return None
    for raw_line in data.decode("utf-8").split("\n"):
        line = raw_line.removesuffix("\r")
        if line.strip(" \t"):
            return header_names(_split_line(line, options.delimiter, options.quote))
    return None


def _split_line(line: str, delimiter: str, quote: str) -> list[str]:
    """Split one header line by the same rule as data lines (header lines only)."""
    out: list[str] = []
    current: list[str] = []
    inside = False
    for ch in line:
        if ch == quote:
            inside = not inside
        if ch == delimiter and not inside:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out
