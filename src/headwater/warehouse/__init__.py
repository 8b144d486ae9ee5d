"""Warehouse targets: where published models are loaded for BI tools."""

from __future__ import annotations

from headwater.warehouse.base import LoadItem, LoadResult, Target, TargetFactory
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from headwater.warehouse.redshift import RedshiftWarehouse

TARGETS: dict[str, TargetFactory] = {
    "duckdb": DuckDBWarehouse.from_config,
    "postgres": PostgresWarehouse.from_config,
    "redshift": RedshiftWarehouse.from_config,
}

__all__ = ["TARGETS", "LoadItem", "LoadResult", "Target", "TargetFactory"]
