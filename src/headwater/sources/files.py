"""The `files` source: a local folder or an s3:// prefix and a glob; CSV parsed by `csvparse`.

Files are parsed in chunks of about `chunk_mb` megabytes, two chunks at a
time on worker threads (numpy and Arrow release the GIL), and yielded in
order, so memory stays flat however many files a batch holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from headwater.config import FilesSource, S3Options
from headwater.parallel import ordered_parallel
from headwater.sources.base import Discovered, FileCount, ParsedPart, RawInput
from headwater.sources.csvparse import ParsedChunk, RawText, detect_columns, parse_chunk
from headwater.sources.listing import list_local, list_s3

WORKERS = 2
HEADER_PROBE = 64 << 10  # bytes read to find a file's header line
R = TypeVar("R")


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
        return self.config.csv.columns

    def discover(self) -> list[Discovered]:
        if self.url is not None:
            return list_s3(self.name, self.url, self.config.glob, self.s3)
        return list_local(self.name, self.folder, self.config.glob, self.config.path)

    def _chunks(self, inputs: list[RawInput]) -> Iterator[list[RawInput]]:
        limit = self.config.chunk_mb << 20
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
        columns = self.config.csv.columns
        if columns is not None:
            parse = partial(self._parse_one, columns=columns, sink=sink)
            yield from ordered_parallel(parse, self._chunks(inputs), WORKERS)
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
            yield from ordered_parallel(parse, self._chunks(members), WORKERS)


def _to_part(chunk: list[RawInput], parsed: ParsedChunk) -> ParsedPart:
    names = pa.array([i.name for i in chunk], pa.string())
    hashes = pa.array([i.sha256 for i in chunk], pa.string())

    def lineage(table: pa.Table) -> pa.Table:
        fidx = table.column("_fidx")
        table = table.drop_columns(["_fidx"])
        table = table.add_column(0, "_file_hash", hashes.take(fidx))
        return table.add_column(0, "_file", names.take(fidx))

    counts = {
        item.sha256: FileCount(
            size=item.size,
            rows_read=c.rows + c.rejected,
            rows_rejected=c.rejected,
            header_lines=c.header_lines,
            blank_lines=c.blank_lines,
        )
        for item, c in zip(chunk, parsed.counts, strict=True)
    }
    return ParsedPart(
        rows=lineage(parsed.rows),
        rejects=lineage(parsed.rejects),
        counts=counts,
        columns=parsed.columns,
    )
