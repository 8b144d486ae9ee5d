"""The `files` source: a local folder and a glob; CSV parsed by `csvparse`.

Files are parsed in chunks of about `chunk_mb` megabytes, two chunks at a
time on worker threads (numpy and Arrow release the GIL), and yielded in
order, so memory stays flat however many files a batch holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from headwater.config import FilesSource
from headwater.errors import SourceError
from headwater.parallel import ordered_parallel
from headwater.sources.base import Discovered, FileCount, ParsedPart, RawInput
from headwater.sources.csvparse import ParsedChunk, RawText, detect_columns, parse_chunk

WORKERS = 2
HEADER_PROBE = 64 << 10  # bytes read to find a file's header line
R = TypeVar("R")


class FilesSourceReader:
    """Reads one `files` source of a project."""

    def __init__(self, name: str, config: FilesSource, project_root: Path) -> None:
        self.name = name
        self.config = config
        folder = Path(config.path).expanduser()
        self.folder = folder if folder.is_absolute() else project_root / folder

    @property
    def columns(self) -> list[str] | None:
        return self.config.csv.columns

    def discover(self) -> list[Discovered]:
        if not self.folder.is_dir():
            raise SourceError(
                f"source {self.name!r}: folder {self.folder} does not exist "
                f"(sources.{self.name}.path is {self.config.path!r})"
            )
        found = []
        for path in sorted(self.folder.glob(self.config.glob)):
            if not path.is_file() or any(
                p.startswith(".") for p in path.relative_to(self.folder).parts
            ):
                continue
            stat = path.stat()
            found.append(
                Discovered(
                    name=path.relative_to(self.folder).as_posix(),
                    path=path,
                    size=stat.st_size,
                    modified_at=dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).replace(
                        tzinfo=None
                    ),
                )
            )
        return found

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
