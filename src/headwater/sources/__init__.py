"""Sources: each kind is one module behind the `Source` interface; `KINDS` maps kind to class."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from headwater.config import FilesSource, S3Options
from headwater.sources.base import Discovered, ParsedPart, RawInput, Source
from headwater.sources.files import FilesSourceReader

# kind -> factory(name, config, project folder, the lake's S3 settings as a default)
KINDS: dict[str, Callable[[str, FilesSource, Path, S3Options], Source]] = {
    "files": FilesSourceReader,
}


def open_source(
    name: str, config: FilesSource, project_root: Path, lake_s3: S3Options | None = None
) -> Source:
    return KINDS[config.kind](name, config, project_root, lake_s3 or S3Options())


__all__ = ["KINDS", "Discovered", "ParsedPart", "RawInput", "Source", "open_source"]
