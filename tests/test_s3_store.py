"""The S3 store against a real S3 API server (moto_server): put-once, listing, DuckDB access."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from headwater.config import S3Options
from headwater.errors import LakeError, ObjectExistsError
from headwater.lake.s3 import S3Settings, S3Store
from headwater.lake.store import DUCKDB_SETTINGS, LocalStore, open_store
from tests.fixtures.servers import Bucket


def test_put_once_refused_on_s3_and_on_disk(s3_bucket: Bucket, tmp_path: Path) -> None:
    s3 = open_store(s3_bucket.url("lake"))
    assert isinstance(s3, S3Store)
    local = LocalStore(tmp_path / "lake")
    src = tmp_path / "a.csv"
    src.write_bytes(b"first\n")
    for store in (s3, local):
        store.put_bytes_once("raw/s/run=00000001/a.csv", b"first\n")
        with pytest.raises(ObjectExistsError, match="already exists"):
            store.put_bytes_once("raw/s/run=00000001/a.csv", b"second\n")
        with pytest.raises(ObjectExistsError, match="already exists"):
            store.put_file_once("raw/s/run=00000001/a.csv", src)
        with store.open("raw/s/run=00000001/a.csv") as handle:
            assert handle.read() == b"first\n"


def test_listing_uri_and_scratch_removal(s3_bucket: Bucket) -> None:
    store = open_store(s3_bucket.url("some/prefix"))
    for key in ("raw/x/1.csv", "quarantine/m/batch=1/a.parquet", "quarantine/m/batch=1/b.parquet"):
        store.put_bytes_once(key, b"x")
    assert sorted(store.list("quarantine")) == [
        "quarantine/m/batch=1/a.parquet",
        "quarantine/m/batch=1/b.parquet",
    ]
    assert store.uri("raw/x/1.csv") == f"s3://{s3_bucket.name}/some/prefix/raw/x/1.csv"
    assert store.exists("raw/x/1.csv") and not store.exists("raw/x/2.csv")
    store.remove_tree("quarantine/m")
    assert list(store.list("quarantine")) == []
    with pytest.raises(LakeError, match="raw zone is never deleted"):
        store.remove_tree("raw/x")
    assert list(store.list("raw")) == ["raw/x/1.csv"]


def test_duckdb_reads_and_writes_the_store(s3_bucket: Bucket) -> None:
    store = open_store(s3_bucket.url("lake"))
    conn = duckdb.connect(config=DUCKDB_SETTINGS)
    store.configure_duckdb(conn)
    uri = store.writable_uri("processed/t/data/f.parquet")
    conn.execute(f"COPY (SELECT range AS x FROM range(1000)) TO '{uri}' (FORMAT parquet)")
    assert conn.execute(f"SELECT count(*), sum(x) FROM read_parquet('{uri}')").fetchall() == [
        (1000, 499500)
    ]
    assert list(store.list("processed")) == ["processed/t/data/f.parquet"]


def test_settings_never_show_a_secret(s3_bucket: Bucket) -> None:
    settings = S3Settings.resolve(S3Options(access_key_id="AKIAEXAMPLE", region="eu-west-1"))
    assert "testing-secret" not in repr(settings) and "AKIA" not in repr(settings)
    assert settings.endpoint_url == s3_bucket.endpoint  # from AWS_ENDPOINT_URL


def test_server_side_encryption_is_requested(s3_bucket: Bucket) -> None:
    store = S3Store.connect(s3_bucket.url("enc"), S3Options(sse="AES256"))
    store.put_bytes_once("raw/a", b"secret bytes")
    head = store.client.head_object(Bucket=s3_bucket.name, Key="enc/raw/a")
    assert head.get("ServerSideEncryption") == "AES256"
    digest = hashlib.sha256(b"secret bytes").hexdigest()
    assert hashlib.sha256(store.open("raw/a").read()).hexdigest() == digest
