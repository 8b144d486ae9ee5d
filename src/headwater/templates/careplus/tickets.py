"""The rows of the careplus `support_tickets` table: generated, or read from the course's dump.

The table has ten TEXT columns, in this order (the odd casing of `IssUeCat` is the
source's own)::

    ticket_id created_at resolved_at agent priority num_interactions IssUeCat channel
    status agent_feedback

`generate_tickets` draws any number of rows with numpy (no Python loop per row) and
plants the course's defects at the course's rates: exact duplicate rows (64 in 810),
priority typos (`Medum`, `Lw`, `Hgh`), `num_interactions = -999999` as a sentinel
(about 1 ticket in 5), escalated tickets that still have a `resolved_at`, and an
always-empty `agent_feedback`. Same arguments, same rows.

`read_dump` reads the course's data as delivered: a mysqldump `.sql` file (extended
`INSERT INTO support_tickets VALUES (...),(...)` statements; `NULL` unquoted, strings in
single quotes with backslash escapes) or a CSV export with a header (an empty field
is NULL, except in `agent_feedback`, which the course's database holds as '').
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from headwater.errors import ConfigError

TABLE = "support_tickets"
COLUMNS = (
    "ticket_id",
    "created_at",
    "resolved_at",
    "agent",
    "priority",
    "num_interactions",
    "IssUeCat",
    "channel",
    "status",
    "agent_feedback",
)
AGENTS = ("Ananya", "Arjun", "Kavya", "Rohit", "Sneha")
CATEGORIES = ("Account Locked", "Bug Report", "Feature Request", "Login Issue", "Payment Failure")
CHANNELS = ("Chat", "Email", "Phone", "Web Form")
CHANNEL_WEIGHTS = (157, 188, 150, 159)
STATUSES = ("Resolved", "Open", "Escalated")
STATUS_WEIGHTS = (664, 112, 34)
PRIORITIES = ("Low", "Medium", "High")
PRIORITY_WEIGHTS = (233, 406, 171)
PRIORITY_TYPOS = ("Lw", "Medum", "Hgh")
PRIORITY_TYPO_RATES = (72 / 233, 89 / 406, 31 / 171)
SENTINEL = "-999999"
SENTINEL_RATE = 139 / 746  # of distinct tickets
DUPLICATE_RATE = 64 / 746  # extra exact copies per distinct ticket
MAX_DAYS = 365  # ticket ids carry MMDD: a longer span would repeat them

IntArray = npt.NDArray[np.int64]


Weights = npt.NDArray[np.float64]


def _weights(values: tuple[int, ...]) -> Weights:
    w = np.asarray(values, dtype=np.float64)
    out: Weights = w / w.sum()
    return out


def _pick(
    rng: np.random.Generator, choices: tuple[str, ...], p: Weights | None, n: int
) -> pa.Array:
    """`n` values drawn from `choices` (as a dictionary-free string array)."""
    codes = rng.choice(len(choices), size=n, p=p)
    return pa.array(choices, pa.string()).take(pa.array(codes))


def _minutes_text(base: datetime.date, minutes: IntArray) -> pa.Array:
    """`YYYY-MM-DD HH:MM` for minutes counted from midnight of `base`."""
    start = np.datetime64(base.isoformat(), "m")
    stamps = pa.array((start + minutes.astype("timedelta64[m]")).astype("datetime64[s]"))
    return pc.strftime(stamps, format="%Y-%m-%d %H:%M")


def generate_tickets(
    rows: int, *, days: int, seed: int, start: datetime.date = datetime.date(2025, 7, 1)
) -> pa.Table:
    """`rows` rows of `support_tickets` (duplicates included) created over `days` days."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1 to {MAX_DAYS} (ticket ids carry MMDD), got {days}")
    rng = np.random.default_rng([seed, 20250701])
    distinct = max(1, round(rows / (1 + DUPLICATE_RATE)))
    copies = rows - distinct

    # Creation times, in order; the sequence number restarts every day.
    day = rng.integers(0, days, distinct)
    minute = rng.integers(0, 24 * 60, distinct)
    order = np.lexsort((minute, day))
    day, minute = day[order], minute[order]
    seq = np.arange(distinct) - np.searchsorted(day, day, side="left")
    created_min = day * 1440 + minute
    created = _minutes_text(start, created_min)
    month_day = pc.utf8_slice_codeunits(created, 5, 10)
    ticket_id = pc.binary_join_element_wise(
        "TCK",
        pc.replace_substring(month_day, "-", ""),
        pc.utf8_lpad(pa.array(seq).cast(pa.string()), 3, "0"),
        "",
    )

    status_code = rng.choice(3, size=distinct, p=_weights(STATUS_WEIGHTS))
    status = pa.array(STATUSES, pa.string()).take(pa.array(status_code))
    # Resolved and escalated tickets carry resolved_at (the escalated ones wrongly);
    # open tickets have none.
    took = rng.integers(20, 36 * 60, distinct)
    resolved = _minutes_text(start, created_min + took)
    resolved = pc.if_else(pa.array(status_code == 1), pa.scalar(None, pa.string()), resolved)

    priority_code = rng.choice(3, size=distinct, p=_weights(PRIORITY_WEIGHTS))
    typo = rng.random(distinct) < np.asarray(PRIORITY_TYPO_RATES)[priority_code]
    names = np.where(typo, priority_code + 3, priority_code)
    priority = pa.array(PRIORITIES + PRIORITY_TYPOS, pa.string()).take(pa.array(names))

    interactions = pa.array(rng.integers(1, 9, distinct)).cast(pa.string())
    sentinel = pa.array(rng.random(distinct) < SENTINEL_RATE)
    interactions = pc.if_else(sentinel, pa.scalar(SENTINEL), interactions)

    columns = [
        ticket_id,
        created,
        resolved,
        _pick(rng, AGENTS, _weights((148, 181, 156, 165, 160)), distinct),
        priority,
        interactions,
        _pick(rng, CATEGORIES, None, distinct),
        _pick(rng, CHANNELS, _weights(CHANNEL_WEIGHTS), distinct),
        status,
        pa.array(np.full(distinct, ""), pa.string()),
    ]
    table = pa.table(columns, names=list(COLUMNS))
    # Exact copies of some tickets, each right after its original (as in the dump).
    copied = np.sort(rng.choice(distinct, size=copies, replace=False))
    source = np.concatenate([np.arange(distinct), copied])
    placed = np.argsort(source, kind="stable")
    return table.take(pa.array(source[placed]))


# --------------------------------------------------------------------------- the dump

_INSERT = re.compile(rb"INSERT INTO\s+`?" + TABLE.encode() + rb"`?\s+VALUES\s*", re.IGNORECASE)


def read_dump(path: Path) -> pa.Table:
    """The rows of a course dump: a mysqldump `.sql` file or a CSV export (by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--from-dump: {path} is not a file")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    if path.suffix.lower() == ".sql":
        return _read_sql(path)
    raise ConfigError(f"--from-dump: {path}: expected a .sql (mysqldump) or .csv file")


def _read_csv(path: Path) -> pa.Table:
    try:
        data = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(COLUMNS, pa.string()),
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"--from-dump: {path}: not a readable CSV file: {exc}") from None
    if tuple(data.column_names) != COLUMNS:
        raise ConfigError(
            f"--from-dump: {path}: expected the header {','.join(COLUMNS)}, "
            f"got {','.join(data.column_names)}"
        )
    feedback = COLUMNS.index("agent_feedback")
    return data.set_column(
        feedback, "agent_feedback", pc.fill_null(data.column(feedback), "")
    ).combine_chunks()


def _real_quotes(buf: npt.NDArray[np.uint8]) -> IntArray:
    """Positions of the single quotes that open or close strings (not escaped by a backslash)."""
    quotes = np.flatnonzero(buf == ord("'")).astype(np.int64)
    if not len(quotes):
        return quotes
    index = np.arange(len(buf), dtype=np.int64)
    last_plain = np.maximum.accumulate(np.where(buf != ord("\\"), index, -1))
    before = quotes - 1
    run = np.where(before >= 0, before - last_plain[np.maximum(before, 0)], 0)
    real: IntArray = quotes[run % 2 == 0]  # after an even run of backslashes: not escaped
    return real


def _read_sql(path: Path) -> pa.Table:
    text = path.read_bytes()
    buf = np.frombuffer(text, np.uint8)
    quotes = _real_quotes(buf)
    # `),(` between tuples and `);` at the end of a statement, outside strings.
    pairs = (buf[:-1] == ord(")")) & ((buf[1:] == ord(",")) | (buf[1:] == ord(";")))
    marks = np.flatnonzero(pairs).astype(np.int64)
    marks = marks[np.searchsorted(quotes, marks) % 2 == 0]
    ends = marks[buf[marks + 1] == ord(";")]
    keep = np.zeros(len(buf), dtype=bool)
    newline = np.zeros(len(buf), dtype=bool)
    found = 0
    for match in _INSERT.finditer(text):  # one per statement, a few per dump
        first = match.end()
        at = int(np.searchsorted(ends, first))
        if at == len(ends) or text[first : first + 1] != b"(":
            raise ConfigError(f"--from-dump: {path}: an INSERT statement does not end in ');'")
        last = int(ends[at])
        keep[first + 1 : last] = True
        newline[last] = True
        found += 1
    if not found:
        raise ConfigError(f"--from-dump: {path}: no INSERT INTO {TABLE} VALUES statement found")
    # Each tuple becomes a line of "CSV" quoted with ' and escaped with \\.
    inner = marks[(buf[marks + 1] == ord(",")) & keep[marks]]
    inner = inner[buf[np.minimum(inner + 2, len(buf) - 1)] == ord("(")]
    keep[inner + 1] = False
    keep[inner + 2] = False
    newline[inner] = True
    keep |= newline
    out = buf.copy()
    out[newline] = ord("\n")
    lines = out[keep].tobytes()
    try:
        data = pacsv.read_csv(
            pa.BufferReader(lines),
            read_options=pacsv.ReadOptions(column_names=list(COLUMNS)),
            parse_options=pacsv.ParseOptions(
                quote_char="'", escape_char="\\", double_quote=False, newlines_in_values=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(COLUMNS, pa.string()),
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                null_values=["NULL"],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ConfigError(
            f"--from-dump: {path}: the {TABLE} rows do not have the spec's "
            f"{len(COLUMNS)} columns: {exc}"
        ) from None
    return data.combine_chunks()
