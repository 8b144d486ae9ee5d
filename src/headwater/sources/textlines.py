"""Text files as lines, for the log formats: numbers, bounds and blanks, vectorised with numpy.

Files are normalised first (decoded to UTF-8, BOM removed, final newline
added; `csvparse.normalise`). A file that does not decode is still split
into lines (its bytes decoded with replacement characters) so its records
can be counted and rejected one by one. A large file is cut into pieces at
record boundaries (`split`), each piece numbering its lines from where it
starts in the file, so memory depends on the piece size, not the file size.

Line texts are never copied into Python strings: an Arrow string array is
built over the concatenated bytes with offsets at the line bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.sources.csvparse import FileCounts, normalise

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
SPACE = np.zeros(256, dtype=bool)
SPACE[[9, 32]] = True


@dataclass(frozen=True)
class TextPiece:
    """A file, or a piece of one: UTF-8 bytes ending in a newline (or empty).

    `first_line` is the file's line number of the piece's first line;
    `error` says why the file did not decode (every record of it is rejected).
    """

    name: str
    data: bytes
    first_line: int = 1
    error: str | None = None


def prepare(name: str, data: bytes, encoding: str) -> TextPiece:
    """A delivered file as a piece: normalised, or decoded with replacements and an error."""
    text, error = normalise(data, encoding)
    if error is None:
        return TextPiece(name, text)
    lossy = data.decode(encoding, errors="replace").encode("utf-8")
    if lossy and not lossy.endswith(b"\n"):
        lossy += b"\n"
    return TextPiece(name, lossy.removeprefix(b"\xef\xbb\xbf"), error=error)


def strings(data: pa.Buffer, starts: IntArray, ends: IntArray) -> pa.Array:
    """`data[s:e]` for each sorted, disjoint span, as one Arrow string array (copied).

    The offsets interleave starts and ends, so the array alternates wanted
    spans and the gaps between them; `take` keeps the wanted ones.
    """
    n = len(starts)
    if n == 0:
        return pa.array([], pa.string())
    large = data.size >= 2**31
    offsets = np.empty(2 * n, dtype=np.int64 if large else np.int32)
    offsets[0::2] = starts
    offsets[1::2] = ends
    kind = pa.LargeStringArray if large else pa.StringArray
    spans = kind.from_buffers(2 * n - 1, pa.py_buffer(offsets), data)
    out = spans.take(pa.array(np.arange(0, 2 * n, 2, dtype=np.int64)))
    return out.cast(pa.string()) if large else out


def match_spans(data: pa.Buffer, starts: IntArray, ends: IntArray, regex: str) -> BoolArray:
    """Whether each sorted, disjoint span matches `regex` (RE2 search), without copying text."""
    n = len(starts)
    if n == 0:
        return np.zeros(0, dtype=bool)
    large = data.size >= 2**31
    offsets = np.empty(2 * n, dtype=np.int64 if large else np.int32)
    offsets[0::2] = starts
    offsets[1::2] = ends
    kind = pa.LargeStringArray if large else pa.StringArray
    spans = kind.from_buffers(2 * n - 1, pa.py_buffer(offsets), data)
    hits = pc.match_substring_regex(spans, regex)
    return to_bool(hits)[0::2]


_META = set("\\.^$|?*+()[]{}")


def whole_line_literal(regex: str) -> bytes | None:
    """The text a regex `^text$` matches exactly, if it has no other metacharacter."""
    if len(regex) < 3 or not regex.startswith("^") or not regex.endswith("$"):
        return None
    body = regex[1:-1]
    if any(c in _META for c in body):
        return None
    return body.encode("utf-8")


def to_bool(values: pa.Array | pa.ChunkedArray) -> BoolArray:
    """A boolean Arrow array as numpy, nulls as False."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    out = np.zeros(len(values), dtype=bool)
    if len(values):
        out[:] = pc.fill_null(values, False).to_numpy(zero_copy_only=False)
    return out


class Lines:
    """The lines of some pieces: bounds without CR/LF, piece, 1-based file line number, blank."""

    def __init__(self, pieces: list[TextPiece]) -> None:
        self.pieces = pieces
        joined = pieces[0].data if len(pieces) == 1 else b"".join(p.data for p in pieces)
        self.raw = pa.py_buffer(joined)
        self.buf: npt.NDArray[np.uint8] = np.frombuffer(self.raw, dtype=np.uint8)
        sizes = np.array([len(p.data) for p in pieces], dtype=np.int64)
        self.piece_starts: IntArray = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        newlines = np.flatnonzero(self.buf == 10).astype(np.int64)
        self.starts: IntArray = np.concatenate(([0], newlines[:-1] + 1)).astype(np.int64)
        self.starts = self.starts[: len(newlines)]
        has_cr = np.zeros(len(newlines), dtype=bool)
        nonempty = newlines > self.starts
        has_cr[nonempty] = self.buf[newlines[nonempty] - 1] == 13
        self.newlines = newlines
        self.ends: IntArray = newlines - has_cr
        self.piece = (np.searchsorted(self.piece_starts, self.starts, side="right") - 1).astype(
            np.int32
        )
        first_index = np.searchsorted(self.starts, self.piece_starts)
        offset = np.array([p.first_line for p in pieces], dtype=np.int64)
        self.number: IntArray = (
            np.arange(len(self.starts), dtype=np.int64)
            - first_index[self.piece]
            + offset[self.piece]
        )
        self.blank = self._blank()

    def __len__(self) -> int:
        return len(self.starts)

    def _blank(self) -> BoolArray:
        blank: BoolArray = self.ends == self.starts
        if len(self.starts):
            lead = np.zeros(len(self.starts), dtype=bool)
            lead[~blank] = SPACE[self.buf[self.starts[~blank]]]
            cand = np.flatnonzero(lead)
            if len(cand):
                blank[cand] = match_spans(self.raw, self.starts[cand], self.ends[cand], r"^[ \t]*$")
        return blank

    def text(self, idx: IntArray) -> pa.Array:
        """The text of lines `idx` (sorted)."""
        return strings(self.raw, self.starts[idx], self.ends[idx])

    def match(self, idx: IntArray, regex: str) -> BoolArray:
        """Whether lines `idx` (sorted) match `regex`; `^text$` without metacharacters is
        compared byte by byte (a separator such as `^---$` usually is)."""
        literal = whole_line_literal(regex)
        if literal is None or len(literal) > 64:
            return match_spans(self.raw, self.starts[idx], self.ends[idx], regex)
        starts = self.starts[idx]
        hit: BoolArray = (self.ends[idx] - starts) == len(literal)
        for j, byte in enumerate(literal):
            cand = np.flatnonzero(hit)
            hit[cand] = self.buf[starts[cand] + j] == byte
        return hit

    def piece_counts(self, mask: BoolArray) -> IntArray:
        return np.bincount(self.piece[mask], minlength=len(self.pieces)).astype(np.int64)


def counts(lines: Lines, rows: pa.Table, rejects: pa.Table) -> list[FileCounts]:
    """What became of each piece's lines: records loaded, records rejected, blank lines."""
    npieces = len(lines.pieces)

    def per_piece(table: pa.Table) -> IntArray:
        fidx = table.column("_fidx").combine_chunks().to_numpy(zero_copy_only=False)
        return np.bincount(np.asarray(fidx, dtype=np.int64), minlength=npieces).astype(np.int64)

    n_lines = lines.piece_counts(np.ones(len(lines), dtype=bool))
    blank = lines.piece_counts(lines.blank)
    good, bad = per_piece(rows), per_piece(rejects)
    return [
        FileCounts(
            lines=int(n_lines[i]),
            rows=int(good[i]),
            rejected=int(bad[i]),
            header_lines=0,
            blank_lines=int(blank[i]),
        )
        for i in range(npieces)
    ]


def split(
    piece: TextPiece, target: int, is_boundary: Callable[[Lines], BoolArray]
) -> Iterator[TextPiece]:
    """Cut a piece into pieces of about `target` bytes, each starting at a record boundary.

    `is_boundary(lines)` says which lines of a window may begin a piece. The
    cut is the last such line before each target offset; a window without one
    grows until it finds one or reaches the previous cut (then no cut there).
    Pieces are made one at a time, as they are consumed.
    """
    data = piece.data
    if len(data) <= target * 3 // 2:
        yield piece
        return
    start, line, goal = 0, piece.first_line, target
    while goal < len(data) - target // 2:
        cut = _boundary_before(data, start, goal, is_boundary)
        if cut is None or cut <= start:
            goal += target
            continue
        yield TextPiece(piece.name, data[start:cut], line, piece.error)
        line += data.count(b"\n", start, cut)
        start, goal = cut, cut + target
    yield TextPiece(piece.name, data[start:], line, piece.error)


def _boundary_before(
    data: bytes, floor: int, goal: int, is_boundary: Callable[[Lines], BoolArray]
) -> int | None:
    window = 1 << 16
    while True:
        lo = max(floor, goal - window)
        start = data.rfind(b"\n", floor, lo) + 1 if lo > floor else floor
        end = data.rfind(b"\n", start, goal) + 1
        if end > start:
            lines = Lines([TextPiece("", data[start:end])])
            hits = np.flatnonzero(is_boundary(lines))
            hits = hits[lines.starts[hits] > 0] if start == floor else hits
            if len(hits):
                return start + int(lines.starts[hits[-1]])
        if lo <= floor:
            return None
        window *= 4
