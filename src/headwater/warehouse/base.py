"""The warehouse seam: load a set of tables from lake Parquet in one transaction.

A target is made by a factory from its configuration, the project folder (for
relative paths) and the lake's store (whose `configure_duckdb` lets any DuckDB
connection read the lake's Parquet files, on disk or on S3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from headwater.config import WarehouseConfig
from headwater.lake.store import Store

# How a table's new rows meet the rows already there.
LoadMode = Literal["merge", "append", "replace"]


@dataclass(frozen=True)
class LoadItem:
    table: str
    files: list[str]  # Parquet files that may hold rows to load
    mode: LoadMode
    unique_key: list[str]
    after_batch: int | None  # load rows with `_batch` greater than this (None: all rows)
    max_batch: int
    snapshot_id: int


@dataclass(frozen=True)
class Watermark:
    max_batch: int | None
    snapshot_id: int | None


@dataclass(frozen=True)
class LoadResult:
    table: str
    mode: LoadMode
    rows_loaded: int
    rows_in_table: int
    columns_added: list[str]


class Target(Protocol):
    location: str

    def watermarks(self) -> dict[str, Watermark]:
        """What each table last loaded (from the warehouse itself)."""

    def load(
        self, items: list[LoadItem], run_id: int, before_commit: Callable[[], None]
    ) -> list[LoadResult]:
        """Load every item in one transaction: all tables change, or none."""

    def tables(self) -> list[str]: ...


# Registry entry: (warehouse config, project folder, lake store) -> target.
TargetFactory = Callable[[WarehouseConfig, Path, Store], Target]
