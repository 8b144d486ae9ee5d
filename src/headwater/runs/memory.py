"""Giving memory that parsing freed back to the operating system before the models run.

Parsing allocates and frees hundreds of megabytes of numpy arrays on worker threads.
glibc's malloc keeps freed memory in its per-thread arenas, so the process stays as
large as the parse's peak while DuckDB then takes its own memory for the models, and
the two add up. `release()` asks glibc to return what is free (`malloc_trim`); with
another C library (musl, macOS) it does nothing. A run calls it after each parsed part
(the next batch is parsed while the models of this one run, so waiting for the end of
a parse would keep its garbage through the models) and before each batch's models.
Arrow's own allocator (mimalloc, jemalloc or the system's) keeps freed pages too:
`release()` also asks it to give back what is unused.
A call takes a few milliseconds (22 ms for the ten of a 1M-transaction cafe run).
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable
from typing import Any

import pyarrow as pa


@functools.cache
def _malloc_trim() -> Callable[[int], Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process runs on
    except OSError:
        return None
    trim: Callable[[int], Any] | None = getattr(libc, "malloc_trim", None)  # glibc only
    return trim


def release() -> None:
    """Return the C heap's and Arrow's free memory to the operating system, where they can."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    pa.default_memory_pool().release_unused()
