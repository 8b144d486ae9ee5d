"""The log parsers of the `files` source (`format: log` and `format: jsonl`), unit by unit.

Properties (hypothesis): records written in a multi-line `key=value` format
(random LF or CRLF, final newline or not, blank lines, a last record with or
without its separator) parse back exactly; arbitrary bytes never crash and
every record is either a row or a reject. Examples cover the presets (nginx,
Apache, syslog), the reject rules and JSON lines.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import partial
from typing import Any
from unittest.mock import patch

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from headwater.config import FilesSource, PiiPolicy
from headwater.config_formats import JsonLinesOptions, LogOptions, to_re2
from headwater.sources import pairs
from headwater.sources.csvparse import ParsedChunk
from headwater.sources.files import record_starts
from headwater.sources.jsonlines import parse_jsonl
from headwater.sources.logs import parse_log
from headwater.sources.textlines import Lines, TextPiece, prepare, split
from headwater.sources.textnames import snake_name

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = {"encoding", "unbalanced_quote", "unmatched_line", "pattern", "type", "json"}

HEADER = r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(?P<level>[^\]]*)\] (?P<component>\S+) - "
CAREPLUS: dict[str, Any] = {
    "separator": "^---$",
    "patterns": [{"regex": HEADER, "line": 1}],
    "pairs": True,
    "fields": {"ts": {"type": "timestamp", "format": "%Y-%m-%d %H:%M:%S"}},
}
SAMPLE = (
    "2025-07-01 00:21:00 [INF0] careplus.support.GenericService - TicketID=TCK0701000 "
    "SessionID=sess_TCK0701000\n"
    "IP=60.130.155.7 | ResponseTime=-12ms | CPU=27.64% | EventType=generic_event | Error=false\n"
    'UserAgent="PostmanRuntime/7.32.2"\n'
    'Message=" event for TCK0701000"\n'
    'Debug="ℹ️ Logged for monitoring"\n'
    "TraceID=None\n"
    "---\n"
    "2025-07-01 00:41:00 [ERROR] careplus.support.GenericService - TicketID=TCK0701001 "
    "SessionID=sess_TCK0701001\n"
    "IP=58.36.189.27 | ResponseTime=1505ms | CPU=57.24% | EventType=generic_event | Error=true\n"
    'UserAgent="Mozilla/5.0 (X11; Linux x86_64)"\n'
    'Message="a=b, \\"quoted\\" | C:\\\\dir"\n'
    'Debug="🔥 Error trace captured"\n'
    "TraceID=\n"
    "---"
)


# ----------------------------------------------------------------- helpers


def parse(
    files: dict[str, bytes] | bytes, pii: dict[str, str] | None = None, **log: Any
) -> ParsedChunk:
    options = LogOptions.model_validate(log)
    if isinstance(files, bytes):
        files = {"f.log": files}
    pieces = [prepare(name, data, options.encoding) for name, data in files.items()]
    policies = {c: PiiPolicy(policy=p) for c, p in (pii or {}).items()}  # type: ignore[arg-type]
    return parse_log(pieces, options, policies)


def parse_json(files: dict[str, bytes] | bytes, **options: Any) -> ParsedChunk:
    opts = JsonLinesOptions.model_validate(options)
    if isinstance(files, bytes):
        files = {"f.jsonl": files}
    return parse_jsonl([prepare(n, d, opts.encoding) for n, d in files.items()], opts, {})


def records(chunk: ParsedChunk) -> list[dict[str, Any]]:
    chunk.rows.validate(full=True)
    return chunk.rows.to_pylist()


def rejects(chunk: ParsedChunk) -> list[tuple[int, int, str, str]]:
    chunk.rejects.validate(full=True)
    t = chunk.rejects.to_pydict()
    return sorted(zip(t["_fidx"], t["_line"], t["rule"], t["reason"], strict=True))


def check_accounting(chunk: ParsedChunk) -> None:
    """Counts agree with the tables; a record is a row or a reject, never both."""
    assert chunk.rows.column_names[:2] == ["_fidx", "_line"]
    assert chunk.rejects.column_names == ["_fidx", "_line", "rule", "reason"]
    rows = [(r["_fidx"], r["_line"]) for r in records(chunk)]
    bad = [(f, line) for f, line, *_ in rejects(chunk)]
    assert len(set(rows) | set(bad)) == len(rows) + len(bad)
    for i, c in enumerate(chunk.counts):
        assert c.rows == sum(1 for f, _ in rows if f == i)
        assert c.rejected == sum(1 for f, _ in bad if f == i)
        assert c.header_lines == 0
        assert c.rows + c.rejected + c.blank_lines <= c.lines
    assert rows == sorted(rows)
    assert {r for *_, r, _ in rejects(chunk)} <= RULES


# ----------------------------------------------------------------- careplus format


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("final", ["", "\n"])
def test_careplus_records_parse(newline: str, final: str) -> None:
    data = (SAMPLE.replace("\n", newline) + final).encode()
    chunk = parse(data, **CAREPLUS)
    check_accounting(chunk)
    assert rejects(chunk) == []
    first, second = records(chunk)
    assert first == {
        "_fidx": 0,
        "_line": 1,
        "ts": dt.datetime(2025, 7, 1, 0, 21),
        "level": "INF0",
        "component": "careplus.support.GenericService",
        "ticket_id": "TCK0701000",
        "session_id": "sess_TCK0701000",
        "ip": "60.130.155.7",
        "response_time": "-12ms",
        "cpu": "27.64%",
        "event_type": "generic_event",
        "error": "false",
        "user_agent": "PostmanRuntime/7.32.2",
        "message": " event for TCK0701000",
        "debug": "ℹ️ Logged for monitoring",
        "trace_id": "None",
    }
    assert second["_line"] == 8
    assert second["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"
    assert second["message"] == 'a=b, "quoted" | C:\\dir'
    assert second["debug"] == "🔥 Error trace captured"
    assert second["trace_id"] == ""
    assert chunk.counts[0].lines == 14 and chunk.counts[0].blank_lines == 0


def test_bom_blank_lines_and_several_files() -> None:
    one = b"\xef\xbb\xbf" + SAMPLE.encode()
    two = ("\n\n" + SAMPLE.replace("\n", "\r\n") + "\r\n\r\n").encode()
    chunk = parse({"a.log": one, "b.log": two, "empty.log": b""}, **CAREPLUS)
    check_accounting(chunk)
    got = [(r["_fidx"], r["_line"], r["ticket_id"]) for r in records(chunk)]
    assert got == [
        (0, 1, "TCK0701000"),
        (0, 8, "TCK0701001"),
        (1, 3, "TCK0701000"),
        (1, 10, "TCK0701001"),
    ]
    assert [c.blank_lines for c in chunk.counts] == [0, 3, 0]
    assert chunk.counts[2].lines == 0


def test_last_record_without_separator_and_start_mode() -> None:
    text = "A 1 x=1\n  more text\nA 2 x=2\n\nB 3 y=3\n  at line two\n  at line three"
    start = {
        "start": r"^[A-Z] \d",
        "patterns": [{"regex": r"^(?P<kind>[A-Z]) (?P<n>\d+)", "line": 1}],
    }
    chunk = parse(text.encode(), pairs=True, rest="detail", **start)
    check_accounting(chunk)
    got = [
        (r["_line"], r["kind"], r["n"], r.get("x"), r.get("y"), r["detail"]) for r in records(chunk)
    ]
    assert got == [
        (1, "A", "1", "1", None, "  more text"),
        (3, "A", "2", "2", None, None),
        (5, "B", "3", None, "3", "  at line two\n  at line three"),
    ]
    # Without `rest`, a line nothing explains rejects its record.
    chunk = parse(text.encode(), pairs=True, **start)
    assert rejects(chunk) == [
        (0, 1, "unmatched_line", "line 2 matches no pattern and holds no key=value pair"),
        (0, 5, "unmatched_line", "line 6 matches no pattern and holds no key=value pair"),
    ]
    assert [r["_line"] for r in records(chunk)] == [3]


def test_reject_rules_and_reasons() -> None:
    text = (
        "2025-07-01 00:00:00 [INFO] svc - a=1\nb=2\n---\n"  # fine
        "garbage first line a=1\nb=2\n---\n"  # pattern 1 matches no line
        "2025-07-01 00:00:01 [INFO] svc - a=1\njust words\n---\n"  # unmatched line 8
        '2025-07-01 00:00:02 [INFO] svc - a=1\nb="open\n---\n'  # unbalanced quote, line 11
        "2025-07-31 25:00:00 [INFO] svc - a=1\n---\n"  # hour 25: type
        "2025-07-01 00:00:03 [INFO] svc - a=x1\n---"  # a is not an integer
    )
    chunk = parse(
        text.encode(),
        separator="^---$",
        patterns=[{"regex": HEADER, "line": 1}],
        pairs=True,
        fields={"ts": {"type": "timestamp", "format": "%Y-%m-%d %H:%M:%S"}, "a": "integer"},
    )
    check_accounting(chunk)
    assert [(r["_line"], r["a"], r["b"]) for r in records(chunk)] == [(1, 1, "2")]
    assert rejects(chunk) == [
        (0, 4, "pattern", "no line matches pattern 1"),
        (0, 7, "unmatched_line", "line 8 matches no pattern and holds no key=value pair"),
        (0, 10, "unbalanced_quote", "line 11: a quoted value is not closed on its line"),
        (0, 13, "type", 'field ts "2025-07-31 25:00:00" is not a timestamp (%Y-%m-%d %H:%M:%S)'),
        (0, 15, "type", 'field a "x1" is not an integer'),
    ]
    assert chunk.counts[0].rows == 1 and chunk.counts[0].rejected == 5


def test_pii_fields_are_hidden_dropped_and_always_present() -> None:
    text = b"user=ann card=4929123412341234 n=x\nuser=bob n=2\n"
    chunk = parse(
        text,
        pii={"card": "drop", "user": "hash", "email": "mask"},
        pairs=True,
        fields={"n": "integer"},
    )
    assert "card" not in chunk.rows.column_names
    assert {"card", "user", "email"} <= set(chunk.columns)
    assert [(r["user"], r["email"]) for r in records(chunk)] == [("bob", None)]
    chunk = parse(text, pii={"n": "hash"}, pairs=True, fields={"n": "integer"})
    assert rejects(chunk) == [(0, 1, "type", "field n (value hidden: PII) is not an integer")]


def test_undecodable_file_rejects_every_record() -> None:
    bad = b"a=1\nb=\xff\xfe\nc=3\n"
    chunk = parse({"good.log": b"a=1\n", "bad.log": bad}, pairs=True)
    check_accounting(chunk)
    got = rejects(chunk)
    assert [(f, line, rule) for f, line, rule, _ in got] == [
        (1, 1, "encoding"),
        (1, 2, "encoding"),
        (1, 3, "encoding"),
    ]
    assert got[0][3] == "file is not valid UTF-8: byte 0xff at offset 6"
    latin = parse("name=José\n".encode("latin-1"), pairs=True, encoding="latin-1")
    assert records(latin)[0]["name"] == "José"


def test_pairs_edge_cases() -> None:
    text = (
        'k1=a=b k2="x y=z" k3= URL=http://h/p?q=1 x_y.z=1 @ts=2 9=nine -- ="anon" k4="" '
        "camelCase=1 HTTPStatus=200 k1=again\n"
    )
    (row,) = records(parse(text.encode(), pairs=True))
    assert {k: v for k, v in row.items() if not k.startswith("_")} == {
        "k1": "a=b",  # the first of repeated keys wins
        "k2": "x y=z",
        "k3": "",
        "url": "http://h/p?q=1",
        "x_y_z": "1",
        "ts": "2",
        "k4": "",
        "camel_case": "1",
        "http_status": "200",
    }
    # Other delimiters, quote and equals.
    (row,) = records(
        parse(b"a:1;b:'x;y'\n", pairs={"delimiters": [";"], "quote": "'", "equals": ":"})
    )
    assert (row["a"], row["b"]) == ("1", "x;y")


def test_patterns_any_line_and_optional() -> None:
    text = b"start\nuser=ann\nstatus 200\n---\nstart\nstatus 404\n---\nstart\n---"
    chunk = parse(
        text,
        separator="^---$",
        pairs=True,
        patterns=[
            {"regex": "^(?P<kind>start)$"},
            {"regex": r"^status (?P<status>\d+)$", "optional": True},
        ],
        fields={"status": "integer"},
    )
    assert [(r["_line"], r["status"], r["user"]) for r in records(chunk)] == [
        (1, 200, "ann"),
        (5, 404, None),
        (8, None, None),
    ]


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("TicketID", "ticket_id"),
        ("userAgent", "user_agent"),
        ("HTTPStatus", "http_status"),
        ("http.status", "http_status"),
        ("CPU", "cpu"),
        ("2xx", "f_2xx"),
        ("X-Request-Id", "x_request_id"),
    ],
)
def test_snake_names(key: str, name: str) -> None:
    assert snake_name(key) == name


# ----------------------------------------------------------------- presets

NGINX = (
    '203.0.113.7 - - [10/Oct/2023:13:55:36 +0200] "GET /index.html?q=1 HTTP/1.1" 200 2326 '
    '"https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"\n'
    '198.51.100.2 - alice [10/Oct/2023:13:55:37 +0000] "POST /api/v1/items HTTP/2.0" 201 0 "-" '
    '"curl/8.0" "10.0.0.1"\n'
    '192.0.2.1 - - [10/Oct/2023:13:56:00 +0000] "\\x16\\x03\\x01" 400 157 "-" "-"\n'
    "not a log line\n"
)


def test_nginx_combined_preset() -> None:
    chunk = parse(NGINX.encode(), preset="nginx_combined")
    check_accounting(chunk)
    rows = records(chunk)
    assert [(r["remote_host"], r["method"], r["path"], r["status"], r["bytes"]) for r in rows] == [
        ("203.0.113.7", "GET", "/index.html?q=1", 200, 2326),
        ("198.51.100.2", "POST", "/api/v1/items", 201, 0),
        ("192.0.2.1", None, None, 400, 157),
    ]
    assert rows[0]["time"] == dt.datetime(2023, 10, 10, 11, 55, 36)  # +0200 applied: UTC
    assert rows[1]["remote_user"] == "alice" and rows[1]["referer"] == "-"
    assert rows[0]["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"
    assert rows[2]["request"] == "\\x16\\x03\\x01"
    assert rejects(chunk) == [(0, 4, "unmatched_line", "line 4 matches no pattern")]


def test_apache_common_preset() -> None:
    text = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 -\n'
    (row,) = records(parse(text.encode(), preset="apache_common"))
    assert (row["remote_user"], row["status"], row["bytes"], row["protocol"]) == (
        "frank",
        200,
        None,
        "HTTP/1.0",
    )
    assert row["time"] == dt.datetime(2000, 10, 10, 20, 55, 36)


def test_syslog_presets() -> None:
    rfc3164 = (
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n"
        "Feb  5 17:32:18 host sshd[4721]: Accepted publickey for ann\n"
        "2024-01-02T03:04:05.123+01:00 web01 nginx[99]: started\n"
    )
    rows = records(parse(rfc3164.encode(), preset="syslog_rfc3164"))
    assert [
        (r["priority"], r["timestamp"], r["hostname"], r["app_name"], r["procid"], r["message"])
        for r in rows
    ] == [
        (
            34,
            "Oct 11 22:14:15",
            "mymachine",
            "su",
            "",
            "'su root' failed for lonvick on /dev/pts/8",
        ),
        (None, "Feb  5 17:32:18", "host", "sshd", "4721", "Accepted publickey for ann"),
        (None, "2024-01-02T03:04:05.123+01:00", "web01", "nginx", "99", "started"),
    ]
    rfc5424 = (
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed\n"
        '<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut="3" '
        'eventSource="Application"] An application event\n'
        "<13>1 - - - - - -\n"
    )
    rows = records(parse(rfc5424.encode(), preset="syslog_rfc5424"))
    got = [
        (r["priority"], r["version"], r["timestamp"], r["app_name"], r["msgid"], r["message"])
        for r in rows
    ]
    assert got == [
        (34, 1, dt.datetime(2003, 10, 11, 22, 14, 15, 3000), "su", "ID47", "BOM'su root' failed"),
        (165, 1, dt.datetime(2003, 8, 24, 12, 14, 15, 3), "myproc", "-", "An application event"),
        (13, 1, None, "-", "-", ""),
    ]
    assert rows[1]["structured_data"] == '[exampleSDID@32473 iut="3" eventSource="Application"]'


# ----------------------------------------------------------------- JSON lines


def test_json_lines_flatten_and_reject() -> None:
    text = (
        '{"ts": "2024-01-01T10:00:00Z", "level": "info", "http": {"statusCode": 200, '
        '"req": {"path": "/a"}}, "tags": ["x", "y"], "ok": true, "n": null}\n'
        "\n"
        '{"ts": "2024-01-01T10:00:01+02:00", "level": "warn", "http": {"statusCode": 500}, '
        '"extra": {}, "user.id": 7}\n'
        "[1, 2]\n"
        "{not json\n"
        '{"ts": "yesterday"}\n'
    )
    chunk = parse_json(text.encode(), fields={"ts": "timestamp", "http_status_code": "integer"})
    check_accounting(chunk)
    rows = records(chunk)
    assert [
        (
            r["_line"],
            r["ts"],
            r["level"],
            r["http_status_code"],
            r["http_req_path"],
            r["tags"],
            r["ok"],
            r["n"],
            r["extra"],
            r["user_id"],
        )
        for r in rows
    ] == [
        (1, dt.datetime(2024, 1, 1, 10), "info", 200, "/a", '["x","y"]', "true", None, None, None),
        (3, dt.datetime(2024, 1, 1, 8, 0, 1), "warn", 500, None, None, None, None, "{}", "7"),
    ]
    assert rejects(chunk) == [
        (0, 4, "json", "line holds a JSON array, not an object"),
        (0, 5, "json", "line is not valid JSON"),
        (0, 6, "type", 'field ts "yesterday" is not a timestamp (ISO 8601)'),
    ]
    assert chunk.counts[0].blank_lines == 1


def test_json_lines_mixed_object_and_scalar_is_json_text() -> None:
    text = b'{"a": {"b": 1}}\n{"a": 5}\n'
    assert [r["a"] for r in records(parse_json(text))] == ['{"b":1}', "5"]


# ----------------------------------------------------------------- pieces of large files


def test_split_cuts_at_record_bounds_and_keeps_line_numbers() -> None:
    data = ((SAMPLE + "\n") * 200).encode()
    options = LogOptions.model_validate(CAREPLUS)
    whole = prepare("f.log", data, "utf-8")
    pieces = list(split(whole, 5000, partial(record_starts, options)))
    assert len(pieces) > 10
    assert b"".join(p.data for p in pieces) == whole.data
    assert all(p.data.startswith(b"2025-07-01") for p in pieces)
    one = parse_log([whole], options, {})
    many = parse_log(pieces, options, {})

    def without_fidx(chunk: ParsedChunk) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "_fidx"} for r in records(chunk)]

    assert without_fidx(one) == without_fidx(many)
    assert sum(c.rows for c in many.counts) == 400
    assert [p.first_line for p in pieces[:2]] == [1, pieces[0].data.count(b"\n") + 1]


# ----------------------------------------------------------------- properties

KEYS = st.from_regex(r"[a-z][a-z0-9]{0,5}(_[a-z0-9]{1,3})?", fullmatch=True).filter(
    lambda k: k not in {"ts", "level", "component"}
)
PLAIN = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters=' |"'),
    max_size=10,
)
QUOTED = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\n"),
    max_size=12,
)


def quote(value: str) -> str:
    """A quoted value as a logfmt writer writes it: backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def log_files(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]]]:
    """A multi-line log and the records it holds (with their first line numbers)."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    count = draw(st.integers(0, 6))
    lines: list[str] = []
    expected: list[dict[str, Any]] = []
    for i in range(count):
        while draw(st.booleans()) and draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "  ", "\t"])))
        ts = dt.datetime(2025, 7, 1) + dt.timedelta(seconds=draw(st.integers(0, 10**7)))
        level = draw(st.from_regex(r"[A-Za-z0]{1,7}", fullmatch=True))
        component = draw(st.from_regex(r"[a-z][a-z.]{0,9}", fullmatch=True))
        pairs = draw(st.dictionaries(KEYS, st.tuples(st.booleans(), PLAIN, QUOTED), max_size=6))
        items = [(k, quote(q), q) if quoted else (k, p, p) for k, (quoted, p, q) in pairs.items()]
        cut = draw(st.integers(0, len(items)))
        groups = [items[:cut]]
        rest = items[cut:]
        while rest:
            n = draw(st.integers(1, len(rest)))
            groups.append(rest[:n])
            rest = rest[n:]
        record = {"_line": len(lines) + 1, "ts": ts, "level": level, "component": component}
        record |= {k: v for k, _, v in items}
        expected.append(record)
        for j, group in enumerate(groups):
            sep = draw(st.sampled_from([" ", " | ", "\t", "|", "  "]))
            text = sep.join(f"{k}={shown}" for k, shown, _ in group)
            if j == 0:
                text = f"{ts:%Y-%m-%d %H:%M:%S} [{level}] {component} - {text}"
            lines.append(text)
        if i < count - 1 or draw(st.booleans()):
            lines.append("---")
    body = newline.join(lines)
    if lines and draw(st.booleans()):
        body += newline
    return body.encode(), expected


@FAST
@given(log_files())
def test_round_trip(case: tuple[bytes, list[dict[str, Any]]]) -> None:
    data, expected = case
    chunk = parse(data, **CAREPLUS)
    check_accounting(chunk)
    assert rejects(chunk) == []
    rows = records(chunk)
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert {k: row[k] for k in want} == want
        others = set(row) - set(want) - {"_fidx"}
        assert all(row[k] is None for k in others)


def assert_same_chunk(got: ParsedChunk, expected: ParsedChunk) -> None:
    """The same rows, rejects, columns and per-file counts."""
    assert got.rows.equals(expected.rows)
    assert got.rejects.equals(expected.rejects)
    assert (got.columns, got.counts) == (expected.columns, expected.counts)


@FAST
@given(log_files(), st.binary(max_size=200), st.integers(1, 200))
def test_pairs_scanned_in_blocks_equal_one_scan(
    case: tuple[bytes, list[dict[str, Any]]], noise: bytes, block: int
) -> None:
    """Large chunks are scanned for pairs in blocks of lines: any block size, same result."""
    data = case[0] + b"\n" + noise + b'\nk="a\\"b" x=1 "q=2" k=3\nnew_key=late\n'
    options = {**CAREPLUS, "patterns": [{"regex": HEADER, "line": 1, "optional": True}]}
    whole = parse(data, **options)
    with patch.object(pairs, "BLOCK", block):
        blocks = parse(data, **options)
    assert_same_chunk(blocks, whole)


def test_compiled_scanner_is_built() -> None:
    """`make` builds the compiled key=value scanner (the numpy path is only a fallback)."""
    assert pairs._kvscan is not None
    assert pairs.NATIVE


FRAGMENT = st.sampled_from(
    ["k", "K2", "a.b", "@x", "9", "-", "=", '"', "\\", "'", "é", "\r", "x", ":", ""]
)
TOKEN = st.one_of(
    st.tuples(
        st.sampled_from(["k", "K2", "kTwo", "k_two", "a.b", "@x", "9", "", "k'"]),
        st.sampled_from(["=", ":"]),
        st.lists(FRAGMENT, max_size=4).map("".join),
        st.sampled_from(['"', "'", ""]),
    ).map(lambda t: t[0] + t[1] + t[3] + t[2] + t[3]),
    FRAGMENT,
)
PAIR_TEXT = st.tuples(
    st.lists(TOKEN, max_size=8), st.lists(st.sampled_from([" ", "\t", "|", ";", ","]), min_size=1)
).map(lambda t: "".join(tok + t[1][i % len(t[1])] for i, tok in enumerate(t[0])))
PAIR_OPTIONS = st.sampled_from(
    [
        True,
        {"escape": ""},
        {"delimiters": [";"], "quote": "'", "equals": ":"},
        {"delimiters": [" "], "escape": "|"},
        {"delimiters": ["|", ","]},
    ]
)


def same_both_ways(data: bytes, **log: Any) -> ParsedChunk:
    """Parse with the compiled scanner and with numpy; both give the same chunk."""
    native = parse(data, **log)
    with patch.object(pairs, "NATIVE", False):
        reference = parse(data, **log)
    assert_same_chunk(native, reference)
    return native


@FAST
@given(st.lists(PAIR_TEXT, max_size=8), PAIR_OPTIONS, st.sampled_from([None, "^---$"]))
def test_compiled_scanner_equals_numpy(
    lines: list[str], options: Any, separator: str | None
) -> None:
    """The compiled scanner and the numpy scan give the same rows, rejects and counts,
    on lines made of keys, quotes, escapes, delimiters and separators in any order."""
    data = "\n".join(lines).encode()
    same_both_ways(data, pairs=options, separator=separator, rest="other")


@FAST
@given(log_files(), st.binary(max_size=200))
def test_compiled_scanner_equals_numpy_on_logs(
    case: tuple[bytes, list[dict[str, Any]]], noise: bytes
) -> None:
    data = case[0] + b"\n" + noise + b'\nk="a\\"b" x=1 "q=2" k=3\n'
    same_both_ways(data, **CAREPLUS)


def test_keys_sharing_a_column_keep_the_first_pair() -> None:
    """`TicketID` and `ticket_id` are one column: the first pair of the record wins (the
    compiled scanner hands such chunks to the numpy path)."""
    chunk = same_both_ways(b"TicketID=1 ticket_id=2\nticket_id=3 TicketID=4\n", pairs=True)
    assert [r["ticket_id"] for r in records(chunk)] == ["1", "3"]


@FAST
@given(st.binary(max_size=300), st.sampled_from([None, "^---$", "^-+$"]))
def test_arbitrary_bytes_never_crash(data: bytes, separator: str | None) -> None:
    chunk = parse(
        data,
        separator=separator,
        pairs=True,
        patterns=[{"regex": r"^(?P<a>\d+)", "optional": True}],
    )
    check_accounting(chunk)
    total = chunk.counts[0]
    assert total.rows + total.rejected == chunk.rows.num_rows + chunk.rejects.num_rows


@FAST
@given(
    st.lists(
        st.dictionaries(
            KEYS, st.one_of(st.none(), st.booleans(), st.integers(-(10**15), 10**15), QUOTED)
        ),
        max_size=5,
    )
)
def test_json_lines_round_trip(objects: list[dict[str, Any]]) -> None:
    import json

    data = "".join(json.dumps(o) + "\n" for o in objects).encode()
    chunk = parse_json(data)
    check_accounting(chunk)
    for row, obj in zip(records(chunk), objects, strict=True):
        for key, value in obj.items():
            text = (
                None
                if value is None
                else json.dumps(value)
                if not isinstance(value, str)
                else value
            )
            assert row[key] == text


# ----------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"format": "log"}, "format log needs a log section"),
        ({"format": "csv", "log": {"pairs": True}}, "log options are given but format is csv"),
        ({"format": "log", "log": {}}, "a log needs patterns, pairs or a preset"),
        (
            {"format": "log", "log": {"patterns": ["(?P<a>x)(?=y)"]}},
            "is not supported: invalid perl operator",
        ),
        ({"format": "log", "log": {"patterns": ["(x)"]}}, "has no named group"),
        ({"format": "log", "log": {"patterns": ["(?P<Bad>x)"]}}, "is not a column name"),
        ({"format": "log", "log": {"pairs": True, "separator": "x", "start": "y"}}, "not both"),
        ({"format": "log", "log": {"pairs": True, "fields": {"a": "number"}}}, "Input should be"),
        (
            {
                "format": "log",
                "log": {"pairs": True, "fields": {"a": {"type": "integer", "format": "%Y"}}},
            },
            "timestamp only",
        ),
        (
            {"format": "log", "log": {"patterns": ["(?P<a>x)"]}, "pii": {"b": "drop"}},
            "not in the log patterns",
        ),
        (
            {"format": "log", "log": {"preset": "nginx_combined", "separator": "^-$"}},
            "one-line format",
        ),
        ({"format": "log", "log": {"pairs": {"quote": "|"}}}, "quote must differ"),
        ({"format": "jsonl", "jsonl": {"encoding": "rot13"}}, "unknown text encoding"),
    ],
)
def test_config_errors(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        FilesSource.model_validate({"kind": "files", "path": "x", **source})


def test_regex_translation() -> None:
    assert to_re2(r"(a|b)(?<n>[(x)])\((?:c)") == r"(?:a|b)(?P<n>[(x)])\((?:c)"
    opts = LogOptions.model_validate({"patterns": [r"^(\w+) (?<word>\w+)"]})
    assert opts.all_patterns()[0].names == ["word"]


def test_pieces_text() -> None:
    piece = TextPiece("f", b"a\nb\n", first_line=10)
    lines = Lines([piece])
    assert lines.number.tolist() == [10, 11]
    assert pa.array(["a", "b"]).equals(lines.text(lines.number - 10))


@pytest.mark.parametrize("data", [b"", b"\n\n  \r\n", b"---\n---"])
def test_empty_and_blank_files(data: bytes) -> None:
    chunk = parse(data, **CAREPLUS)
    check_accounting(chunk)
    assert chunk.rows.num_rows == chunk.rejects.num_rows == 0
    assert chunk.rows.column_names[:5] == ["_fidx", "_line", "ts", "level", "component"]
    assert chunk.rows.schema.field("ts").type == pa.timestamp("us")
    json_chunk = parse_json(data.replace(b"-", b" "))
    assert json_chunk.rows.num_rows == json_chunk.rejects.num_rows == 0


SPACE_LIKE = st.sampled_from(
    [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x85", "\u00a0", "\u1680", "\u2003", "\u200a",
     "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", "a", "1", ":"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(SPACE_LIKE, max_size=6) | st.none(), max_size=20))
def test_typed_fields_trim_what_duckdb_trim_removes(values: list[str | None]) -> None:
    """Field values are trimmed by Arrow before DuckDB types them: the same as DuckDB's trim()."""
    import duckdb
    import pyarrow.compute as pc

    from headwater.sources.fieldtypes import SPACES

    column = pa.array(values, pa.string())
    conn = duckdb.connect()
    try:
        conn.register("v", pa.table({"v": column}))
        expected = [r[0] for r in conn.execute("SELECT trim(v) FROM v").fetchall()]
    finally:
        conn.close()
    assert pc.utf8_trim(column, SPACES).to_pylist() == expected


def test_a_typed_value_in_spaces_converts_and_a_bad_one_is_shown_as_written() -> None:
    from headwater.config_formats import FieldType
    from headwater.sources.fieldtypes import apply_types, connect

    rows = pa.table(
        {
            "_fidx": pa.array([0, 0, 0, 0], pa.int32()),
            "_line": pa.array([1, 2, 3, 4], pa.int64()),
            "ts": ["\u3000 2025-07-31 10:00:00 \u00a0", " ", "\u2003soon ", None],
            "n": [" 42 ", "7", "8", "\u2003"],
        }
    )
    fields = {
        "ts": FieldType(type="timestamp", format="%Y-%m-%d %H:%M:%S"),
        "n": FieldType(type="integer"),
    }
    out, rejects = apply_types(connect(), rows, fields, set())
    assert out.column("ts").to_pylist() == [dt.datetime(2025, 7, 31, 10), None, None]
    assert out.column("n").to_pylist() == [42, 7, None]  # the reject's row left out
    assert rejects.to_pylist() == [
        {
            "_fidx": 0,
            "_line": 3,
            "rule": "type",
            "reason": 'field ts "\u2003soon " is not a timestamp (%Y-%m-%d %H:%M:%S)',
        }
    ]
