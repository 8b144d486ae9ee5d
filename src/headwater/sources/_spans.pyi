from headwater.sources._kvscan import Buffer

def gather(data: Buffer, starts: Buffer, ends: Buffer, offsets: Buffer, out: Buffer) -> None: ...
def find(data: Buffer, byte: int, out: Buffer) -> int: ...
def group(
    code: Buffer,
    record: Buffer,
    start: Buffer,
    end: Buffer,
    flag: Buffer,
    out_record: Buffer,
    out_start: Buffer,
    out_end: Buffer,
    out_flag: Buffer,
    counts: Buffer,
) -> None: ...
