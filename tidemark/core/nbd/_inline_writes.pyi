from collections.abc import Callable

def serve_writes(
    buffer: bytes | bytearray | memoryview,
    start: int,
    fd: int,
    block_size: int,
    export_size: int,
    max_length: int,
    max_count: int,
    intent: Callable[[int, int], object],
    submit: Callable[[int, bytes], object],
    /,
) -> tuple[int, bytes]: ...
