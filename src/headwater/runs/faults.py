"""Named crash points, for the crash-safety tests.

`checkpoint(name)` does nothing unless the environment variable
`HEADWATER_FAULT` equals `name`, in which case the process kills itself
with SIGKILL on the spot: no cleanup, no `finally`, exactly like a machine
losing power mid-run. Tests use it to prove that rerunning after a crash at
any of these points gives the tables an uninterrupted run gives.
"""

from __future__ import annotations

import os
import signal

ENV = "HEADWATER_FAULT"

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
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
