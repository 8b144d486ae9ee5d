"""The seam between sources and the pipeline.

A source does two things and never touches the lake itself:
- `discover()` lists what is there to extract (for `files`: the files under
  its folder); the pipeline lands new ones byte-exact in the raw zone;
- `parse(inputs, sink)` turns landed raw objects into Arrow rows plus
  rejects, accounting for every line, in parts small enough to keep memory
  flat, and hands each part to `sink` (which writes it) on the same worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

import pyarrow as pa


@dataclass(frozen=True)
class Discovered:
    """Something a source found: a file and its name relative to the source folder.

    A local file has a `path`; a remote object (S3) has `fetch`, which returns
    its bytes. `location` names it in messages either way.
    """

    name: str
    path: Path | None
    size: int
    modified_at: dt.datetime
    location: str = ""
    fetch: Callable[[], bytes] | None = None


@dataclass(frozen=True)
class RawInput:
    """A landed raw object, handed back to the source for parsing.

    `read(n)` gives the first n bytes (`read(-1)`: all of them); `open()`, when
    given, a binary stream over the whole object (a local file, an S3 body),
    for a source that reads a large object block by block. The caller closes it.
    """

    name: str
    sha256: str
    size: int
    read: Callable[[int], bytes | bytearray]
    open: Callable[[], BinaryIO] | None = None


@dataclass(frozen=True)
class FileCount:
    size: int
    rows_read: int
    rows_rejected: int
    header_lines: int
    blank_lines: int


@dataclass
class ParsedPart:
    """Rows and rejects of some inputs.

    `rows` holds the source's columns plus `_file` (name), `_file_hash` and
    `_line` (1-based physical line). `rejects` holds `_file`, `_file_hash`,
    `_line`, `rule` and `reason`. `counts` is keyed by content hash.
    """

    rows: pa.Table
    rejects: pa.Table
    counts: dict[str, FileCount] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)  # every field, including ones not cut out


R = TypeVar("R")


class Source(Protocol):
    name: str

    @property
    def columns(self) -> list[str] | None:
        """The columns rows will have, when known before parsing."""

    def discover(self) -> list[Discovered]: ...

    def parse(self, inputs: list[RawInput], sink: Callable[[ParsedPart], R]) -> Iterator[R]:
        """Parse inputs in parts; `sink` consumes each part on the worker that parsed it.

        Results come back in input order. The sink (the pipeline's writer) runs
        where the part was made, so parsing and writing overlap across workers.
        """
