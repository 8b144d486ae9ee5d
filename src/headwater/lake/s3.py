"""The S3 store: the lake on any S3 API (AWS, MinIO, moto, Ceph...).

Credentials are resolved once, through boto3's standard chain (the
configuration's keys first, then the environment, `~/.aws`, an instance
role), and handed to the three clients that touch S3: boto3 for raw objects,
DuckDB's httpfs extension (loaded from the `duckdb-extension-httpfs` package,
never downloaded) for Parquet, and pyiceberg's pyarrow FileIO for Iceberg
metadata. The endpoint comes from `endpoint_url` or `AWS_ENDPOINT_URL(_S3)`.

Put-once is enforced by S3 itself: `PutObject` with `If-None-Match: *`
fails with 412 when the key exists, whoever wrote it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions

from headwater import extensions
from headwater.config import S3Options
from headwater.errors import (
    ConfigError,
    LakeError,
    LakeUnavailableError,
    ObjectExistsError,
    SourceError,
    transient_message,
)
from headwater.sql import literal

TRANSIENT_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503"}


@dataclass(frozen=True)
class S3Settings:
    """S3 options with the AWS chain applied: what every client is given."""

    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    path_style: bool
    sse: str
    kms_key_id: str | None

    def __repr__(self) -> str:  # never print a secret
        return f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r})"

    @classmethod
    def resolve(cls, options: S3Options) -> S3Settings:
        endpoint = (
            options.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        session = boto3.session.Session(
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=(
                options.secret_access_key.get_secret_value() if options.secret_access_key else None
            ),
            aws_session_token=(
                options.session_token.get_secret_value() if options.session_token else None
            ),
            region_name=options.region,
        )
        creds = session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
        return cls(
            endpoint_url=endpoint,
            region=session.region_name or "us-east-1",
            access_key_id=frozen.access_key if frozen else None,
            secret_access_key=frozen.secret_key if frozen else None,
            session_token=frozen.token if frozen else None,
            path_style=options.path_style if options.path_style is not None else bool(endpoint),
            sse=options.sse,
            kms_key_id=options.kms_key_id,
        )

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            config=botocore.config.Config(
                s3={"addressing_style": "path" if self.path_style else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )

    def put_args(self) -> dict[str, str]:
        """Server-side encryption arguments for PutObject."""
        if self.sse == "none":
            return {}
        args = {"ServerSideEncryption": self.sse}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def configure_duckdb(
        self, conn: Any, name: str = "headwater_s3", scope: str | None = None
    ) -> None:
        """Load httpfs from its wheel and give the connection these credentials.

        With `scope` (an `s3://bucket/prefix`), the credentials apply under it only,
        so a connection can hold the lake's and another bucket's side by side.
        """
        extensions.load(conn, "httpfs")
        parts = [f"TYPE s3, REGION {literal(self.region)}"]
        if scope:
            parts.append(f"SCOPE {literal(scope)}")
        if self.access_key_id:
            parts.append(f"KEY_ID {literal(self.access_key_id)}")
            parts.append(f"SECRET {literal(self.secret_access_key or '')}")
        if self.session_token:
            parts.append(f"SESSION_TOKEN {literal(self.session_token)}")
        if self.endpoint_url:
            endpoint = urlsplit(self.endpoint_url)
            parts.append(f"ENDPOINT {literal(endpoint.netloc or endpoint.path)}")
            parts.append(f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'}")
        parts.append(f"URL_STYLE {literal('path' if self.path_style else 'vhost')}")
        if self.kms_key_id:
            parts.append(f"KMS_KEY_ID {literal(self.kms_key_id)}")
        conn.execute(f"CREATE OR REPLACE SECRET {name} ({', '.join(parts)})").fetchall()

    def iceberg_properties(self) -> dict[str, str]:
        props = {"s3.region": self.region}
        if self.endpoint_url:
            props["s3.endpoint"] = self.endpoint_url
        if self.access_key_id:
            props["s3.access-key-id"] = self.access_key_id
            props["s3.secret-access-key"] = self.secret_access_key or ""
        if self.session_token:
            props["s3.session-token"] = self.session_token
        if self.path_style:
            props["s3.force-virtual-addressing"] = "false"
        return props


def split_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix/` -> (bucket, `prefix`) without slashes at the ends."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"{url!r} is not an s3://bucket/prefix URL")
    return parts.netloc, parts.path.strip("/")


# Network failures: the endpoint unreachable, a connect or read timeout, a connection
# closed mid-answer. A TLS error is one only when its message says so (a certificate
# that does not verify stays terminal).
NETWORK_ERRORS = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
)


def translate(exc: Exception, what: str) -> Exception:
    """A boto error as a headwater error: unreachable, timeouts, throttling and 5xx are transient.

    Transient ones are `LakeUnavailableError`s; callers outside the lake (a `files`
    source on S3, the Redshift staging) re-raise them as their own transient class.
    """
    if isinstance(exc, botocore.exceptions.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in TRANSIENT_CODES or status >= 500:
            return LakeUnavailableError(f"{what}: S3 answered {code} ({status}); try again")
        return LakeError(f"{what}: S3 refused: {code} {exc.response['Error'].get('Message', '')}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return ConfigError(
            f"{what}: no AWS credentials (set lake.s3.access_key_id, AWS_ACCESS_KEY_ID "
            "or a profile)"
        )
    if isinstance(exc, botocore.exceptions.SSLError):
        if transient_message(str(exc)):
            return LakeUnavailableError(f"{what}: cannot reach S3: {exc}")
        return LakeError(f"{what}: TLS failed: {exc}")
    if isinstance(exc, NETWORK_ERRORS):
        return LakeUnavailableError(f"{what}: cannot reach S3: {exc}")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return LakeError(f"{what}: {exc}")
    return exc


class S3Store:
    """Objects under `s3://bucket/prefix/`."""

    def __init__(self, url: str, settings: S3Settings) -> None:
        self.bucket, self.prefix = split_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.settings = settings
        self.client = settings.client()

    @classmethod
    def connect(cls, url: str, options: S3Options) -> S3Store:
        return cls(url, S3Settings.resolve(options))

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise LakeError(f"invalid lake key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _put_once(self, key: str, body: Any) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=body,
                IfNoneMatch="*",
                **self.settings.put_args(),
            )
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise ObjectExistsError(
                    f"lake key {key!r} already exists in {self.url}; raw objects are written "
                    "once and never replaced"
                ) from None
            raise translate(exc, f"put {self.uri(key)}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise translate(exc, f"put {self.uri(key)}") from None

    def put_file_once(self, key: str, src: Path, expect_sha256: str | None = None) -> None:
        import hashlib

        digest = hashlib.sha256()
        try:
            with src.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256")
        except OSError as exc:
            raise SourceError(f"{src}: cannot read: {exc.strerror}") from None
        if expect_sha256 is not None and digest.hexdigest() != expect_sha256:
            raise SourceError(
                f"{src}: the file changed while it was being read; it will be picked up next run"
            )
        with src.open("rb") as handle:
            self._put_once(key, handle)

    def put_bytes_once(self, key: str, data: bytes) -> None:
        self._put_once(key, data)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise translate(exc, f"head {self.uri(key)}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise translate(exc, f"head {self.uri(key)}") from None

    def open(self, key: str) -> BinaryIO:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise LakeError(f"lake key {key!r} not found in {self.url}") from None
            raise translate(exc, f"get {self.uri(key)}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise translate(exc, f"get {self.uri(key)}") from None
        body: BinaryIO = response["Body"]
        return body

    def list(self, prefix: str) -> Iterator[str]:
        start = self._key(prefix) + "/" if prefix else (self.prefix + "/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    yield str(item["Key"])[strip:]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise translate(exc, f"list {self.uri(prefix or '.')}") from None

    def writable_uri(self, key: str) -> str:
        return self.uri(key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def configure_duckdb(self, conn: Any) -> None:
        self.settings.configure_duckdb(conn)

    def iceberg_properties(self) -> dict[str, str]:
        return self.settings.iceberg_properties()

    def remove_tree(self, prefix: str) -> None:
        """Delete scratch under `prefix` (quarantine of an uncommitted attempt; never raw)."""
        if prefix.split("/", maxsplit=1)[0] == "raw":
            raise LakeError(f"refusing to delete {prefix!r}: the raw zone is never deleted")
        keys = [self._key(k) for k in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            try:
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk]}
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                raise translate(exc, f"delete under {self.uri(prefix)}") from None
