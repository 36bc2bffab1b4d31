"""The fault suite's own yardsticks, without a broker: qemu-io results and the acknowledged model.

If these were wrong, the fault test could pass while writes were lost; so they must catch a lost
write and a corrupted block, and must accept every outcome of a write left in doubt.
"""

from __future__ import annotations

from pathlib import Path

from .workload import AckModel, WriteCommand, run_chunk

BLOCK = 4096
SIZE = 16 * BLOCK


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(SIZE))
    return path


def test_run_chunk_reports_each_command_in_order(tmp_path: Path) -> None:
    image = _image(tmp_path)
    commands = [WriteCommand(0, 0, BLOCK, 7), WriteCommand(1, SIZE, BLOCK, 8), WriteCommand(2, BLOCK, 2 * BLOCK, 9)]
    assert run_chunk(str(image), commands) == [True, False, True]  # the second ends past the image
    data = image.read_bytes()
    assert data[:BLOCK] == bytes([7]) * BLOCK and data[BLOCK : 3 * BLOCK] == bytes([9]) * 2 * BLOCK


def test_run_chunk_against_no_server_acknowledges_nothing() -> None:
    assert run_chunk("nbd://127.0.0.1:1/none", [WriteCommand(0, 0, BLOCK, 1)]) == [False]


def test_the_model_finds_a_lost_write_and_accepts_doubtful_outcomes() -> None:
    model = AckModel(SIZE, BLOCK)
    model.acknowledge(WriteCommand(0, 0, 2 * BLOCK, 5))
    model.acknowledge(WriteCommand(1, 4 * BLOCK, BLOCK, 6))
    model.in_doubt(WriteCommand(2, BLOCK, BLOCK, 7))
    image = bytearray(SIZE)
    image[: 2 * BLOCK] = bytes([5]) * 2 * BLOCK
    image[4 * BLOCK : 5 * BLOCK] = bytes([6]) * BLOCK
    assert model.lost_writes(bytes(image), lambda _b: False) == set()
    image[BLOCK : 2 * BLOCK] = bytes([7]) * BLOCK  # the doubtful write landed: also fine
    assert model.lost_writes(bytes(image), lambda _b: False) == set()

    image[4 * BLOCK : 5 * BLOCK] = bytes(BLOCK)  # write 1 missing
    assert model.lost_writes(bytes(image), lambda _b: False) == {1}
    assert model.lost_writes(bytes(image), lambda b: b == 4) == set()  # unless pending resync
    image[4 * BLOCK : 5 * BLOCK] = bytes([6]) * BLOCK
    image[9 * BLOCK + 17] = 3  # a block nobody wrote is corrupted
    assert model.lost_writes(bytes(image), lambda _b: False) == {-1}


def test_settle_keeps_what_the_quiet_source_holds() -> None:
    model = AckModel(SIZE, BLOCK)
    model.acknowledge(WriteCommand(0, 0, BLOCK, 5))
    model.in_doubt(WriteCommand(1, 0, BLOCK, 7))
    source = bytes([7]) * BLOCK + bytes(SIZE - BLOCK)
    model.settle(source)
    assert model.lost_writes(source, lambda _b: False) == set()
    assert model.lost_writes(bytes([5]) * BLOCK + bytes(SIZE - BLOCK), lambda _b: False) == {0}
