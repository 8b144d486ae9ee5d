"""The quarantine zone: rows rejected by a source parser or a quality check.

Every quarantined row keeps where it came from (source, file, line), the rule
it broke and a human reason, plus the non-protected fields of the record as
JSON. Raw lines are never copied here: they may hold PII, and the raw zone
already keeps them byte-exact under the file and line named.

Files live under `quarantine/<source or model>/batch=<batch>/`. A batch's
folder is reset before a retried attempt writes it again, and left alone once
the batch is committed, so each committed batch is counted once.
"""

from __future__ import annotations

import uuid

from headwater.lake.store import Store

PREFIX = "quarantine"

# Column order and DuckDB types of every quarantine file.
COLUMNS: dict[str, str] = {
    "_batch": "BIGINT",
    "run_id": "BIGINT",
    "stage": "VARCHAR",
    "name": "VARCHAR",
    "source": "VARCHAR",
    "file": "VARCHAR",
    "line": "BIGINT",
    "rule": "VARCHAR",
    "reason": "VARCHAR",
    "record": "VARCHAR",
}


class QuarantineZone:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _prefix(self, name: str, batch: int) -> str:
        return f"{PREFIX}/{name}/batch={batch:08d}"

    def reset(self, name: str, batch: int) -> None:
        """Forget what an uncommitted attempt at this batch wrote."""
        self.store.remove_tree(self._prefix(name, batch))

    def new_file(self, name: str, batch: int) -> str:
        """A local path for a new quarantine Parquet file of this batch."""
        key = f"{self._prefix(name, batch)}/{uuid.uuid4().hex[:12]}.parquet"
        return self.store.writable_uri(key)

    def glob(self, name: str | None = None, batch: int | None = None) -> str:
        """A glob DuckDB can read with `read_parquet`."""
        name_part = name or "*"
        batch_part = "*" if batch is None else f"batch={batch:08d}"
        return self.store.uri(PREFIX) + f"/{name_part}/{batch_part}/*.parquet"

    def has(self, name: str, batch: int) -> bool:
        """Whether this source or model quarantined rows of this batch."""
        return any(True for _ in self.store.list(self._prefix(name, batch)))

    def has_files(self) -> bool:
        return any(True for _ in self.store.list(PREFIX))
