from collections.abc import Callable

def serve_writes(
    buffer: bytes | bytearray | memoryview,
    start: int,
    fd: int,
    block_size: int,
    export_size: int,
    max_length: int,
    max_count: int,
    intent: Callable[[list[tuple[int, int]]], object],
    submit: Callable[[list[tuple[int, bytes]]], int],
    /,
) -> tuple[int, bytes]: ...
