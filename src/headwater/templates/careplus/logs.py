"""Daily CarePlus system log files, `support_logs_YYYY-MM-DD.log`, with the course's defects.

Each record is six lines and a line `---`; records follow each other in time
order; the last record of a file has no newline after its `---` (the first line is
cut short here; it ends `SessionID=sess_TCK0701000`)::

    2025-07-01 00:21:00 [INFO] careplus.support.GenericService - TicketID=TCK0701000 Sessi…
    IP=60.130.155.7 | ResponseTime=1269ms | CPU=27.64% | EventType=generic_event | Error=false
    UserAgent="PostmanRuntime/7.32.2"
    Message=" event for TCK0701000"
    Debug="ℹ️ Logged for monitoring"
    TraceID=None
    ---

Planted at the course's rates: level typos (`INF0`, `DEBG`, `warnING`, `EROR`, about
one level in four), negative response times (178 of 2,423 distinct records), exact
duplicate records right after their original (227 of 2,650), and `Error=true`
exactly when the level is ERROR (or its typo `EROR`). Ticket ids have the tickets'
shape, `TCK` + MMDD + a 3-digit number of the day, so they join to tickets
generated for the same days.

Each day's file depends only on the seed, the day's index and its number of
records; the records of a day are drawn and rendered with numpy and Arrow kernels
at once (no Python loop per record).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LEVELS = ("INFO", "DEBUG", "WARNING", "ERROR")
LEVEL_WEIGHTS = (1184, 975, 220, 44)  # the course's distinct records, typos included
LEVEL_TYPOS = ("INF0", "DEBG", "warnING", "EROR")
LEVEL_TYPO_RATES = (281 / 1184, 242 / 975, 59 / 220, 11 / 44)
NEGATIVE_RATE = 178 / 2423
DUPLICATE_RATE = 227 / 2423  # extra exact copies per distinct record
EVENTS_PER_TICKET = 2423 / 746
RECORDS_PER_DAY = 85  # 2,650 records over 31 days
USER_AGENTS = (
    "Mobile-Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0)",
    "curl/7.68.0",
    "Python-urllib/3.9",
    "PostmanRuntime/7.32.2",
)
COMPONENT = "careplus.support.GenericService"
DEBUG_TEXT = "\u2139\ufe0f Logged for monitoring"


@dataclass(frozen=True)
class LogsResult:
    files: int
    records: int
    duplicates: int  # records that are exact copies of the record before
    negative: int  # records with a negative ResponseTime (copies included)
    errors: int  # records with level ERROR or EROR (copies included)


def file_name(day: datetime.date) -> str:
    return f"support_logs_{day.isoformat()}.log"


def _text(values: np.ndarray) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


@dataclass(frozen=True)
class _Day:
    text: bytes
    records: int
    duplicates: int
    negative: int
    errors: int


def _render_day(seed: int, index: int, day: datetime.date, count: int, newline: str) -> _Day:
    """One day's file: `count` records (duplicates included), in time order."""
    if count == 0:
        return _Day(b"", 0, 0, 0, 0)
    rng = np.random.default_rng([seed, 7_0001, index])
    distinct = max(1, round(count / (1 + DUPLICATE_RATE)))
    copies = count - distinct

    minute = np.sort(rng.integers(0, 24 * 60, distinct))
    midnight = np.datetime64(day.isoformat(), "s")
    stamps = pa.array(midnight + (minute * 60).astype("timedelta64[s]"))
    tickets = max(1, int(np.ceil(distinct / EVENTS_PER_TICKET)))
    seq = rng.integers(0, tickets, distinct)
    ticket = _join(f"TCK{day:%m%d}", pc.utf8_lpad(_text(seq), 3, "0"))

    level = rng.choice(4, size=distinct, p=np.asarray(LEVEL_WEIGHTS) / sum(LEVEL_WEIGHTS))
    typo = rng.random(distinct) < np.asarray(LEVEL_TYPO_RATES)[level]
    level_names = pa.array(LEVELS + LEVEL_TYPOS).take(pa.array(np.where(typo, level + 4, level)))
    octets = [_text(rng.integers(1, 255, distinct)) for _ in range(4)]
    ip = pc.binary_join_element_wise(*octets, ".")
    response = rng.integers(120, 1801, distinct)
    negative = rng.random(distinct) < NEGATIVE_RATE
    response = np.where(negative, -response, response)
    cpu = rng.integers(1000, 9001, distinct)
    cpu_text = _join(_text(cpu // 100), ".", pc.utf8_lpad(_text(cpu % 100), 2, "0"))
    agent = pa.array(USER_AGENTS).take(pa.array(rng.integers(0, len(USER_AGENTS), distinct)))
    is_error = level == 3
    error = pa.array(np.where(is_error, "true", "false"))

    lines = [
        _join(
            pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S"),
            " [",
            level_names,
            f"] {COMPONENT} - TicketID=",
            ticket,
            " SessionID=sess_",
            ticket,
        ),
        _join(
            "IP=",
            ip,
            " | ResponseTime=",
            _text(response),
            "ms | CPU=",
            cpu_text,
            "% | EventType=generic_event | Error=",
            error,
        ),
        _join('UserAgent="', agent, '"'),
        _join('Message=" event for ', ticket, '"'),
        pa.array(np.full(distinct, f'Debug="{DEBUG_TEXT}"')),
        pa.array(np.full(distinct, "TraceID=None")),
        pa.array(np.full(distinct, "---")),
    ]
    records = pc.binary_join_element_wise(*lines, newline)
    # Exact copies, each right after its original.
    copied = np.sort(rng.choice(distinct, size=copies, replace=False))
    order = np.sort(np.concatenate([np.arange(distinct), copied]), kind="stable")
    records = records.take(pa.array(order))
    with_breaks = pc.binary_join_element_wise(records, pa.scalar(""), newline)
    _, offsets_buf, data_buf = with_breaks.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32)[
        with_breaks.offset : with_breaks.offset + len(with_breaks) + 1
    ]
    text = bytes(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1]) - len(newline)])
    return _Day(
        text,
        records=len(order),
        duplicates=copies,
        negative=int(negative[order].sum()),
        errors=int(is_error[order].sum()),
    )


def _write(path: Path, data: bytes) -> None:
    """Write a whole file under a hidden name, then rename it (a watcher sees it complete)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def generate_logs(
    out_dir: Path,
    *,
    days: int,
    seed: int,
    start: datetime.date = datetime.date(2025, 7, 1),
    records: int | None = None,
    crlf: bool = False,
) -> LogsResult:
    """Write `days` daily files to `out_dir` with `records` records in all (default 85 a day)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    total = RECORDS_PER_DAY * days if records is None else records
    if total < 0:
        raise ValueError(f"rows must be 0 or more, got {total}")
    # Records per day: the same for the same (seed, days, total).
    counts = np.random.default_rng([seed, 7_0000, days]).multinomial(total, [1 / days] * days)
    out_dir.mkdir(parents=True, exist_ok=True)
    newline = "\r\n" if crlf else "\n"
    tally = np.zeros(4, dtype=np.int64)
    for index in range(days):  # one file per day; the records of a day are vectorised
        day = start + datetime.timedelta(days=index)
        rendered = _render_day(seed, index, day, int(counts[index]), newline)
        _write(out_dir / file_name(day), rendered.text)
        tally += (rendered.records, rendered.duplicates, rendered.negative, rendered.errors)
    return LogsResult(days, int(tally[0]), int(tally[1]), int(tally[2]), int(tally[3]))
