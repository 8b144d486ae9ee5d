"""The `files` source: a local folder or an s3:// prefix and a glob.

CSV is parsed by `csvparse`, text logs by `logs` (`format: log`) and
`jsonlines` (`format: jsonl`). Files are parsed in chunks of about
`chunk_mb` megabytes, two chunks at a time on worker threads (numpy, Arrow
and DuckDB release the GIL), and yielded in order, so memory stays flat
however many files a batch holds. Two chunks at a time in the whole process:
when a run parses its next batch ahead (`headwater.runs.stage.Lookahead`),
the two parses share the slots rather than doubling the memory in use. A log
file larger than one and a half chunks is read from its stream in blocks of
about `chunk_mb`, cut at record boundaries into pieces parsed one after
another, so memory does not grow with the file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial, wraps
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

from headwater.config import FilesSource, S3Options
from headwater.config_formats import JsonLinesOptions, LogOptions, to_re2
from headwater.parallel import ordered_parallel
from headwater.sources.base import Discovered, FileCount, ParsedPart, RawInput
from headwater.sources.csvparse import ParsedChunk, RawText, detect_columns, parse_chunk
from headwater.sources.jsonlines import parse_jsonl
from headwater.sources.listing import list_local, list_s3
from headwater.sources.logs import parse_log
from headwater.sources.textlines import BoolArray, Lines, TextPiece, prepare, split, stream

WORKERS = 2
HEADER_PROBE = 64 << 10  # bytes read to find a file's header line
BALANCE = 4  # chunks a worker gets at least, when chunk_mb allows (see `_chunks`)
MIN_CHUNK = 4 << 20  # but no chunk is cut smaller than this for balance
R = TypeVar("R")
T = TypeVar("T")

_SLOTS = threading.BoundedSemaphore(WORKERS)  # chunks being parsed at once, process-wide


def _gated(fn: Callable[[T], R]) -> Callable[[T], R]:
    """`fn` run only while it holds one of the process's parse slots."""

    @wraps(fn)
    def run(item: T) -> R:
        with _SLOTS:
            return fn(item)

    return run


class FilesSourceReader:
    """Reads one `files` source of a project."""

    def __init__(
        self, name: str, config: FilesSource, project_root: Path, lake_s3: S3Options | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.url = config.path if config.path.startswith("s3://") else None
        self.s3 = config.s3 or lake_s3 or S3Options()
        folder = Path(config.path).expanduser()
        self.folder = folder if folder.is_absolute() else project_root / folder

    @property
    def columns(self) -> list[str] | None:
        if self.config.format == "csv":
            return self.config.csv.columns
        if isinstance(self.config.text_options, LogOptions):
            return self.config.text_options.static_columns() or None
        return None

    def discover(self) -> list[Discovered]:
        if self.url is not None:
            return list_s3(self.name, self.url, self.config.glob, self.s3)
        return list_local(self.name, self.folder, self.config.glob, self.config.path)

    def _chunks(self, inputs: list[RawInput]) -> Iterator[list[RawInput]]:
        """Whole files in chunks of at most `chunk_mb`, and smaller when that makes fewer
        than `BALANCE` chunks a worker (down to `MIN_CHUNK`): with 5 chunks on 2 workers,
        one worker parses the fifth alone while the other idles."""
        limit = self.config.chunk_mb << 20
        balanced = sum(i.size for i in inputs) // (WORKERS * BALANCE)
        limit = max(min(limit, balanced), min(limit, MIN_CHUNK))
        chunk: list[RawInput] = []
        size = 0
        for item in inputs:
            if chunk and size + item.size > limit:
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += item.size
        if chunk:
            yield chunk

    def _parse_one(
        self, chunk: list[RawInput], columns: list[str], sink: Callable[[ParsedPart], R]
    ) -> R:
        texts = [RawText(i.name, i.read(-1)) for i in chunk]
        dropped = frozenset(c for c, p in self.config.pii.items() if p.policy == "drop")
        parsed = parse_chunk(texts, self.config.csv, columns, skip=dropped)
        del texts
        return sink(_to_part(chunk, parsed))

    def parse(self, inputs: list[RawInput], sink: Callable[[ParsedPart], R]) -> Iterator[R]:
        if self.config.format != "csv":
            parse_text = partial(self._parse_text, sink=sink)
            for parts in ordered_parallel(_gated(parse_text), self._chunks(inputs), WORKERS):
                yield from parts
            return
        columns = self.config.csv.columns
        if columns is not None:
            parse = partial(self._parse_one, columns=columns, sink=sink)
            yield from ordered_parallel(_gated(parse), self._chunks(inputs), WORKERS)
            return
        # No declared columns: each file's header names them; files sharing a header parse together.
        groups: dict[tuple[str, ...], list[RawInput]] = {}
        for item in inputs:
            # The header is the first line: read a little, all of the file only if needed.
            head = item.read(HEADER_PROBE)
            names = detect_columns(RawText(item.name, head), self.config.csv)
            if len(head) == HEADER_PROBE and (names is None or b"\n" not in head):
                names = detect_columns(RawText(item.name, item.read(-1)), self.config.csv)
            names = names or ["column_1"]
            groups.setdefault(tuple(names), []).append(item)
        for header, members in groups.items():
            parse = partial(self._parse_one, columns=list(header), sink=sink)
            yield from ordered_parallel(_gated(parse), self._chunks(members), WORKERS)

    def _parse_text(self, chunk: list[RawInput], sink: Callable[[ParsedPart], R]) -> list[R]:
        """Parse a chunk of log files, a large file piece by piece; one part per piece group."""
        options = self.config.text_options
        assert options is not None
        target = self.config.chunk_mb << 20
        boundary = partial(record_starts, options)
        results: list[R] = []
        group: list[tuple[RawInput, TextPiece]] = []
        size = 0

        def flush() -> None:
            nonlocal group, size
            if not group:
                return
            pieces = [p for _, p in group]
            if isinstance(options, LogOptions):
                parsed = parse_log(pieces, options, self.config.pii)
            else:
                parsed = parse_jsonl(pieces, options, self.config.pii)
            sizes = [len(p.data) for p in pieces]
            results.append(sink(_to_part([i for i, _ in group], parsed, sizes)))
            group, size = [], 0

        for item in chunk:
            for piece in _pieces(item, options.encoding, target, boundary):
                if group and size + len(piece.data) > target:
                    flush()
                group.append((item, piece))
                size += len(piece.data)
                del piece
        flush()
        return results


def _pieces(
    item: RawInput, encoding: str, target: int, boundary: Callable[[Lines], BoolArray]
) -> Iterator[TextPiece]:
    """A text file as pieces of about `target` bytes: read whole if small (or not streamable),
    else block by block from its stream, so memory does not grow with the file."""
    if item.open is not None and item.size > target * 3 // 2:
        with item.open() as handle:
            yield from stream(item.name, handle, item.size, encoding, target, boundary)
        return
    whole = prepare(item.name, item.read(-1), encoding)
    yield from split(whole, target, boundary)


def record_starts(options: LogOptions | JsonLinesOptions, lines: Lines) -> BoolArray:
    """Lines that begin a record (where a large file may be cut)."""
    starts: BoolArray = ~lines.blank
    if isinstance(options, LogOptions) and options.separator is not None:
        idx = np.flatnonzero(starts)
        after = np.zeros(len(lines), dtype=bool)
        hits = idx[lines.match(idx, to_re2(options.separator))]
        after[hits[hits + 1 < len(lines)] + 1] = True
        return after
    if isinstance(options, LogOptions) and options.start is not None:
        idx = np.flatnonzero(starts)
        starts[idx] = lines.match(idx, to_re2(options.start))
    return starts


def _to_part(
    chunk: list[RawInput], parsed: ParsedChunk, sizes: list[int] | None = None
) -> ParsedPart:
    """The part a sink gets; `sizes` (bytes parsed per entry) when entries are pieces of files."""
    names = pa.array([i.name for i in chunk], pa.string())
    hashes = pa.array([i.sha256 for i in chunk], pa.string())

    def lineage(table: pa.Table) -> pa.Table:
        fidx = table.column("_fidx")
        table = table.drop_columns(["_fidx"])
        table = table.add_column(0, "_file_hash", hashes.take(fidx))
        return table.add_column(0, "_file", names.take(fidx))

    counts: dict[str, FileCount] = {}
    for i, (item, c) in enumerate(zip(chunk, parsed.counts, strict=True)):
        seen = counts.get(item.sha256)  # pieces of one file add up
        size = item.size if sizes is None else sizes[i]
        counts[item.sha256] = FileCount(
            size=size + (seen.size if seen else 0),
            rows_read=c.rows + c.rejected + (seen.rows_read if seen else 0),
            rows_rejected=c.rejected + (seen.rows_rejected if seen else 0),
            header_lines=c.header_lines + (seen.header_lines if seen else 0),
            blank_lines=c.blank_lines + (seen.blank_lines if seen else 0),
        )
    return ParsedPart(
        rows=lineage(parsed.rows),
        rejects=lineage(parsed.rejects),
        counts=counts,
        columns=parsed.columns,
    )
