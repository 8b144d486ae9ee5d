"""Text files as lines, for the log formats: numbers, bounds and blanks, vectorised with numpy.

Files are normalised first (decoded to UTF-8, BOM removed, final newline
added; `csvparse.normalise`). A file that does not decode is still split
into lines (its bytes decoded with replacement characters) so its records
can be counted and rejected one by one. A large file is cut into pieces at
record boundaries (`split`), each piece numbering its lines from where it
starts in the file, so memory depends on the piece size, not the file size.
A file too large to read whole is read from a stream block by block
(`stream`): each block is decoded, cut after its last record boundary and
the rest carried into the next, so not even the file's bytes are held.

Line texts are never copied into Python strings: an Arrow string array is
built over the concatenated bytes with offsets at the line bounds.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.sources.csvparse import BOM, FileCounts, _valid_utf8, normalise
from headwater.sources.spans import match_spans, positions, strings

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
    data: bytes | bytearray
    first_line: int = 1
    error: str | None = None


def prepare(name: str, data: bytes | bytearray, encoding: str) -> TextPiece:
    """A delivered file as a piece: normalised, or decoded with replacements and an error."""
    text, error = normalise(data, encoding)
    if error is None:
        return TextPiece(name, text)
    lossy = data.decode(encoding, errors="replace").encode("utf-8")
    if lossy and not lossy.endswith(b"\n"):
        lossy += b"\n"
    return TextPiece(name, lossy.removeprefix(b"\xef\xbb\xbf"), error=error)


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
        newlines = positions(self.buf, 10)
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
    data: bytes | bytearray, floor: int, goal: int, is_boundary: Callable[[Lines], BoolArray]
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


def stream(
    name: str,
    handle: BinaryIO,
    size: int,
    encoding: str,
    target: int,
    is_boundary: Callable[[Lines], BoolArray],
) -> Iterator[TextPiece]:
    """A large file read from `handle` as pieces of about `target` bytes, at record boundaries.

    Blocks of `target` bytes are read (the last one with up to half a block
    more, so no tiny last piece), decoded to UTF-8 (`_Decoder`) and appended
    to the text carried over; the text is cut before its last record boundary
    (as in `split`) and the rest carried on. A record longer than that grows
    the text until its end. Normalised as `prepare`: BOM removed at the start
    only, final newline added. Once a block does not decode, the file's error
    is set on every piece from the one holding that block on (earlier pieces
    are already parsed), the bytes decoded with replacement characters.
    """
    decoder = _Decoder(encoding)
    text, line, pos = b"", 1, 0
    while True:
        left = size - pos
        want = left if 0 < left <= target * 3 // 2 else target
        raw = _read_full(handle, want)
        pos += len(raw)
        final = len(raw) < want
        if not final and pos >= size:  # `size` says this was all: make sure
            more = handle.read(1)
            final = not more
            if more:
                raw, pos = raw + more, pos + len(more)
        new = decoder.feed(raw, final)
        del raw
        text = text + new if text else new
        del new
        if final:
            if text and not text.endswith(b"\n"):
                text += b"\n"
            if text:
                yield TextPiece(name, text, line, decoder.error)
            return
        cut = _boundary_before(text, 0, len(text), is_boundary)
        if cut is None or cut <= 0:
            continue  # no record starts after the first: read on
        piece = TextPiece(name, text[:cut], line, decoder.error)
        line += text.count(b"\n", 0, cut)
        text = text[cut:]
        yield piece
        del piece


def _read_full(handle: BinaryIO, n: int) -> bytes:
    """`n` bytes from a stream, fewer only at its end (an S3 body may return less per read)."""
    data = handle.read(n)
    if len(data) >= n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = handle.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class _Decoder:
    """Blocks of a file in `encoding` to UTF-8, as `normalise` does the whole file.

    UTF-8 is validated (Arrow), not decoded; a character cut by the block's
    end waits for the next block. Other encodings go through Python's
    incremental decoder. The first error is kept in `error` (offset in the
    file, as `normalise` words it); from there on bytes are decoded with
    replacement characters.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")
        self.error: str | None = None
        self.pending = b""  # UTF-8: the start of a character cut by the previous block's end
        self.offset = 0  # the file offset of `pending` (or of the next block)
        self.first = True
        self.codec = codecs.getincrementaldecoder(encoding)("strict")

    def feed(self, raw: bytes, final: bool) -> bytes:
        if self.utf8:
            return self._utf8(raw, final)
        start = self.offset
        self.offset += len(raw)
        if self.error is None:
            pending = self.codec.getstate()[0]
            try:
                out = self.codec.decode(raw, final).encode("utf-8")
            except UnicodeDecodeError as exc:
                at = start + len(raw) - len(exc.object) + exc.start
                byte = exc.object[exc.start]
                self.error = f"not valid {self.encoding}: byte 0x{byte:02x} at offset {at}"
                self.codec = codecs.getincrementaldecoder(self.encoding)("replace")
                out = self.codec.decode(pending + raw, final).encode("utf-8")
        else:
            out = self.codec.decode(raw, final).encode("utf-8")
        if self.first:
            self.first = False
            out = out.removeprefix(BOM)
        return out

    def _utf8(self, raw: bytes, final: bool) -> bytes:
        data = self.pending + raw if self.pending else raw
        start = self.offset
        if self.first:
            if len(data) < len(BOM) and not final:
                self.pending = data
                return b""
            self.first = False
            if data.startswith(BOM):
                data, start = data[len(BOM) :], start + len(BOM)
        keep = len(data) if final else _complete_utf8(data)
        self.pending = data[keep:]
        data = data[:keep]
        self.offset = start + keep
        if self.error is None:
            if data.isascii() or _valid_utf8(data):
                return data
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                at = start + exc.start
                self.error = f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {at}"
        return data.decode("utf-8", errors="replace").encode("utf-8")


def _complete_utf8(data: bytes) -> int:
    """Where a character cut by the end of `data` starts (`len(data)` if none is)."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        byte = data[n - back]
        if byte < 0x80:
            return n
        if byte >= 0xC0:
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4 if byte < 0xF8 else 1
            return n - back if need > back else n
    return n
