"""The DuckDB warehouse: a database file under the project by default.

A load is one transaction. For each table the new rows are read from lake
Parquet (`_`-prefixed lineage columns left out) and merged: rows with a key
being loaded are deleted, then the new rows inserted. The lake already holds
one row per key (merge models dedupe; an incremental model's unique_key is
checked), so no deduplication is needed here. The load watermark of every
table is written in the same transaction, so a crash leaves the warehouse and
its watermarks unchanged, and a rerun loads exactly what is missing. New columns are added; a type
change that is not a widening stops the load, naming table, column and types.

The database file locked by another process (`Could not set lock on file`),
or the lake on S3 answering 5xx or timing out while the rows are read, raise
`WarehouseUnavailableError` (transient: the pipeline retries the load, which
is safe since a rolled-back transaction changed nothing); other errors raise
`WarehouseError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from headwater.config import DuckDBWarehouseConfig, WarehouseConfig
from headwater.errors import WarehouseError, WarehouseUnavailableError, transient_message
from headwater.lake.store import DUCKDB_SETTINGS, Store
from headwater.lake.tables import scan_sql
from headwater.sql import literal, quote_ident
from headwater.warehouse.base import LoadItem, LoadResult, Watermark

LOADS = "_headwater_loads"
WIDENINGS = {
    ("TINYINT", "SMALLINT"),
    ("TINYINT", "INTEGER"),
    ("TINYINT", "BIGINT"),
    ("SMALLINT", "INTEGER"),
    ("SMALLINT", "BIGINT"),
    ("INTEGER", "BIGINT"),
    ("FLOAT", "DOUBLE"),
    ("DATE", "TIMESTAMP"),
}


def _widens(old: str, new: str) -> bool:
    if old == new or (old, new) in WIDENINGS:
        return True
    if old.startswith("DECIMAL") and new.startswith("DECIMAL"):
        op, os_ = (int(x) for x in old[8:-1].split(","))
        np_, ns = (int(x) for x in new[8:-1].split(","))
        return ns >= os_ and np_ - ns >= op - os_
    return False


class DuckDBWarehouse:
    def __init__(
        self,
        path: Path,
        store: Store | None = None,
        memory_limit: str = DuckDBWarehouseConfig().memory_limit,
    ) -> None:
        self.path = path
        self.location = str(path)
        self.store = store
        self.settings = {**DUCKDB_SETTINGS, "memory_limit": memory_limit}

    @classmethod
    def from_config(cls, config: WarehouseConfig, root: Path, store: Store) -> DuckDBWarehouse:
        assert isinstance(config, DuckDBWarehouseConfig)
        path = Path(config.path).expanduser()
        return cls(path if path.is_absolute() else root / path, store, config.memory_limit)

    def _connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = duckdb.connect(str(self.path), read_only=read_only, config=self.settings)
            if self.store is not None:
                self.store.configure_duckdb(conn)
            return conn
        except duckdb.Error as exc:
            kind = WarehouseUnavailableError if transient_message(str(exc)) else WarehouseError
            raise kind(f"warehouse {self.path}: cannot open: {exc}") from None

    def tables(self) -> list[str]:
        if not self.path.exists():
            return []
        conn = self._connect(read_only=True)
        try:
            rows = conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                f"AND table_name <> {literal(LOADS)} ORDER BY 1"
            ).fetchall()
            return [str(r[0]) for r in rows]
        finally:
            conn.close()

    def watermarks(self) -> dict[str, Watermark]:
        if not self.path.exists():
            return {}
        conn = self._connect(read_only=True)
        try:
            exists = conn.execute(
                f"SELECT count(*) FROM duckdb_tables() WHERE table_name = {literal(LOADS)}"
            ).fetchall()[0][0]
            if not exists:
                return {}
            rows = conn.execute(
                f"SELECT table_name, max_batch, snapshot_id FROM {LOADS}"
            ).fetchall()
            return {str(r[0]): Watermark(r[1], r[2]) for r in rows}
        finally:
            conn.close()

    def load(
        self, items: list[LoadItem], run_id: int, before_commit: Callable[[], None]
    ) -> list[LoadResult]:
        conn = self._connect()
        results: list[LoadResult] = []
        try:
            conn.execute("BEGIN TRANSACTION").fetchall()
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {LOADS} (table_name VARCHAR PRIMARY KEY, "
                "max_batch BIGINT, snapshot_id BIGINT, run_id BIGINT, loaded_at TIMESTAMP)"
            ).fetchall()
            for item in items:
                results.append(self._load_one(conn, item))
                conn.execute(
                    f"INSERT OR REPLACE INTO {LOADS} VALUES (?, ?, ?, ?, now()::TIMESTAMP)",
                    [item.table, item.max_batch, item.snapshot_id, run_id],
                ).fetchall()
            before_commit()
            conn.execute("COMMIT").fetchall()
        except duckdb.Error as exc:
            conn.execute("ROLLBACK").fetchall()
            kind = WarehouseUnavailableError if transient_message(str(exc)) else WarehouseError
            raise kind(f"warehouse {self.path}: load rolled back: {exc}") from None
        except BaseException:
            conn.execute("ROLLBACK").fetchall()
            raise
        finally:
            conn.close()
        return results

    def _load_one(self, conn: duckdb.DuckDBPyConnection, item: LoadItem) -> LoadResult:
        source = scan_sql(item.files)
        described = conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        columns = [(str(r[0]), str(r[1])) for r in described if not str(r[0]).startswith("_")]
        names = ", ".join(quote_ident(c) for c, _ in columns)
        where = "" if item.after_batch is None else f" WHERE _batch > {item.after_batch}"
        new_rows = f"SELECT {names} FROM {source}{where}"
        added = self._ensure_table(conn, item.table, columns)
        table = quote_ident(item.table)
        [(present,)] = conn.execute(f"SELECT count(*) > 0 FROM {table}").fetchall()
        if present and item.mode == "replace":
            conn.execute(f"DELETE FROM {table}").fetchall()
        elif present and item.mode == "merge":
            # The lake holds one row per key (merge models dedupe, append models check
            # uniqueness), so deleting the keys being loaded, then inserting, is a merge.
            key = ", ".join(quote_ident(k) for k in item.unique_key)
            keys = f"SELECT DISTINCT {key} FROM {source}{where}"
            match = " AND ".join(
                f"t.{quote_ident(k)} IS NOT DISTINCT FROM s.{quote_ident(k)}"
                for k in item.unique_key
            )
            conn.execute(f"DELETE FROM {table} t USING ({keys}) s WHERE {match}").fetchall()
        [(inserted,)] = conn.execute(f"INSERT INTO {table} ({names}) {new_rows}").fetchall()
        [(total,)] = conn.execute(f"SELECT count(*) FROM {table}").fetchall()
        return LoadResult(item.table, item.mode, int(inserted), int(total), added)

    def _ensure_table(
        self, conn: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]]
    ) -> list[str]:
        existing = conn.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' "
            f"AND table_name = {literal(table)} ORDER BY column_index"
        ).fetchall()
        if not existing:
            cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns)
            conn.execute(f"CREATE TABLE {quote_ident(table)} ({cols})").fetchall()
            return []
        have = {str(r[0]): str(r[1]) for r in existing}
        added = []
        for name, new_type in columns:
            old_type = have.get(name)
            if old_type is None:
                conn.execute(
                    f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(name)} {new_type}"
                ).fetchall()
                added.append(name)
            elif old_type != new_type:
                if not _widens(old_type, new_type):
                    raise WarehouseError(
                        f"warehouse table {table!r}, column {name!r}: type changed from "
                        f"{old_type} to {new_type}, which is not a widening; the load stopped "
                        "(change the model back, or drop the column in the warehouse)"
                    )
                conn.execute(
                    f"ALTER TABLE {quote_ident(table)} ALTER {quote_ident(name)} TYPE {new_type}"
                ).fetchall()
        return added
