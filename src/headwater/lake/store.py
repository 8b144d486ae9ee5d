"""Object stores behind one small interface; the lake never writes anywhere else.

`put_file_once` is the raw zone's guarantee: writing a key that exists fails
with `ObjectExistsError`, enforced by the store itself (a hard link on a local
disk, `If-None-Match: *` on S3), never by a check-then-write race.

Keys are `/`-separated relative paths. `uri(key)` is what engines read and
write in place: a filesystem path for a local store, `s3://bucket/key` on S3
(DuckDB reads and writes it through its httpfs extension, pyiceberg through
pyarrow). `configure_duckdb` gives a DuckDB connection what it needs for that.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

from headwater.config import S3Options
from headwater.errors import ConfigError, LakeError, ObjectExistsError, SourceError

COPY_CHUNK = 1 << 20

# Every DuckDB connection headwater opens: nothing is ever downloaded at run time.
DUCKDB_SETTINGS: dict[str, Any] = {
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
}


class Store(Protocol):
    """What the lake needs from a place that keeps objects."""

    url: str

    def put_file_once(self, key: str, src: Path, expect_sha256: str | None = None) -> None:
        """Copy a local file to `key`; fail if the key exists or the bytes changed."""

    def put_bytes_once(self, key: str, data: bytes) -> None:
        """Write bytes to `key`; fail if the key exists."""

    def exists(self, key: str) -> bool: ...

    def open(self, key: str) -> BinaryIO: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def writable_uri(self, key: str) -> str:
        """Where an engine writes `key` in place (parent folders made on a local disk)."""

    def uri(self, key: str) -> str:
        """The URI engines use to read `key`."""

    def configure_duckdb(self, conn: Any) -> None:
        """Let a DuckDB connection read and write this store's URIs."""

    def iceberg_properties(self) -> dict[str, str]:
        """pyiceberg FileIO properties for this store."""

    def remove_tree(self, prefix: str) -> None:
        """Delete scratch left by an attempt that never committed (never raw data)."""


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise LakeError(f"invalid lake key {key!r}")
    return key


class LocalStore:
    """A folder on a local disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()
        self._tmp = root / ".tmp"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def _temp_file(self) -> Path:
        self._tmp.mkdir(parents=True, exist_ok=True)
        return self._tmp / uuid.uuid4().hex

    def _link_once(self, tmp: Path, key: str) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise ObjectExistsError(
                f"lake key {key!r} already exists; raw objects are written once and never replaced"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)

    def put_file_once(self, key: str, src: Path, expect_sha256: str | None = None) -> None:
        tmp = self._temp_file()
        digest = hashlib.sha256()
        try:
            with src.open("rb") as fin, tmp.open("xb") as fout:
                while chunk := fin.read(COPY_CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SourceError(f"{src}: cannot copy into the lake: {exc.strerror}") from None
        if expect_sha256 is not None and digest.hexdigest() != expect_sha256:
            tmp.unlink(missing_ok=True)
            raise SourceError(
                f"{src}: the file changed while it was being read; it will be picked up next run"
            )
        self._link_once(tmp, key)

    def put_bytes_once(self, key: str, data: bytes) -> None:
        """Create the key's file exclusively (O_EXCL) and write it.

        A crash mid-write can leave a short object under a key no ledger entry
        names (keys carry the run id, so no later run writes it again); the
        file ledger, not the listing, says what the raw zone holds.
        """
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            with final.open("xb") as handle:
                handle.write(data)
        except FileExistsError:
            raise ObjectExistsError(
                f"lake key {key!r} already exists; raw objects are written once and never replaced"
            ) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise LakeError(f"lake key {key!r} not found under {self.root}") from None

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and self._tmp not in path.parents:
                yield path.relative_to(self.root).as_posix()

    def writable_uri(self, key: str) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def configure_duckdb(self, conn: Any) -> None:
        return None

    def iceberg_properties(self) -> dict[str, str]:
        return {}

    def remove_tree(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)


def _local(url: str) -> Store:
    parts = urlsplit(url)
    path = Path(url2pathname(parts.path)) if parts.scheme == "file" else Path(url)
    path.mkdir(parents=True, exist_ok=True)
    return LocalStore(path)


def _s3(url: str, options: S3Options) -> Store:
    from headwater.lake.s3 import S3Store  # boto3 is imported only for S3 lakes

    return S3Store.connect(url, options)


# Registry: URL scheme -> factory(url, S3 options).
STORES: dict[str, Callable[[str, S3Options], Store]] = {
    "file": lambda url, _: _local(url),
    "": lambda url, _: _local(url),
    "s3": _s3,
}


def open_store(url: str, s3: S3Options | None = None) -> Store:
    scheme = urlsplit(url).scheme
    factory = STORES.get(scheme)
    if factory is None:
        raise ConfigError(
            f"lake.url: scheme {scheme!r} is not supported (expected a local path, file:// "
            "or s3://bucket/prefix)"
        )
    return factory(url, s3 or S3Options())
