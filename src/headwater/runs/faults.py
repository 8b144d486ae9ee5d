"""Named crash points, for the crash-safety tests.

`checkpoint(name)` does nothing unless the environment variable
`HEADWATER_FAULT` equals `name`, in which case the process kills itself
with SIGKILL on the spot: no cleanup, no `finally`, exactly like a machine
losing power mid-run. Tests use it to prove that rerunning after a crash at
any of these points gives the tables an uninterrupted run gives.

`HEADWATER_FAULT=<name>:hang` stops there instead: the process creates the file
named by `HEADWATER_FAULT_MARK` (if set) and sleeps until it is killed. The
scheduler tests use it for a run that outlives its timeout, and to kill the
scheduler while its run sits at a known point.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "HEADWATER_FAULT"
MARK_ENV = "HEADWATER_FAULT_MARK"

# Every checkpoint the pipeline passes, in order; tests iterate over this.
POINTS = (
    "extract.after_first_put",
    "extract.after_ledger",
    "stage.after_parquet",
    "stage.after_commit",
    "transform.after_first_model",
    "transform.before_batch_done",
    "load.before_commit",
    "load.after_commit",
)


def checkpoint(name: str) -> None:
    fault = os.environ.get(ENV)
    if fault == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == f"{name}:hang":
        mark = os.environ.get(MARK_ENV)
        if mark:
            Path(mark).write_text(str(os.getpid()))
        while True:
            time.sleep(3600)
