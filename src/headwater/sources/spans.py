"""Spans of a text buffer as Arrow strings, without a Python loop or a copy per span.

The offsets interleave the spans' starts and ends, so one Arrow string array over
the buffer alternates wanted spans and the gaps between them; the even elements are
the spans. Shared by the CSV parser and the log parser.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _interleaved(data: pa.Buffer, starts: IntArray, ends: IntArray) -> pa.Array:
    """Spans and the gaps between them, over `data` (sorted, disjoint spans; n >= 1)."""
    n = len(starts)
    large = data.size >= 2**31
    offsets = np.empty(2 * n, dtype=np.int64 if large else np.int32)
    offsets[0::2] = starts
    offsets[1::2] = ends
    kind = pa.LargeStringArray if large else pa.StringArray
    return kind.from_buffers(2 * n - 1, pa.py_buffer(offsets), data)


def strings(data: pa.Buffer, starts: IntArray, ends: IntArray) -> pa.Array:
    """`data[s:e]` for each sorted, disjoint span, as one Arrow string array (copied)."""
    n = len(starts)
    if n == 0:
        return pa.array([], pa.string())
    spans = _interleaved(data, starts, ends)
    out = spans.take(pa.array(np.arange(0, 2 * n, 2, dtype=np.int64)))
    return out.cast(pa.string()) if isinstance(spans, pa.LargeStringArray) else out


def match_spans(data: pa.Buffer, starts: IntArray, ends: IntArray, regex: str) -> BoolArray:
    """Whether each sorted, disjoint span matches `regex` (RE2 search), without copying text."""
    if len(starts) == 0:
        return np.zeros(0, dtype=bool)
    hits = pc.match_substring_regex(_interleaved(data, starts, ends), regex)
    out = np.zeros(len(hits), dtype=bool)
    out[:] = pc.fill_null(hits, False).to_numpy(zero_copy_only=False)
    return out[0::2]
