"""Object stores behind one small interface; the lake never writes anywhere else.

`put_file_once` is the raw zone's guarantee: writing a key that exists fails
with `ObjectExistsError`, enforced by the store itself (a hard link on a local
disk, `If-None-Match: *` on S3), never by a check-then-write race.

Keys are `/`-separated relative paths. Local stores hand out real paths so
DuckDB and pyiceberg can read and write Parquet in place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

from headwater.errors import ConfigError, LakeError, ObjectExistsError, SourceError

COPY_CHUNK = 1 << 20


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

    def local_path(self, key: str) -> Path:
        """A filesystem path for `key`, for engines that write files in place."""

    def uri(self, key: str) -> str:
        """The URI engines use to read `key`."""

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

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def remove_tree(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)


def _local(url: str) -> Store:
    parts = urlsplit(url)
    path = Path(url2pathname(parts.path)) if parts.scheme == "file" else Path(url)
    path.mkdir(parents=True, exist_ok=True)
    return LocalStore(path)


STORES: dict[str, Callable[[str], Store]] = {"file": _local, "": _local}


def open_store(url: str) -> Store:
    scheme = urlsplit(url).scheme
    factory = STORES.get(scheme)
    if factory is None:
        raise ConfigError(
            f"lake.url: scheme {scheme!r} is not supported here (expected a local path or file://)"
        )
    return factory(url)
