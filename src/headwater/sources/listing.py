"""Where a `files` source finds its files: a local folder or an `s3://` prefix.

Both listings apply the same glob to names relative to the source's root
(`*` stays within a folder, `**/` spans any number of folders) and skip
hidden names (any part starting with `.`). S3 objects are fetched whole when
extracted; local files are read from disk. An S3 listing or fetch that could
not reach the endpoint, timed out or got a 5xx / SlowDown answer raises
`SourceUnavailableError` (transient: the pipeline retries the source); a
refusal (no such bucket, access denied) raises `SourceError`.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache, partial
from pathlib import Path
from typing import Any

from headwater.config import S3Options
from headwater.errors import ConfigError, SourceError, SourceUnavailableError, TransientError
from headwater.sources.base import Discovered


@cache
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over `/`-separated names as a regex (`**/` = any folders, `*` = within one)."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _hidden(name: str) -> bool:
    return any(p.startswith(".") for p in name.split("/"))


def list_local(source: str, folder: Path, glob: str, path_key: str) -> list[Discovered]:
    if not folder.is_dir():
        raise SourceError(
            f"source {source!r}: folder {folder} does not exist (sources.{source}.path is "
            f"{path_key!r})"
        )
    found = []
    for path in sorted(folder.glob(glob)):
        name = path.relative_to(folder).as_posix()
        if not path.is_file() or _hidden(name):
            continue
        stat = path.stat()
        found.append(
            Discovered(
                name=name,
                path=path,
                size=stat.st_size,
                modified_at=dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).replace(tzinfo=None),
                location=str(path),
            )
        )
    return found


def _s3_error(source: str, what: str, exc: Exception) -> Exception:
    from headwater.lake.s3 import translate

    error = translate(exc, what)
    if isinstance(error, TransientError):
        return SourceUnavailableError(f"source {source!r}: {error}")
    if isinstance(error, ConfigError):
        return ConfigError(f"source {source!r}: {error}")
    return SourceError(f"source {source!r}: {error}")


def _fetch(source: str, client: Any, bucket: str, key: str) -> bytes:
    import botocore.exceptions

    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise _s3_error(source, f"cannot fetch s3://{bucket}/{key}", exc) from None
    return body


def list_s3(source: str, url: str, glob: str, options: S3Options) -> list[Discovered]:
    """Objects under an `s3://bucket/prefix` matching the glob, oldest name order."""
    import botocore.exceptions

    from headwater.lake.s3 import S3Settings, split_s3_url

    bucket, prefix = split_s3_url(url)
    client = S3Settings.resolve(options).client()
    start = f"{prefix}/" if prefix else ""
    pattern = glob_regex(glob)
    found = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                name = key[len(start) :]
                if not name or name.endswith("/") or _hidden(name) or not pattern.match(name):
                    continue
                found.append(
                    Discovered(
                        name=name,
                        path=None,
                        size=int(item["Size"]),
                        modified_at=item["LastModified"].astimezone(dt.UTC).replace(tzinfo=None),
                        location=f"s3://{bucket}/{key}",
                        fetch=partial(_fetch, source, client, bucket, key),
                    )
                )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise _s3_error(source, f"cannot list {url}", exc) from None
    return sorted(found, key=lambda d: d.name)
