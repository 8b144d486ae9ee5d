"""The state database: runs, steps, the file ledger, watermarks and the Iceberg catalog."""

from headwater.state.db import StateDB

__all__ = ["StateDB"]
