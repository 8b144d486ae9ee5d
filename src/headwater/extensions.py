"""DuckDB extensions shipped as Python packages: loaded from disk, never downloaded.

Each extension headwater uses is a pinned dependency (`duckdb-extension-<name>`,
built for exactly the DuckDB release headwater pins). `load(conn, name)` loads
it from that package's folder; auto-install and auto-load stay off on every
connection (`DUCKDB_SETTINGS` in `headwater.lake.store`).
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

from headwater.errors import ConfigError
from headwater.sql import literal

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
