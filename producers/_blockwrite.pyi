def encode(
    prefix: bytes,
    epoch: int,
    seq: int,
    timestamp: int,
    offset: int,
    length: int,
    op: int,
    compression: int,
    data: bytes | memoryview,
    checksum: bytes,
    generation: int,
    /,
) -> bytes: ...
