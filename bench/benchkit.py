"""What every benchmark in bench/ shares: logging, verdicts, best-of timing, the
environment a figure was measured in, and cProfile output. Imported by the scripts
(`python bench/<name>.py` puts this folder first on the path)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import pstats
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def log(message: str) -> None:
    print(message, flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def best_of(repeat: int, step: Callable[[], T], seconds_of: Callable[[T], float]) -> T:
    """Run ``step`` ``repeat`` times; keep the fastest result."""
    best: T | None = None
    for i in range(repeat):
        result = step()
        if repeat > 1:
            log(f"  try {i + 1}/{repeat}: {seconds_of(result):.2f} s")
        if best is None or seconds_of(result) < seconds_of(best):
            best = result
    assert best is not None
    return best


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    ).stdout.strip()


def environment(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """When, on what commit (``-dirty`` with uncommitted changes) and machine; plus ``extra``."""
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else ""),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        **(extra or {}),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def print_profile(path: Path, title: str, top: int = 25) -> None:
    stats = pstats.Stats(str(path))
    for key in ("cumulative", "tottime"):
        log(f"\n{title}, top {top} by {key} ({path.relative_to(REPO)}):")
        stats.sort_stats(key).print_stats(top)
    sys.stdout.flush()
