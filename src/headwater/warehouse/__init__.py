"""Warehouse targets: where published models are loaded for BI tools."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from headwater.warehouse.base import LoadItem, LoadResult, Target
from headwater.warehouse.duckdb import DuckDBWarehouse

TARGETS: dict[str, Callable[[Path], Target]] = {"duckdb": DuckDBWarehouse}

__all__ = ["TARGETS", "LoadItem", "LoadResult", "Target"]
