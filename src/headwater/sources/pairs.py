"""`key=value` pairs found in lines, vectorised with numpy over the bytes.

A pair is a key, the `equals` character, then a value:

- the key is the run of characters before `equals` back to the previous
  delimiter (or the start of the line); it must hold a letter and only
  letters, digits, `_`, `.`, `-` and `@` (`TicketID`, `http.status`), else
  the `=` is just text (`a=b=c` is the key `a` with the value `b=c`);
- a quoted value runs from the quote after `equals` to the next quote on the
  line and may hold delimiters, `equals` and any other character
  (`Debug="ℹ️ Logged for monitoring"`); inside it the `escape` character
  (default `\\`) makes the next character plain: `\\"` is a quote that does
  not close the value, `\\\\` a backslash; a value whose closing quote is
  missing marks its line as unbalanced;
- an unquoted value runs to the next delimiter or the end of the line, and
  may be empty (`TraceID=`); when space and tab are delimiters, so are the
  other control characters.

An `equals` inside quotes (an odd number of quotes before it on its line)
belongs to a value and starts no pair. Everything is found with a few passes
over the bytes (the positions of delimiters, quotes, `equals` and newlines)
and `searchsorted` over those positions; no loop runs per line or per pair.
A chunk is scanned in blocks of about `BLOCK` bytes of whole lines: the same
passes over a block whose arrays fit the CPU's caches run about 1.5 times
faster than over a 32 MB chunk at once (measured).

When the compiled scanner (`_kvscan.c`, built at install when a C compiler is
there) is available, `scan_records` walks each line once with the same rules,
gives keys their codes and keeps only the first pair of each key in each
record, without the GIL; `scan` (numpy) is the fallback and the reference the
tests compare it with.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.config_formats import PairsOptions
from headwater.sources.spans import strings
from headwater.sources.textlines import BoolArray, IntArray, Lines, to_bool

try:
    from headwater.sources import _kvscan
except ImportError:  # built without a C compiler: the numpy path only
    _kvscan = None  # type: ignore[assignment]

NATIVE = _kvscan is not None  # tests switch it off to compare both paths
KEY_CAPACITY = 4096  # distinct keys the compiled scanner tracks; more: the numpy path
KEY = r"^[A-Za-z0-9_.@-]*[A-Za-z][A-Za-z0-9_.@-]*$"


@dataclass
class Pairs:
    """Every pair found, in text order, by its byte spans; and lines with an unclosed quote."""

    line: IntArray  # index of the line holding each pair
    key: IntArray  # index into `keys` of each pair's key
    keys: pa.Array  # the distinct keys, in order of first appearance
    value_start: IntArray
    value_end: IntArray
    unbalanced: BoolArray  # per line: a quoted value is not closed on it
    escaped: BoolArray | None = None  # per pair: a quoted value holding the escape character
    escape: str = ""

    def __len__(self) -> int:
        return len(self.line)

    def values(self, lines: Lines, idx: IntArray) -> pa.Array:
        """The values of pairs `idx` (in text order); escapes in quoted values resolved."""
        escaped = None if self.escaped is None else self.escaped[idx]
        return span_values(lines, self.value_start[idx], self.value_end[idx], escaped, self.escape)


def span_values(
    lines: Lines, starts: IntArray, ends: IntArray, escaped: BoolArray | None, escape: str
) -> pa.Array:
    """The values between `starts` and `ends`, escapes in quoted (`escaped`) ones resolved."""
    out = strings(lines.raw, starts, ends)
    if escaped is not None and escaped.any():
        plain = pc.replace_substring_regex(out, re.escape(escape) + "(.)", r"\1")
        out = pc.if_else(pa.array(escaped), plain, out)
    return out


@dataclass
class RecordPairs:
    """The first pair of each key in each record (compiled scanner), in text order."""

    record: IntArray  # record of each pair
    code: IntArray  # index into `keys`
    keys: pa.Array  # distinct keys, in order of first appearance
    value_start: IntArray
    value_end: IntArray
    escaped: BoolArray  # a quoted value holding the escape character
    used: BoolArray  # per line: holds at least one pair (repeated keys included)
    unbalanced: BoolArray  # per line: a quoted value is not closed on it
    escape: str


def _escape_code(lines: Lines, options: PairsOptions) -> int:
    """The escape byte, or -1 when there is none or it appears nowhere (then not tracked)."""
    if not options.escape or all(options.escape.encode() not in p.data for p in lines.pieces):
        return -1
    return ord(options.escape)


def _event_bytes(options: PairsOptions, escapes: bool) -> tuple[set[int], set[int]]:
    """The bytes that end a token (delimiters, line breaks; when space and tab are
    delimiters, every byte up to 32), and the special ones (`equals`, quote, escape)."""
    special = {ord(options.equals), ord(options.quote)}
    if options.escape and escapes:
        special.add(ord(options.escape))
    bounds = {ord(c) for c in options.delimiters} | {10, 13}
    if {9, 32} <= bounds and min(special) > 32:
        bounds |= set(range(33))
    return bounds, special


def _kinds(options: PairsOptions, escapes: bool) -> bytes:
    """256 flags for the compiled scanner: the bytes that end a token (`_event_bytes`)."""
    table = bytearray(256)
    for char in _event_bytes(options, escapes)[0]:
        table[char] = 1
    return bytes(table)


def scan_records(
    lines: Lines, record_of_line: IntArray, options: PairsOptions
) -> RecordPairs | None:
    """The compiled scan of the lines whose `record_of_line` is not -1 (records ascending);
    None when the scanner is not built, is switched off, or cannot take these options."""
    if not NATIVE or _kvscan is None:
        return None
    quote, equals = ord(options.quote), ord(options.equals)
    escape = _escape_code(lines, options)
    if quote == equals or escape in (quote, equals):
        return None
    n = len(lines)
    # A pair takes at least 2 bytes (`k=`) plus the bound before its key: len/2 + 1 slots
    # always suffice. np.empty reserves them without touching memory; only written pages count.
    capacity = len(lines.buf) // 2 + 1
    record = np.empty(capacity, dtype=np.int64)
    code = np.empty(capacity, dtype=np.int64)
    value_start = np.empty(capacity, dtype=np.int64)
    value_end = np.empty(capacity, dtype=np.int64)
    escaped = np.empty(capacity, dtype=np.uint8)
    flags = np.zeros(n, dtype=np.uint8)
    key_start = np.empty(KEY_CAPACITY, dtype=np.int64)
    key_end = np.empty(KEY_CAPACITY, dtype=np.int64)
    found, keys = _kvscan.scan(
        lines.raw,
        np.ascontiguousarray(lines.starts, dtype=np.int64),
        np.ascontiguousarray(lines.ends, dtype=np.int64),
        np.ascontiguousarray(lines.newlines, dtype=np.int64),
        np.ascontiguousarray(record_of_line, dtype=np.int64),
        _kinds(options, escape >= 0),
        quote,
        equals,
        escape,
        record,
        code,
        value_start,
        value_end,
        escaped,
        flags,
        key_start,
        key_end,
    )
    if keys < 0:
        return None
    return RecordPairs(
        record[:found],
        code[:found],
        strings(lines.raw, key_start[:keys], key_end[:keys]) if keys else pa.array([], pa.string()),
        value_start[:found],
        value_end[:found],
        escaped[:found].astype(bool),
        (flags & 2) != 0,
        (flags & 1) != 0,
        options.escape,
    )


def _events(buf: npt.NDArray[np.uint8], options: PairsOptions, escapes: bool) -> IntArray:
    """Sorted positions of every byte that matters (`_event_bytes`); bytes up to 32, when
    they all end tokens, are found with a single comparison."""
    bounds, special = _event_bytes(options, escapes)
    chars = bounds | special
    mask = np.empty(len(buf), dtype=bool)
    more = np.empty(len(buf), dtype=bool)
    if set(range(33)) <= chars:
        np.less_equal(buf, 32, out=mask)
        chars -= set(range(33))
    else:
        mask[:] = False
    for char in sorted(chars):
        np.equal(buf, char, out=more)
        np.logical_or(mask, more, out=mask)
    return np.flatnonzero(mask).astype(np.int64, copy=False)


BLOCK = 2 << 20  # bytes scanned at a time: the working arrays stay in the CPU's caches


def scan(lines: Lines, content: BoolArray, options: PairsOptions) -> Pairs:
    """The pairs of the `content` lines (one flag per line).

    Lines are scanned in blocks of about `BLOCK` bytes (a pair never spans
    lines), which keeps the arrays of each step in the CPU's caches; the
    blocks' keys are merged into one dictionary.
    """
    escape = ord(options.escape) if options.escape else None
    if escape is not None and all(bytes([escape]) not in p.data for p in lines.pieces):
        escape = None  # no escape character anywhere: no need to track them
    spans = list(itertools.pairwise(_blocks(lines).tolist()))
    parts = [_scan_block(lines, lo, hi, content[lo:hi], options, escape) for lo, hi in spans]
    unbalanced = np.concatenate([p.unbalanced for p in parts])
    if len(parts) == 1:
        parts[0].unbalanced = unbalanced
        return parts[0]
    merged = pa.concat_arrays([p.keys for p in parts]).dictionary_encode()
    recode = merged.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    first_code = np.cumsum([0] + [len(p.keys) for p in parts])
    escaped = None
    if any(p.escaped is not None for p in parts):
        escaped = np.concatenate(
            [p.escaped if p.escaped is not None else np.zeros(len(p), bool) for p in parts]
        )
    return Pairs(
        np.concatenate([p.line for p in parts]),
        np.concatenate([recode[first_code[i] + p.key] for i, p in enumerate(parts)]),
        merged.dictionary,
        np.concatenate([p.value_start for p in parts]),
        np.concatenate([p.value_end for p in parts]),
        unbalanced,
        escaped,
        options.escape,
    )


def _blocks(lines: Lines) -> IntArray:
    """Line indices cutting the lines into blocks of about `BLOCK` bytes."""
    n = len(lines)
    if n == 0 or lines.buf.size <= BLOCK * 3 // 2:
        return np.array([0, n], dtype=np.int64)
    goals = np.arange(BLOCK, lines.buf.size - BLOCK // 2, BLOCK, dtype=np.int64)
    cuts = np.unique(np.searchsorted(lines.starts, goals))
    cuts = cuts[(cuts > 0) & (cuts < n)]
    return np.concatenate(([0], cuts, [n])).astype(np.int64)


def _scan_block(
    lines: Lines, lo: int, hi: int, content: BoolArray, options: PairsOptions, escape: int | None
) -> Pairs:
    """The pairs of lines `lo` to `hi` (positions in the whole buffer, lines from `lo`).

    One sorted array of event positions (`_events`) holds everything: a key
    begins after the event before its `equals` (which must be a delimiter or
    line break), an unquoted value ends at the event after it, a quoted value
    at the next quote event. Running counts over the events give each event
    its line and the quotes before it on its line.
    """
    offset = int(lines.starts[lo]) if hi > lo else 0
    stop = int(lines.newlines[hi - 1]) + 1 if hi > lo else 0
    buf = lines.buf[offset:stop]
    ends = lines.ends[lo:hi] - offset
    quote, equals = ord(options.quote), ord(options.equals)
    events = _events(buf, options, escape is not None)
    kind = buf[events]
    if escape is not None:
        escaped_quotes = _escaped(buf, events, kind, quote, escape)
        if len(escaped_quotes):
            events, kind = np.delete(events, escaped_quotes), np.delete(kind, escaped_quotes)
    is_quote = kind == quote
    is_equals = kind == equals
    is_escape = (kind == escape) if escape is not None else None
    is_bound = ~(is_quote | is_equals)
    if is_escape is not None:
        is_bound &= ~is_escape
    is_newline = kind == 10
    line_of = np.cumsum(is_newline, dtype=np.int32) - is_newline  # the buffer ends with one
    quotes_upto = np.cumsum(is_quote, dtype=np.int32)  # quotes at or before each event
    quotes_before_line = np.concatenate(([0], quotes_upto[is_newline]))

    # Every `equals` outside quotes on a content line.
    at = np.flatnonzero(is_equals)
    line = line_of[at]
    keep = content[line] & (((quotes_upto[at] - quotes_before_line[line]) & 1) == 0)
    if not keep.all():
        at, line = at[keep], line[keep]
    e = events[at]

    # Key: from just after the previous event, which must end a token.
    prev = at - 1
    first = prev < 0
    prev[first] = 0
    key_start = events[prev] + 1
    key_start[first] = 0
    ok = (first | is_bound[prev]) & (key_start < e)
    if not ok.all():
        at, e, key_start, line = at[ok], e[ok], key_start[ok], line[ok]
    line_end = ends[line]

    # Value: quoted when a quote follows `equals`; else up to the next delimiter.
    nxt = at + 1  # exists: the buffer's last event is its final newline
    value_start = e + 1
    next_at = events[nxt]
    next_bound = is_bound[nxt]
    quoted = is_quote[nxt] & (next_at == value_start)
    value_end = np.where(next_bound, next_at, -1)
    odd = np.flatnonzero(~quoted & ~next_bound)  # `a=b=c`, `a=x"y`: look further
    if len(odd):
        bound_idx = np.flatnonzero(is_bound)
        value_end[odd] = events[bound_idx[np.searchsorted(bound_idx, nxt[odd])]]
    np.minimum(value_end, line_end, out=value_end)
    unbalanced = np.zeros(hi - lo, dtype=bool)
    escaped = None
    q = np.flatnonzero(quoted)
    if len(q):
        quote_idx = np.flatnonzero(is_quote)
        rank = quotes_upto[nxt[q]]  # the opening quote is quote number rank (1-based)
        has_close = rank < len(quote_idx)
        close_at = quote_idx[np.minimum(rank, len(quote_idx) - 1)]
        closed = has_close & (line_of[close_at] == line[q])
        unbalanced[line[q[~closed]]] = True
        value_start[q] += 1
        value_end[q] = np.where(closed, events[close_at], line_end[q])
        if is_escape is not None and is_escape.any():
            escapes_upto = np.cumsum(is_escape, dtype=np.int32)
            escaped = np.zeros(len(at), dtype=bool)
            escaped[q] = escapes_upto[np.where(closed, close_at, nxt[q])] > escapes_upto[nxt[q]]
    raw = lines.raw.slice(offset, stop - offset)
    keys = strings(raw, key_start, e).dictionary_encode()
    good = to_bool(pc.match_substring_regex(keys.dictionary, KEY))
    codes = keys.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = keys.dictionary
    if not good.all():
        ok = good[codes]
        line, value_start, value_end = line[ok], value_start[ok], value_end[ok]
        escaped = None if escaped is None else escaped[ok]
        codes = (np.cumsum(good) - 1)[codes[ok]]
        names = names.filter(pa.array(good))
    return Pairs(
        line.astype(np.int64) + lo,
        codes,
        names,
        value_start + offset,
        value_end + offset,
        unbalanced,
        escaped,
        options.escape,
    )


def _escaped(
    buf: npt.NDArray[np.uint8],
    events: IntArray,
    kind: npt.NDArray[np.uint8],
    quote: int,
    escape: int,
) -> IntArray:
    """Indices (into `events`) of escaped quotes: an odd run of escape characters before."""
    quotes = np.flatnonzero(kind == quote)
    pos = events[quotes]
    candidates: IntArray = quotes[(pos > 0) & (buf[np.maximum(pos - 1, 0)] == escape)]
    if not len(candidates):
        return candidates
    run = np.zeros(len(candidates), dtype=np.int64)
    at = events[candidates] - 1
    active = np.arange(len(candidates))
    while len(active):  # one step per escape character of the longest run
        p = at[active]
        more = (p >= 0) & (buf[np.maximum(p, 0)] == escape)
        active = active[more]
        run[active] += 1
        at[active] -= 1
    escaped: IntArray = candidates[(run & 1) == 1]
    return escaped
