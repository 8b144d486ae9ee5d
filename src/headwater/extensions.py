"""DuckDB extensions shipped as Python packages: loaded from disk, never downloaded.

Each extension headwater uses is a pinned dependency (`duckdb-extension-<name>`,
built for exactly the DuckDB release headwater pins). `load(conn, name)` loads
it from that package's folder; auto-install and auto-load stay off on every
connection (`DUCKDB_SETTINGS` in `headwater.lake.store`).

`connect(names)` opens a connection that loads them without DuckDB's signature
check, which hashes the whole file (40 MB for a scanner, ~80 ms) on every new
database: the files come from pinned wheels, whose hashes pip checks at
install, so the check adds no trust that installing DuckDB itself did not
already need. Unsigned loading is switched off again once they are loaded, so
nothing loaded later on that connection skips the check.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.errors import ConfigError
from headwater.sql import literal

if TYPE_CHECKING:
    import duckdb

# extension name -> the Python package that carries it
PACKAGES: dict[str, str] = {
    "httpfs": "duckdb_extension_httpfs",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "mysql_scanner": "duckdb_extension_mysql_scanner",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
}


@cache
def extension_path(name: str) -> str:
    """The extension file for this DuckDB version, from its package."""
    import duckdb

    package = PACKAGES[name]
    wheel = package.replace("_", "-")
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ConfigError(
            f"DuckDB extension {name!r} is not installed: pip install {wheel}=={duckdb.__version__}"
        ) from None
    base = Path(str(module.__file__)).parent / "extensions" / f"v{duckdb.__version__}"
    found = base / f"{name}.duckdb_extension"
    if not found.is_file():
        raise ConfigError(
            f"{wheel} does not match DuckDB {duckdb.__version__}: "
            f"pip install {wheel}=={duckdb.__version__}"
        )
    return str(found)


def load(conn: Any, name: str) -> None:
    """Load a packaged extension into a DuckDB connection (a no-op if already loaded)."""
    conn.execute(f"LOAD {literal(extension_path(name))}").fetchall()


def connect(names: Iterable[str]) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection (`DUCKDB_SETTINGS`) with these extensions loaded."""
    import duckdb

    from headwater.lake.store import DUCKDB_SETTINGS  # not at the top: the lake imports this

    settings = {**DUCKDB_SETTINGS, "allow_unsigned_extensions": "true"}
    conn = duckdb.connect(":memory:", config=settings)
    try:
        for name in names:
            load(conn, name)
        conn.execute("SET allow_unsigned_extensions = false").fetchall()
    except BaseException:
        conn.close()
        raise
    return conn
