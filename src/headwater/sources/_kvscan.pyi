"""Types of the compiled key=value scanner (_kvscan.c); see pairs.scan_records."""

from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer as _Buffer

Buffer: TypeAlias = _Buffer | np.ndarray[Any, Any]  # anything with the buffer protocol

def scan(
    data: Buffer,
    starts: Buffer,
    ends: Buffer,
    newlines: Buffer,
    record_of_line: Buffer,
    kinds: Buffer,
    quote: int,
    equals: int,
    escape: int,
    out_record: Buffer,
    out_code: Buffer,
    out_vstart: Buffer,
    out_vend: Buffer,
    out_escaped: Buffer,
    line_flags: Buffer,
    key_start: Buffer,
    key_end: Buffer,
) -> tuple[int, int]: ...
