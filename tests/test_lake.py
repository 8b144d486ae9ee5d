"""The lake: put-once raw objects, the content-hash ledger, Iceberg commits and schema evolution."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headwater.errors import LakeError, ObjectExistsError, SourceError
from headwater.lake.raw import land_file, raw_key, sha256_file
from headwater.lake.store import LocalStore, open_store
from headwater.lake.tables import BATCH_PROP, RUN_PROP, Tables
from headwater.project import Project
from tests.fixtures.tiny import drop, lake, model, run_ok, tiny_project, warehouse

# ------------------------------------------------------------------- the store


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "lake")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(store: LocalStore) -> list[Path]:
    tmp = store.root / ".tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def test_put_file_once_writes_exact_bytes(tmp_path: Path, store: LocalStore) -> None:
    src = tmp_path / "in.csv"
    data = b"\xef\xbb\xbfa,b\r\n1,2\r\nno final newline"
    src.write_bytes(data)
    store.put_file_once("raw/s/run=00000001/in.csv", src, expect_sha256=sha(data))
    assert store.exists("raw/s/run=00000001/in.csv")
    with store.open("raw/s/run=00000001/in.csv") as handle:
        assert handle.read() == data
    assert list(store.list("raw")) == ["raw/s/run=00000001/in.csv"]
    assert leftovers(store) == []


def test_put_file_once_refuses_an_existing_key(tmp_path: Path, store: LocalStore) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_bytes(b"original\n")
    second.write_bytes(b"replacement\n")
    store.put_file_once("raw/s/k.csv", first)
    with pytest.raises(ObjectExistsError) as info:
        store.put_file_once("raw/s/k.csv", second)
    assert str(info.value) == (
        "lake key 'raw/s/k.csv' already exists; raw objects are written once and never replaced"
    )
    with store.open("raw/s/k.csv") as handle:
        assert handle.read() == b"original\n"
    assert leftovers(store) == []


def test_put_bytes_once_refuses_an_existing_key(store: LocalStore) -> None:
    store.put_bytes_once("raw/s/b.bin", b"one")
    with pytest.raises(ObjectExistsError):
        store.put_bytes_once("raw/s/b.bin", b"two")
    with store.open("raw/s/b.bin") as handle:
        assert handle.read() == b"one"


def test_put_file_once_refuses_a_changed_file(tmp_path: Path, store: LocalStore) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"1,a\n")
    hashed = sha256_file(src)
    src.write_bytes(b"1,a\n2,b\n")  # changed after it was hashed
    with pytest.raises(SourceError) as info:
        store.put_file_once("raw/s/in.csv", src, expect_sha256=hashed)
    assert str(info.value) == (
        f"{src}: the file changed while it was being read; it will be picked up next run"
    )
    assert not store.exists("raw/s/in.csv")
    assert leftovers(store) == []


def test_put_file_once_missing_source_file(tmp_path: Path, store: LocalStore) -> None:
    with pytest.raises(SourceError, match="cannot copy into the lake"):
        store.put_file_once("raw/s/x.csv", tmp_path / "missing.csv")
    assert not store.exists("raw/s/x.csv")
    assert leftovers(store) == []


@pytest.mark.parametrize("key", ["", "/abs/key", "a//b", "a/../b", "./a", "a/."])
def test_invalid_keys_are_refused(tmp_path: Path, store: LocalStore, key: str) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    with pytest.raises(LakeError, match="invalid lake key"):
        store.put_file_once(key, src)


def test_land_file_and_raw_keys(tmp_path: Path, store: LocalStore) -> None:
    src = tmp_path / "day 1.csv"
    src.write_bytes(b"1,a\n")
    raw = land_file(store, "src", 12, "sub/day 1.csv", src, sha256_file(src))
    assert raw.key == "raw/src/run=00000012/sub/day 1.csv"
    assert (raw.size, raw.sha256) == (4, sha(b"1,a\n"))
    assert raw_key("src", 3, "a\\b.csv") == "raw/src/run=00000003/a/b.csv"
    # A name can never climb out of its source's run folder.
    assert raw_key("src", 3, "../../etc/x.csv") == "raw/src/run=00000003/etc/x.csv"
    with pytest.raises(ObjectExistsError):
        land_file(store, "src", 12, "sub/day 1.csv", src, sha256_file(src))


def test_open_store_schemes(tmp_path: Path) -> None:
    local = open_store((tmp_path / "l1").as_uri())
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path / "l1"
    assert (tmp_path / "l1").is_dir()
    with pytest.raises(Exception, match="not supported"):
        open_store("ftp://host/lake")


# ---------------------------------------------------------- raw zone in a run

INPUTS: dict[str, bytes] = {
    "plain.csv": b"1,a,10\n2,b,20\n",
    "crlf_bom.csv": b"\xef\xbb\xbf3,c,30\r\n4,d,40\r\n",
    "no_newline.csv": b"5,e,50",
    "sub/nested.csv": b"6,f,60\n",
}

DEEP_YAML = """\
name: t
sources:
  src:
    kind: files
    path: inbox
    glob: "**/*.csv"
    csv: {columns: [id, name, amount], header: false}
"""


def test_raw_objects_are_byte_identical(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"ids": model("select cast(id as integer) as id from src", publish=True)},
        INPUTS,
        DEEP_YAML,
    )
    summary = run_ok(root)
    assert summary.sources["src"].files_new == 4
    assert summary.sources["src"].bytes_new == sum(len(b) for b in INPUTS.values())
    project = Project.load(root)
    store = project.open_store()
    run = f"run={summary.run_id:08d}"
    keys = sorted(store.list("raw"))
    assert keys == sorted(f"raw/src/{run}/{name}" for name in INPUTS)
    for name, data in INPUTS.items():
        with store.open(f"raw/src/{run}/{name}") as handle:
            assert handle.read() == data, name
    assert warehouse(root, "select id from ids order by id") == [(i,) for i in range(1, 7)]

    # A later run lands only the new file, under its own run id, and leaves the rest alone.
    drop(root, {"later.csv": b"7,g,70\n"})
    second = run_ok(root)
    assert sorted(store.list("raw")) == sorted(
        [*keys, f"raw/src/run={second.run_id:08d}/later.csv"]
    )
    for name, data in INPUTS.items():
        with store.open(f"raw/src/{run}/{name}") as handle:
            assert handle.read() == data, name


def test_ledger_skips_same_content_under_a_new_name(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "events": model(
                "select cast(id as integer) as id, name, _file from src",
                materialized="incremental",
                publish=True,
            )
        },
        {"day1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    # The same bytes re-sent under another name, plus one genuinely new file.
    drop(root, {"day1_resent.csv": "1,a,10\n2,b,20\n", "day2.csv": "3,c,30\n4,d,40\n"})
    second = run_ok(root)
    src = second.sources["src"]
    assert (src.files_found, src.files_new, src.files_unchanged, src.files_duplicate) == (
        3,
        1,
        1,
        1,
    )
    assert {"file": "day1_resent.csv", "same_content_as": "day1.csv"} in src.duplicates
    assert "day2.csv" not in {d["file"] for d in src.duplicates}
    assert src.rows_read == 2
    assert second.to_json()["sources"]["src"]["files_duplicate"] == src.files_duplicate
    assert lake(root, "select id, _file from events order by id") == [
        (1, "day1.csv"),
        (2, "day1.csv"),
        (3, "day2.csv"),
        (4, "day2.csv"),
    ]
    store = Project.load(root).open_store()
    assert not any(k.endswith("day1_resent.csv") for k in store.list("raw"))


def test_ledger_skips_a_duplicate_within_one_drop(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"events": model("select cast(id as integer) as id from src", publish=True)},
        {"a.csv": "1,a,10\n2,b,20\n", "b.csv": "1,a,10\n2,b,20\n"},
    )
    summary = run_ok(root)
    src = summary.sources["src"]
    assert (src.files_found, src.files_new, src.files_duplicate) == (2, 1, 1)
    assert src.duplicates == [{"file": "b.csv", "same_content_as": "a.csv"}]
    assert warehouse(root, "select id from events order by id") == [(1,), (2,)]


def test_many_files_land_in_order_across_groups(tmp_path: Path) -> None:
    """Files go to the workers in groups; which file is new, and under which name a
    duplicate lands, is still decided in file order, also across groups."""
    files = {f"f{i:03d}.csv": f"{i},n{i},{i * 10}\n" for i in range(150)}
    files["f140.csv"] = files["f005.csv"]  # a duplicate two groups later
    files["f141.csv"] = files["f140.csv"]
    root = tiny_project(
        tmp_path / "p", {"events": model("select cast(id as integer) as id, _file from src")}, files
    )
    summary = run_ok(root)
    src = summary.sources["src"]
    assert (src.files_found, src.files_new, src.files_duplicate) == (150, 148, 2)
    assert src.duplicates == [
        {"file": "f140.csv", "same_content_as": "f005.csv"},
        {"file": "f141.csv", "same_content_as": "f005.csv"},
    ]
    expected = [(i, f"f{i:03d}.csv") for i in range(150) if i not in (140, 141)]
    assert lake(root, "select id, _file from events order by id, _file") == expected
    keys = Project.load(root).open_store().list("raw")
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == sorted(
        n for n in files if n not in ("f140.csv", "f141.csv")
    )


def test_grouping_of_files_for_the_extract_workers() -> None:
    import datetime as dt

    from headwater.runs.extract import GROUP_BYTES, GROUP_FILES, _grouped
    from headwater.sources.base import Discovered

    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    def local(name: str, size: int) -> Discovered:
        return Discovered(name, Path(name), size, when)

    def remote(name: str) -> Discovered:
        return Discovered(name, None, 10, when, fetch=lambda: b"")

    small = [local(f"s{i}", 100) for i in range(GROUP_FILES + 1)]
    big = local("big", GROUP_BYTES + 1)
    found = [*small, big, remote("r1"), remote("r2"), local("last", 100)]
    groups = [[d.name for d in g] for g in _grouped(found)]
    assert groups == [
        [d.name for d in small[:GROUP_FILES]],
        [small[-1].name],
        ["big"],
        ["r1"],
        ["r2"],
        ["last"],
    ]
    assert [d for g in _grouped(found) for d in g] == found


# ------------------------------------------------------------- Iceberg tables


def write(tables: Tables, name: str, batch: int, run_id: int, table: pa.Table) -> str:
    path = tables.store.writable_uri(tables.new_file_key(name, batch, run_id))
    pq.write_table(table, path)
    return str(path)


@pytest.fixture
def tables(tmp_path: Path) -> Tables:
    return Tables.open(f"sqlite:///{tmp_path / 'state.db'}", LocalStore(tmp_path / "lake"))


def reopen(tables: Tables, tmp_path: Path) -> Tables:
    """A fresh instance: nothing cached, everything read back from the catalog."""
    return Tables.open(f"sqlite:///{tmp_path / 'state.db'}", tables.store)


def batch_table(batch: int, ids: list[int], **extra: pa.Array) -> pa.Table:
    return pa.table(
        {
            "_batch": pa.array([batch] * len(ids), pa.int64()),
            "id": pa.array(ids, pa.int32()),
            **extra,
        }
    )


def test_commit_records_batch_in_snapshots(tables: Tables, tmp_path: Path) -> None:
    f1 = write(tables, "t", 3, 11, batch_table(3, [1, 2]))
    info = tables.commit("t", [f1], mode="append", batch=3, run_id=11)
    assert (info.files, info.rows) == (1, 2)
    f2 = write(tables, "t", 5, 12, batch_table(5, [3]))
    info2 = tables.commit("t", [f2], mode="append", batch=5, run_id=12)
    assert info2.snapshot_id != info.snapshot_id

    fresh = reopen(tables, tmp_path)
    assert fresh.names() == ["t"]
    assert fresh.committed_batches("t") == {3, 5}
    summaries = [s.summary.additional_properties for s in fresh.load("t").snapshots()]
    assert [(s[BATCH_PROP], s[RUN_PROP]) for s in summaries] == [("3", "11"), ("5", "12")]
    assert fresh.current_snapshot_id("t") == info2.snapshot_id
    assert sorted(fresh.data_files("t")) == sorted([f1, f2])
    assert fresh.data_files("t", after_batch=3) == [f2]
    assert fresh.data_files("t", after_batch=5) == []
    assert fresh.committed_batches("missing") == set()


def test_files_overlapping_skips_files_by_their_key_bounds(tables: Tables) -> None:
    """Iceberg's per-file bounds skip the files that cannot hold a key in the ranges;
    a range Iceberg cannot bind prunes nothing."""

    def stamps(*days: int) -> pa.Array:
        return pa.array([dt.datetime(2025, 1, d) for d in days], pa.timestamp("us"))

    def prices(*amounts: str) -> pa.Array:
        return pa.array([Decimal(a) for a in amounts], pa.decimal128(10, 2))

    f1 = write(
        tables,
        "t",
        1,
        1,
        batch_table(1, [1, 2], name=pa.array(["a", "b"]), at=stamps(1, 1), price=prices("1", "3")),
    )
    f2 = write(
        tables,
        "t",
        2,
        2,
        batch_table(2, [5, 6], name=pa.array(["c", "d"]), at=stamps(2, 4), price=prices("5", "6")),
    )
    f3 = write(tables, "t", 3, 3, batch_table(3, [9], name=pa.array([None], pa.string())))
    for batch, f in enumerate([f1, f2, f3], start=1):
        tables.commit("t", [f], mode="append", batch=batch, run_id=batch)
    assert tables.files_overlapping("t", {"id": (5, 7)}) == [f2]
    assert sorted(tables.files_overlapping("t", {"id": (2, 5)})) == sorted([f1, f2])
    assert tables.files_overlapping("t", {"id": (10, 20)}) == []
    assert sorted(tables.files_overlapping("t", {"id": (1, 9), "name": ("b", "c")})) == [f1, f2]
    at, price = dt.datetime(2025, 1, 2, 3, 4, 5), Decimal("2.50")
    # The third file has neither column (no bounds): it is kept.
    assert sorted(tables.files_overlapping("t", {"at": (at, at)})) == sorted([f2, f3])
    assert sorted(tables.files_overlapping("t", {"price": (price, price)})) == sorted([f1, f3])
    everything = sorted([f1, f2, f3])
    assert sorted(tables.files_overlapping("t", {})) == everything
    assert sorted(tables.files_overlapping("t", {"id": ("x", "y")})) == everything
    assert sorted(tables.files_overlapping("t", {"id": (dt.time(1), dt.time(2))})) == everything
    assert sorted(tables.files_overlapping("t", {"nope": (1, 2)})) == everything


def test_replace_commit_keeps_only_new_files(tables: Tables, tmp_path: Path) -> None:
    f1 = write(tables, "t", 1, 1, batch_table(1, [1, 2]))
    tables.commit("t", [f1], mode="append", batch=1, run_id=1)
    f2 = write(tables, "t", 2, 2, batch_table(2, [7]))
    tables.commit("t", [f2], mode="replace", batch=2, run_id=2)
    fresh = reopen(tables, tmp_path)
    assert fresh.data_files("t") == [f2]
    assert fresh.committed_batches("t") == {1, 2}
    assert fresh.load("t").scan().to_arrow().column("id").to_pylist() == [7]


def test_commit_needs_a_file(tables: Tables) -> None:
    with pytest.raises(LakeError, match="needs at least one data file"):
        tables.commit("t", [], mode="append", batch=1, run_id=1)


def test_load_of_a_missing_table(tables: Tables) -> None:
    assert not tables.exists("nope")
    with pytest.raises(LakeError, match="processed table 'nope' does not exist yet"):
        tables.load("nope")


def test_schema_evolves_on_a_new_column(tables: Tables, tmp_path: Path) -> None:
    f1 = write(tables, "t", 1, 1, batch_table(1, [1, 2]))
    tables.commit("t", [f1], mode="append", batch=1, run_id=1)
    f2 = write(tables, "t", 2, 2, batch_table(2, [3], note=pa.array(["new"], pa.string())))
    tables.commit("t", [f2], mode="append", batch=2, run_id=2)
    fresh = reopen(tables, tmp_path)
    table = fresh.load("t")
    assert [f.name for f in table.schema().fields] == ["_batch", "id", "note"]
    rows = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])
    assert rows == [
        {"_batch": 1, "id": 1, "note": None},
        {"_batch": 1, "id": 2, "note": None},
        {"_batch": 2, "id": 3, "note": "new"},
    ]


def test_schema_evolves_in_a_run(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {"events": model("select cast(id as integer) as id from src", materialized="incremental")},
        {"f1.csv": "1,a,10\n2,b,20\n"},
    )
    run_ok(root)
    (root / "models" / "events.sql").write_text(
        model(
            "select cast(id as integer) as id, upper(nullif(name, '')) as label from src",
            materialized="incremental",
        )
    )
    drop(root, {"f2.csv": "3,c,30\n4,d,40\n"})
    run_ok(root)
    assert lake(root, "select id, label, _batch from events order by id") == [
        (1, None, 1001),  # batch ids: run id * 1000 + batch number within the run
        (2, None, 1001),
        (3, "C", 2001),
        (4, "D", 2001),
    ]


def test_schema_evolves_on_a_new_required_column(tables: Tables, tmp_path: Path) -> None:
    f1 = write(tables, "t", 1, 1, batch_table(1, [1, 2]))
    tables.commit("t", [f1], mode="append", batch=1, run_id=1)
    schema = pa.schema(
        [
            pa.field("_batch", pa.int64()),
            pa.field("id", pa.int32()),
            pa.field("note", pa.string(), nullable=False),
        ]
    )
    f2 = write(tables, "t", 2, 2, pa.table({"_batch": [2], "id": [3], "note": ["x"]}, schema))
    tables.commit("t", [f2], mode="append", batch=2, run_id=2)
    assert [f.name for f in reopen(tables, tmp_path).load("t").schema().fields] == [
        "_batch",
        "id",
        "note",
    ]


def test_commit_accepts_an_optional_column_after_a_required_one(
    tables: Tables, tmp_path: Path
) -> None:
    required = pa.schema([pa.field("_batch", pa.int64()), pa.field("id", pa.int32(), False)])
    f1 = write(tables, "t", 1, 1, pa.table({"_batch": [1], "id": [1]}, required))
    tables.commit("t", [f1], mode="append", batch=1, run_id=1)
    f2 = write(tables, "t", 2, 2, batch_table(2, [2, 3]))
    tables.commit("t", [f2], mode="append", batch=2, run_id=2)
    assert reopen(tables, tmp_path).committed_batches("t") == {1, 2}


PLAIN = pa.table(
    {
        "_batch": pa.array([7, 7, 7], pa.int64()),
        "_line": pa.array([1, 2, None], pa.int64()),
        "name": pa.array(["a", None, "é🔥"], pa.string()),
        "n": pa.array([1, None, -3], pa.int32()),
        "small": pa.array([1, None, -3], pa.int16()),
        "x": pa.array([0.5, None, 2.0], pa.float64()),
        "ok": pa.array([True, None, False], pa.bool_()),
        "day": pa.array([0, None, 19_000], pa.date32()),
        "at": pa.array([0, None, 1_700_000_000_123_456], pa.timestamp("us")),
        "at_utc": pa.array([0, None, 1], pa.timestamp("us", tz="UTC")),
    }
)


def _columns(path: Path) -> list[tuple[str, str, str]]:
    """Name, physical and logical type of each column; a signed INT32/INT64 annotation is
    left out (Parquet reads an unannotated INT32/INT64 as exactly that; DuckDB writes it,
    pyarrow does not)."""
    schema = pq.ParquetFile(path).schema
    out = []
    for column in (schema.column(i) for i in range(len(schema))):
        logical = str(column.logical_type)
        width = column.physical_type.removeprefix("INT")
        if logical == f"Int(bitWidth={width}, isSigned=true)":
            logical = "None"
        out.append((column.name, column.physical_type, logical))
    return out


def test_plain_parquet_is_what_duckdb_writes(tmp_path: Path) -> None:
    """A part written by pyarrow (no PII policy) has the Parquet types, values and row
    groups of the same table written by DuckDB's COPY, so a table can mix both."""
    import duckdb

    from headwater.lake import parquet

    assert parquet.plain_types(PLAIN.schema)
    ours, theirs = tmp_path / "ours.parquet", tmp_path / "duck.parquet"
    assert parquet.write_plain(PLAIN, str(ours), "test") == 3
    conn = duckdb.connect()
    conn.register("t", PLAIN)
    conn.execute(f"COPY t TO '{theirs}' (FORMAT parquet, COMPRESSION snappy)")
    assert _columns(ours) == _columns(theirs)
    assert [f.name for f in pq.read_schema(ours)] == PLAIN.column_names
    both = conn.execute(
        f"SELECT count(*) FROM (SELECT * FROM '{ours}' EXCEPT ALL SELECT * FROM '{theirs}')"
    ).fetchone()
    assert both == (0,)
    assert conn.execute(f"SELECT count(*) FROM '{ours}'").fetchone() == (3,)
    assert b"ARROW:schema" not in (pq.ParquetFile(ours).metadata.metadata or {})
    big = pa.table({"i": pa.array(range(300_000), pa.int64())})
    parquet.write_plain(big, str(ours), "test")
    assert pq.ParquetFile(ours).metadata.num_row_groups == 3  # 122,880 rows a group


@pytest.mark.parametrize(
    "kind", [pa.decimal128(10, 2), pa.uint32(), pa.null(), pa.timestamp("ms"), pa.list_(pa.int64())]
)
def test_other_types_go_through_duckdb(kind: pa.DataType) -> None:
    from headwater.lake import parquet

    assert not parquet.plain_types(pa.schema([("a", pa.string()), ("b", kind)]))


def test_plain_parquet_error_names_the_file(tmp_path: Path) -> None:
    from headwater.lake import parquet

    target = tmp_path / "missing" / "x.parquet"
    with pytest.raises(LakeError, match=r"source s: cannot write .*missing/x\.parquet"):
        parquet.write_plain(PLAIN, str(target), "source s")


def test_plain_parquet_uses_a_dictionary_only_where_values_repeat(tmp_path: Path) -> None:
    from headwater.lake.parquet import write_plain

    rows = 10_000
    table = pa.table(
        {
            "level": pa.array([("INFO", "WARN", "ERROR")[i % 3] for i in range(rows)]),
            "message": pa.array([f"message {i}" for i in range(rows)]),
            "n": pa.array(range(rows), pa.int64()),
            "code": pa.array([i % 7 for i in range(rows)], pa.int64()),
        }
    )
    path = tmp_path / "part.parquet"
    write_plain(table, str(path), "test")
    group = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {
        group.column(i).path_in_schema: "RLE_DICTIONARY" in group.column(i).encodings
        for i in range(group.num_columns)
    }
    assert encodings == {"level": True, "message": False, "n": False, "code": True}
    assert pq.read_table(path).equals(table)
