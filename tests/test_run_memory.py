"""`headwater.runs.memory`: what parsing freed goes back to the operating system."""

from __future__ import annotations

import platform
import threading
from pathlib import Path

import pytest

from headwater.runs import memory


def rss_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_memory_freed_on_a_worker_thread_is_returned() -> None:
    """A parse worker's freed blocks stay in glibc's arena (the process keeps the size of
    its peak) until `release()` hands them back."""

    def churn() -> None:
        blocks = [bytearray(1000) for _ in range(200_000)]  # ~200 MB of small blocks
        del blocks

    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    before = rss_mib()
    memory.release()
    assert rss_mib() < before - 100


def test_release_is_safe_anywhere() -> None:
    memory.release()
    memory.release()
