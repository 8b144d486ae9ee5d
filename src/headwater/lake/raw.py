"""The raw zone: what sources delivered, byte-exact, written once under the run id.

Keys look like `raw/<source>/run=<run id>/<path relative to the source folder>`.
A run never rewrites or deletes a raw object; a rerun lands new files under
its own run id, and files it has seen before (by content hash) not at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from headwater.errors import LakeError, ObjectExistsError
from headwater.lake.store import Store


@dataclass(frozen=True)
class RawObject:
    key: str
    sha256: str
    size: int


def raw_key(source: str, run_id: int, relative_name: str) -> str:
    safe = "/".join(
        p for p in relative_name.replace("\\", "/").split("/") if p not in ("", ".", "..")
    )
    return f"raw/{source}/run={run_id:08d}/{safe}"


WHOLE_FILE = 64 << 20  # files up to this size are read once, hashed and written from memory


def read_for_landing(path: Path) -> tuple[str, bytes | None]:
    """SHA-256 of a file, and its bytes when small enough to land without reading it again."""
    if path.stat().st_size <= WHOLE_FILE:
        data = path.read_bytes()
        return hashlib.sha256(data).hexdigest(), data
    return sha256_file(path), None


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def land_file(
    store: Store,
    source: str,
    run_id: int,
    relative_name: str,
    path: Path | None,
    sha256: str,
    data: bytes | None = None,
) -> RawObject:
    """Put one file into the raw zone under a put-once key (from `data` if already read)."""
    key = raw_key(source, run_id, relative_name)
    if data is not None:
        store.put_bytes_once(key, data)
        return RawObject(key=key, sha256=sha256, size=len(data))
    assert path is not None, "a file is landed from its bytes or from its path"
    store.put_file_once(key, path, expect_sha256=sha256)
    return RawObject(key=key, sha256=sha256, size=path.stat().st_size)


def land_once(
    store: Store,
    source: str,
    run_id: int,
    relative_name: str,
    path: Path | None,
    sha256: str,
    data: bytes | None = None,
) -> RawObject:
    """`land_file` for a step that may be retried: an object an earlier attempt of this run
    landed with the same bytes is taken as landed.

    Raw keys carry the run id, so a key that exists was written by this run: by a failed
    attempt of the same step. Other bytes (the file changed between the attempts) are
    refused; the next run lands the new bytes under its own run id.
    """
    try:
        return land_file(store, source, run_id, relative_name, path, sha256, data)
    except ObjectExistsError:
        key = raw_key(source, run_id, relative_name)
        digest, size = hashlib.sha256(), 0
        with store.open(key) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        if digest.hexdigest() != sha256:
            raise LakeError(
                f"source {source!r}: {relative_name} changed between two attempts of this run "
                f"(lake key {key!r} holds other bytes); the next run lands the new version"
            ) from None
        return RawObject(key=key, sha256=sha256, size=size)
