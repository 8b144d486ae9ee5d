"""The cafe template on real servers: lake on S3 (moto_server), state on PostgreSQL.

The same project, changed by configuration only, must give table for table
the warehouse the embedded run gives, keep raw objects byte-identical across
reruns, and keep two concurrent runs apart.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from headwater.project import Project
from headwater.runs.lock import PgAdvisoryLock
from tests.conftest import CANONICAL, TEAM4, run_project, warehouse_snapshot
from tests.fixtures.servers import Bucket


def use_servers(root: Path, lake: str | None = None, state: str | None = None) -> None:
    path = root / "headwater.yaml"
    text = path.read_text()
    if lake is not None:
        text = text.replace("url: .headwater/lake", f"url: {lake}")
    if state is not None:
        text = text.replace("url: sqlite:///.headwater/state.db", f"url: {state}")
    path.write_text(text)


def sample_files(cafe_data: Path) -> list[Path]:
    team4 = sorted((cafe_data / TEAM4).glob("*.csv"))[:3]
    return [cafe_data / CANONICAL, *team4]


def raw_checksums(bucket: Bucket) -> dict[str, str]:
    client = bucket.client()
    out = {}
    pages = client.get_paginator("list_objects_v2").paginate(  # type: ignore[attr-defined]
        Bucket=bucket.name, Prefix="lake/raw/"
    )
    for page in pages:
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket.name, Key=item["Key"])["Body"].read()  # type: ignore[attr-defined]
            out[item["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def test_s3_lake_and_postgres_state_match_the_embedded_run(
    make_project: Callable[..., Path], cafe_data: Path, s3_bucket: Bucket, pg_database: str
) -> None:
    files = sample_files(cafe_data)
    embedded = make_project(files)
    assert run_project(embedded).ok
    served = make_project(files)
    use_servers(served, lake=s3_bucket.url("lake"), state=pg_database)
    first = run_project(served)
    assert first.ok, first.error
    assert warehouse_snapshot(served) == warehouse_snapshot(embedded)
    assert not (served / ".headwater" / "lake").exists()  # nothing of the lake on local disk
    assert not (served / ".headwater" / "state.db").exists()

    before = raw_checksums(s3_bucket)
    assert len(before) == len(files)
    for _ in range(3):
        again = run_project(served)
        assert again.ok and again.sources["branch_files"].files_new == 0
    assert raw_checksums(s3_bucket) == before
    assert warehouse_snapshot(served) == warehouse_snapshot(embedded)


def test_query_lake_reads_s3_tables(
    make_project: Callable[..., Path], cafe_data: Path, s3_bucket: Bucket, pg_database: str
) -> None:
    root = make_project([cafe_data / CANONICAL])
    use_servers(root, lake=s3_bucket.url("lake"), state=pg_database)
    assert run_project(root).ok
    out = subprocess.run(
        [sys.executable, "-m", "headwater", "query", "-p", str(root), "--lake", "--format", "csv",
         "select count(*) as n, sum(total) as revenue from transactions"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == ["268,2088.65"]


def test_files_source_reads_an_s3_prefix(
    make_project: Callable[..., Path], cafe_data: Path, s3_bucket: Bucket
) -> None:
    embedded = make_project(sample_files(cafe_data))
    assert run_project(embedded).ok
    client = s3_bucket.client()
    for i, f in enumerate(sample_files(cafe_data)):
        client.put_object(Bucket=s3_bucket.name, Key=f"drops/day{i}/{f.name}", Body=f.read_bytes())  # type: ignore[attr-defined]
    client.put_object(Bucket=s3_bucket.name, Key="drops/.hidden/x.csv", Body=b"junk")  # type: ignore[attr-defined]
    client.put_object(Bucket=s3_bucket.name, Key="drops/notes.txt", Body=b"junk")  # type: ignore[attr-defined]
    root = make_project()
    text = (root / "headwater.yaml").read_text()
    (root / "headwater.yaml").write_text(
        text.replace("path: inbox", f"path: s3://{s3_bucket.name}/drops")
    )
    summary = run_project(root)
    assert summary.ok, summary.error
    assert summary.sources["branch_files"].files_new == len(sample_files(cafe_data))
    assert warehouse_snapshot(root) == warehouse_snapshot(embedded)


def test_two_runs_started_together_one_runs_the_other_stops_clearly(
    make_project: Callable[..., Path], cafe_data: Path, s3_bucket: Bucket, pg_database: str
) -> None:
    embedded = make_project(sample_files(cafe_data))
    assert run_project(embedded).ok
    root = make_project(sample_files(cafe_data))
    use_servers(root, lake=s3_bucket.url("lake"), state=pg_database)
    command = [sys.executable, "-m", "headwater", "run", "-p", str(root), "-q"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        results.append((proc.returncode, err))
    codes = sorted(code for code, _ in results)
    messages = " ".join(err for _, err in results)
    if codes == [0, 0]:
        # The second started after the first finished; it found nothing new. Both fine.
        pass
    else:
        assert codes == [0, 1], results
        assert "another run of project 'cafe' is in progress" in messages
    assert warehouse_snapshot(root) == warehouse_snapshot(embedded)

    # Deterministically: while another session holds the project's lock, a run stops at once.
    project = Project.load(root)
    with PgAdvisoryLock(project.state_url, project.config.name):
        held = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert held.returncode == 1
    assert "another run of project 'cafe' is in progress" in held.stderr
    assert "stopped without doing anything" in held.stderr


@pytest.mark.parametrize("where", ["s3", "disk"])
def test_lake_keys_never_rewritten_by_a_rerun(
    make_project: Callable[..., Path], cafe_data: Path, s3_bucket: Bucket, where: str
) -> None:
    root = make_project([cafe_data / CANONICAL])
    if where == "s3":
        use_servers(root, lake=s3_bucket.url("lake"))
    assert run_project(root).ok
    store = Project.load(root).open_store()
    keys = list(store.list("raw"))
    assert len(keys) == 1
    from headwater.errors import ObjectExistsError

    with pytest.raises(ObjectExistsError):
        store.put_bytes_once(keys[0], b"tampered")
    with store.open(keys[0]) as handle:
        assert handle.read() == (cafe_data / CANONICAL).read_bytes()
