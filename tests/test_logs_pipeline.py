"""Log sources through whole runs: the real CarePlus logs configured in YAML only, JSON
lines whose later files add fields, quarantine, PII and files larger than a chunk."""

from __future__ import annotations

import logging
import re
import tracemalloc
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from headwater.config import FilesSource
from headwater.config_formats import LogOptions
from headwater.project import Project
from headwater.sources import files, textlines
from headwater.sources.base import ParsedPart, RawInput
from headwater.sources.files import FilesSourceReader
from headwater.sources.logs import parse_log
from headwater.sources.textlines import TextPiece, prepare
from headwater.state import ledger
from headwater.state.db import StateDB
from tests.conftest import shared_data
from tests.fixtures.tiny import cli, drop, lake, lake_columns, model, run_ok, tiny_project

LOGS = "data ingestion/support-logs/day-wise-logs-data"
LF_DIR = "Aadarsh20449__CarePlus-Ticket-Analytics-Pipeline/" + LOGS
CRLF_DIR = (
    "JacobDaniel-82__CarePlus-Support-Analytics-Pipeline/ingestion/support-logs/day-wise-logs-data"
)

CAREPLUS_YAML = """\
name: careplus_logs
sources:
  support_logs:
    kind: files
    path: {path}
    glob: "support_logs_*.log"
    format: log
    chunk_mb: {chunk_mb}
    log:
      separator: '^---$'
      patterns:
        - regex: '^(?P<logged_at>\\d{{4}}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d) \\[(?P<level>[^\\]]*)\\] (?P<component>\\S+) - '
          line: 1
      pairs: true
      fields:
        logged_at: {{type: timestamp, format: '%Y-%m-%d %H:%M:%S'}}
"""
EVENTS = model(
    "select distinct * exclude (_batch, _file, _file_hash, _line) from support_logs",
    materialized="table",
)
RECORD = (
    "2025-07-{day:02d} 00:{minute:02d}:00 [INFO] careplus.support.GenericService - "
    "TicketID=TCK07{day:02d}{n:03d} SessionID=sess_TCK07{day:02d}{n:03d}\n"
    "IP=10.0.0.{n} | ResponseTime={rt}ms | CPU=41.27% | EventType=generic_event | Error=false\n"
    'UserAgent="curl/7.68.0"\n'
    'Message=" event for TCK07{day:02d}{n:03d}"\n'
    'Debug="ℹ️ Logged for monitoring"\n'
    "TraceID=None\n"
    "---"
)


def careplus_project(root: Path, path: Path, chunk_mb: int = 32) -> Path:
    text = CAREPLUS_YAML.format(path=str(path), chunk_mb=chunk_mb)
    return tiny_project(root, {"log_events": EVENTS}, {}, yaml_text=text)


@pytest.mark.parametrize("folder", [LF_DIR, CRLF_DIR], ids=["lf", "crlf"])
def test_careplus_logs_from_yaml_only(tmp_path: Path, folder: str) -> None:
    path = shared_data() / "careplus" / folder
    files = sorted(path.glob("support_logs_*.log"))
    assert len(files) == 31
    root = careplus_project(tmp_path / "p", path)
    summary = run_ok(root)
    source = summary.sources["support_logs"]
    assert (source.files_new, source.rows_read, source.rows_quarantined) == (31, 2650, 0)
    assert source.rows_loaded == 2650 and source.blank_lines == 0
    [(records, distinct_lines)] = lake(
        root, "SELECT count(*), count(DISTINCT (_file, _line)) FROM support_logs"
    )
    assert records == distinct_lines == 2650
    [(events, negative)] = lake(
        root, "SELECT count(*), count(*) FILTER (WHERE response_time LIKE '-%') FROM log_events"
    )
    assert (events, negative) == (2423, 178)  # 2,650 less 227 exact duplicates
    [(negative_all, typos, error_mismatch, no_time)] = lake(
        root,
        "SELECT count(*) FILTER (WHERE response_time LIKE '-%'), "
        "count(DISTINCT level) FILTER (WHERE level IN ('INF0', 'DEBG', 'warnING', 'EROR')), "
        "count(*) FILTER (WHERE (error = 'true') <> (level IN ('ERROR', 'EROR'))), "
        "count(*) FILTER (WHERE logged_at IS NULL) FROM support_logs",
    )
    assert (negative_all, typos, error_mismatch, no_time) == (194, 4, 0, 0)
    columns = lake_columns(root, "support_logs")
    assert columns[4:] == [
        "logged_at", "level", "component", "ticket_id", "session_id", "ip", "response_time",
        "cpu", "event_type", "error", "user_agent", "message", "debug", "trace_id",
    ]  # fmt: skip
    # Per file: read = loaded + quarantined, and every `---` line ends one record.
    per_file = dict(lake(root, "SELECT _file, count(*) FROM support_logs GROUP BY 1"))
    db = StateDB.open(Project.load(root).state_url)
    try:
        stats = {str(r["name"]): r for r in ledger.file_stats(db, "support_logs")}
    finally:
        db.dispose()
    for file in files:
        separators = sum(1 for line in file.read_bytes().splitlines() if line == b"---")
        row = stats[file.name]
        assert row["rows_read"] == per_file[file.name] == separators
        assert row["rows_quarantined"] == 0


def test_a_file_larger_than_a_chunk_is_parsed_in_pieces(tmp_path: Path) -> None:
    inbox = tmp_path / "logs"
    inbox.mkdir()
    count = 4000  # ~1.5 MB: two pieces of about chunk_mb = 1 MiB
    text = "\n".join(
        RECORD.format(day=1 + i % 28, minute=i % 60, n=i % 1000, rt=i - 100) for i in range(count)
    )
    (inbox / "support_logs_big.log").write_text(text, encoding="utf-8")
    (inbox / "support_logs_small.log").write_text(RECORD.format(day=2, minute=1, n=1, rt=5))
    root = careplus_project(tmp_path / "p", inbox, chunk_mb=1)
    summary = run_ok(root)
    assert summary.sources["support_logs"].rows_read == count + 1
    lines = [
        r[0]
        for r in lake(root, "SELECT _line FROM support_logs WHERE _file LIKE '%big%' ORDER BY 1")
    ]
    assert lines == list(range(1, 7 * count, 7))
    [(negative,)] = lake(root, "SELECT count(*) FROM support_logs WHERE response_time LIKE '-%'")
    assert negative == 100
    data = root / ".headwater" / "lake" / "processed" / "support_logs" / "data"
    assert len(list(data.glob("*.parquet"))) >= 2  # one per piece group


def big_log(count: int, crlf: bool = True, bom: bool = False) -> bytes:
    """`count` careplus records, CRLF line ends, no newline after the last `---`."""
    text = "\n".join(
        RECORD.format(day=1 + i % 28, minute=i % 60, n=i % 1000, rt=i - 100) for i in range(count)
    )
    data = (text.replace("\n", "\r\n") if crlf else text).encode()
    return (b"\xef\xbb\xbf" if bom else b"") + data


def careplus_reader(chunk_mb: int) -> FilesSourceReader:
    config = yaml.safe_load(CAREPLUS_YAML.format(path="logs", chunk_mb=chunk_mb))
    source = FilesSource.model_validate(config["sources"]["support_logs"])
    return FilesSourceReader("support_logs", source, Path())


def streamed(path: Path) -> RawInput:
    """A file as the pipeline hands it over: readable whole, and as a stream."""

    def read(n: int) -> bytes:
        with path.open("rb") as handle:
            return handle.read(n)

    return RawInput(path.name, "h", path.stat().st_size, read, partial(path.open, "rb"))


def test_a_file_several_chunks_long_is_streamed_to_the_rows_of_one_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Iterator[TextPiece]:
        for piece in textlines.stream(*args, **kwargs):
            blocks.append(len(piece.data))
            yield piece

    monkeypatch.setattr(files, "stream", counted)
    inbox = tmp_path / "logs"
    inbox.mkdir()
    count = 11000  # ~3.5 MB, CRLF, BOM, no final newline: about four blocks of chunk_mb = 1 MiB
    data = big_log(count, bom=True)
    assert len(data) > 3 << 20 and not data.endswith(b"\n")
    (inbox / "support_logs_big.log").write_bytes(data)
    root = careplus_project(tmp_path / "p", inbox, chunk_mb=1)
    summary = run_ok(root)
    source = summary.sources["support_logs"]
    assert (source.rows_read, source.rows_loaded, source.rows_quarantined) == (count, count, 0)
    processed = root / ".headwater" / "lake" / "processed" / "support_logs" / "data"
    assert len(list(processed.glob("*.parquet"))) >= 3  # one per piece
    assert len(blocks) >= 3 and max(blocks) < 3 << 19  # read from the lake as a stream
    # The same file parsed as one piece, without streaming.
    options = careplus_reader(1).config.log
    assert isinstance(options, LogOptions)
    one = parse_log([prepare("big", data, "utf-8")], options, {}).rows
    names = [c for c in one.column_names if c != "_fidx"]
    expected = one.select(names).sort_by("_line").to_pylist()
    columns = ", ".join(f'"{n}"' for n in names)
    got = lake(root, f"SELECT {columns} FROM support_logs ORDER BY _line")
    assert [r["_line"] for r in expected] == list(range(1, 7 * count, 7))
    assert [dict(zip(names, r, strict=True)) for r in got] == expected


def test_a_streamed_file_that_stops_decoding_rejects_from_the_bad_block_on(
    tmp_path: Path,
) -> None:
    count = 12000  # ~3.8 MB; one bad byte in the third MiB (third block)
    data = bytearray(big_log(count))
    bad_at = data.index(b"TicketID", (5 << 19)) + 2
    data[bad_at] = 0xFF
    path = tmp_path / "support_logs_bad.log"
    path.write_bytes(bytes(data))
    parts = list(careplus_reader(1).parse([streamed(path)], lambda p: p))
    assert len(parts) >= 3
    rows = pa.concat_tables([p.rows for p in parts])
    rejects = pa.concat_tables([p.rejects for p in parts])
    assert rows.num_rows + rejects.num_rows == count
    assert rows.num_rows > 0 and rejects.num_rows > 0
    lines = sorted(rows.column("_line").to_pylist() + rejects.column("_line").to_pylist())
    assert lines == list(range(1, 7 * count, 7))
    assert set(rejects.column("rule").to_pylist()) == {"encoding"}
    assert set(rejects.column("reason").to_pylist()) == {
        f"file is not valid UTF-8: byte 0xff at offset {bad_at}"
    }
    bad_line = bytes(data[:bad_at]).count(b"\n") + 1
    first_rejected = min(rejects.column("_line").to_pylist())
    assert max(rows.column("_line").to_pylist()) < first_rejected <= bad_line
    assert all(p.rejects.num_rows == 0 for p in parts[:2])  # pieces before the bad block load


def test_memory_does_not_grow_with_the_size_of_a_streamed_file(tmp_path: Path) -> None:
    reader = careplus_reader(1)

    def peak(count: int) -> tuple[int, int]:
        path = tmp_path / f"support_logs_{count}.log"
        path.write_bytes(big_log(count))
        rows: list[int] = []

        def sink(part: ParsedPart) -> None:
            rows.append(part.rows.num_rows)

        tracemalloc.start()
        try:
            list(reader.parse([streamed(path)], sink))
            top = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert sum(rows) == count
        return top, path.stat().st_size

    small, _ = peak(10000)  # ~3 MiB
    large, size = peak(80000)  # ~25 MiB: read whole, the peak would grow by more than the size
    assert size > 20 << 20
    assert large < small + size // 4, (small, large)


DAMAGED = (
    "2025-07-01 00:00:00 [INFO] svc - TicketID=T1\nIP=1.1.1.1 | ResponseTime=5ms\n---\n"
    "2025-07-01 00:00:01 [INFO] svc - TicketID=T2\nthis line explains nothing\n---\n"
    '2025-07-01 00:00:02 [INFO] svc - TicketID=T3\nDebug="never closed\n---\n'
    "2025-07-41 00:00:03 [INFO] svc - TicketID=T4\n---\n"
    "no header here TicketID=T5\n---"
)


def test_damaged_records_go_to_quarantine(tmp_path: Path) -> None:
    inbox = tmp_path / "logs"
    inbox.mkdir()
    (inbox / "support_logs_damaged.log").write_text(DAMAGED)
    root = careplus_project(tmp_path / "p", inbox)
    summary = run_ok(root)
    source = summary.sources["support_logs"]
    assert (source.rows_read, source.rows_quarantined, source.rows_loaded) == (5, 4, 1)
    assert source.quarantined_by_reason == {
        "pattern": 1,
        "type": 1,
        "unbalanced_quote": 1,
        "unmatched_line": 1,
    }
    got = lake(root, "SELECT file, line, rule, reason FROM quarantine ORDER BY line")
    assert got == [
        ("support_logs_damaged.log", 4, "unmatched_line", "line 5 matches no pattern and holds no key=value pair"),
        ("support_logs_damaged.log", 7, "unbalanced_quote", "line 8: a quoted value is not closed on its line"),
        ("support_logs_damaged.log", 10, "type", 'field logged_at "2025-07-41 00:00:03" is not a timestamp (%Y-%m-%d %H:%M:%S)'),
        ("support_logs_damaged.log", 12, "pattern", "no line matches pattern 1"),
    ]  # fmt: skip


def test_pii_policies_apply_to_log_fields(tmp_path: Path) -> None:
    inbox = tmp_path / "logs"
    inbox.mkdir()
    (inbox / "support_logs_1.log").write_text(RECORD.format(day=1, minute=2, n=7, rt=9))
    root = careplus_project(tmp_path / "p", inbox)
    yaml = (root / "headwater.yaml").read_text()
    yaml = yaml.replace(
        "    format: log\n",
        "    format: log\n    pii: {ip: mask, session_id: hash, user_agent: drop}\n",
    )
    (root / "headwater.yaml").write_text(yaml + "pii:\n  secret: s3cret\n")
    run_ok(root)
    [(ip, session)] = lake(root, "SELECT ip, session_id FROM support_logs")
    assert ip == "****.0.7" and re.fullmatch(r"[0-9a-f]{16}", session)
    assert "user_agent" not in lake_columns(root, "support_logs")


JSON_YAML = """\
name: jsonlogs
sources:
  app:
    kind: files
    path: inbox
    glob: "*.jsonl"
    format: jsonl
    jsonl:
      fields:
        ts: timestamp
        http_status: integer
"""


def test_json_lines_new_fields_become_columns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = (
        '{"ts": "2024-05-01T10:00:00Z", "level": "info", "msg": "started"}\n'
        '{"ts": "2024-05-01T10:00:01Z", "level": "warn", "msg": "slow", "http": {"status": 200}}\n'
    )
    root = tiny_project(
        tmp_path / "p",
        {"by_level": model("select level, count(*) as n from app group by level")},
        {"day1.jsonl": first},
        yaml_text=JSON_YAML,
    )
    run_ok(root)
    assert lake_columns(root, "app")[4:] == ["ts", "level", "msg", "http_status"]
    # Later files bring new fields, nested ones included: new nullable columns, no failure.
    drop(
        root,
        {
            "day2.jsonl": '{"ts": "2024-05-02T09:00:00Z", "level": "error", "msg": "boom", '
            '"user": {"id": 42, "plan": "pro"}, "duration_ms": 12.5}\n',
            "day3.jsonl": '{"ts": "2024-05-03T09:00:00Z", "level": "info", "trace": ["a", "b"]}\n'
            "not json at all\n",
        },
    )
    with caplog.at_level(logging.INFO, logger="headwater.run"):
        summary = run_ok(root)
    source = summary.sources["app"]
    assert (source.rows_read, source.rows_quarantined) == (3, 1)
    assert source.columns_added == ["user_id", "user_plan", "duration_ms", "trace"]
    assert any(
        re.search(
            r"source app: batch \d+ added column\(s\) user_id, user_plan, duration_ms, trace",
            r.message,
        )
        for r in caplog.records
    )
    rows = lake(
        root,
        "SELECT _file, level, http_status, user_id, user_plan, duration_ms, trace FROM app ORDER BY ts",
    )
    assert rows == [
        ("day1.jsonl", "info", None, None, None, None, None),
        ("day1.jsonl", "warn", 200, None, None, None, None),
        ("day2.jsonl", "error", None, "42", "pro", "12.5", None),
        ("day3.jsonl", "info", None, None, None, None, '["a","b"]'),
    ]
    result = cli(
        "query",
        "-p",
        str(root),
        "--lake",
        "-f",
        "csv",
        "SELECT user_plan FROM app WHERE user_id = '42'",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ['"user_plan"', '"pro"'] or result.stdout.split() == [
        "user_plan",
        "pro",
    ]
    [(reason,)] = lake(root, "SELECT reason FROM quarantine")
    assert reason == "line is not valid JSON"
