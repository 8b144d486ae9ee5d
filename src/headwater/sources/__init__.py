"""Sources: each kind is one module behind the `Source` interface; `KINDS` maps kind to class."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from headwater.config import FilesSource
from headwater.sources.base import Discovered, ParsedPart, RawInput, Source
from headwater.sources.files import FilesSourceReader

KINDS: dict[str, Callable[[str, FilesSource, Path], Source]] = {
    "files": FilesSourceReader,
}


def open_source(name: str, config: FilesSource, project_root: Path) -> Source:
    return KINDS[config.kind](name, config, project_root)


__all__ = ["KINDS", "Discovered", "ParsedPart", "RawInput", "Source", "open_source"]
