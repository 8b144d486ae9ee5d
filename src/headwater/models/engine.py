"""The DuckDB engine: runs model SQL in-process over Parquet files of the lake.

One engine is one in-memory DuckDB connection with a memory limit and a
spill folder, so a batch larger than memory spills to disk instead of
failing. Inputs are bound as temporary views over `read_parquet`, outputs
are written with `COPY ... TO` Parquet; nothing is fetched into Python.

Driver errors are translated here into `ModelError` naming the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from headwater.config import EngineConfig
from headwater.errors import ModelError
from headwater.lake.store import DUCKDB_SETTINGS, Store
from headwater.lake.tables import scan_sql
from headwater.sql import literal, quote_ident


class Engine:
    """An in-process DuckDB connection tuned for a run."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, config: EngineConfig, spill_dir: Path, store: Store | None = None) -> Engine:
        """A new in-memory engine with the run's memory limit and spill folder.

        With `store`, the engine reads and writes the lake's URIs (S3 included).
        """
        spill_dir.mkdir(parents=True, exist_ok=True)
        settings: dict[str, str | bool | int | float | list[str]] = {
            **DUCKDB_SETTINGS,
            "memory_limit": config.memory_limit,
            "temp_directory": str(spill_dir),
            "preserve_insertion_order": "false",
        }
        if config.threads:
            settings["threads"] = str(config.threads)
        conn = duckdb.connect(":memory:", config=settings)
        if store is not None:
            store.configure_duckdb(conn)
        return cls(conn)

    def cursor(self) -> Engine:
        """An engine on another connection to the same database, for a worker thread."""
        return Engine(self.conn.cursor())

    def close(self) -> None:
        self.conn.close()

    def execute(self, sql: str, context: str = "") -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql).fetchall()
        except duckdb.Error as exc:
            where = f"{context}: " if context else ""
            raise ModelError(f"{where}{type(exc).__name__}: {exc}") from None

    def bind_parquet(
        self,
        name: str,
        files: list[str],
        where: str | None = None,
        empty_schema: Callable[[], str | None] | None = None,
    ) -> None:
        """Make `name` a view over Parquet files (optionally filtered).

        With no files, `empty_schema()` gives a zero-row stand-in with the
        table's columns (asked for only then: it may have to read metadata).
        """
        if files:
            body = f"SELECT * FROM {scan_sql(files)}"
            if where:
                body += f" WHERE {where}"
        else:
            schema = empty_schema() if empty_schema is not None else None
            if schema is None:
                raise ModelError(
                    f"{name}: no data files to read and no schema to stand in for them"
                )
            body = f"SELECT * FROM ({schema}) WHERE false"
        self.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(name)} AS {body}", name)

    def bind_sql(self, name: str, sql: str) -> None:
        self.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(name)} AS {sql}", name)

    def columns(self, sql: str, context: str) -> list[tuple[str, str]]:
        rows = self.execute(f"DESCRIBE {sql}", context)
        return [(str(r[0]), str(r[1])) for r in rows]

    def materialize(self, name: str, sql: str, context: str) -> int:
        self.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(name)} AS {sql}", context)
        return self.scalar_int(f"SELECT count(*) FROM {quote_ident(name)}", context)

    def scalar_int(self, sql: str, context: str = "") -> int:
        value = self.execute(sql, context)[0][0]
        assert isinstance(value, int)
        return value

    def write_parquet(self, sql: str, path: str, context: str) -> int:
        """COPY a query to one Parquet file; returns the rows written."""
        rows = self.execute(
            f"COPY ({sql}) TO {literal(path)} (FORMAT parquet, COMPRESSION snappy, RETURN_STATS)",
            context,
        )
        return sum(int(r[1]) for r in rows)

    def drop(self, name: str) -> None:
        """Drop a temporary table or view of this name, if there is one."""
        kinds = self.execute(
            "SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = "
            f"{literal(name)} AND temporary UNION ALL "
            "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = "
            f"{literal(name)} AND temporary"
        )
        for (kind,) in kinds:
            self.execute(f"DROP {kind} {quote_ident(name)}")
