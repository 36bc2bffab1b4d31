"""The image I/O module on real files in tmp_path: real holes (st_blocks, SEEK_DATA), the zero-write
and whole-file fallbacks forced by their switches, flock between two open file descriptions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.core.durable import write_durably
from tidemark.core.image_io import (
    PUNCH,
    FileLockedError,
    Zeroer,
    data_ranges,
    fallocate,
    file_data_ranges,
    fsync_dir,
    lock,
    open_image,
    pread_full,
    pread_padded,
    pwrite_full,
    write_holder,
)

MIB = 1 << 20
SIZE = 8 * MIB


@pytest.fixture
def image(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An 8 MiB sparse file full of data (b"x"), open read-write."""
    path = tmp_path / "disk.img"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    pwrite_full(fd, b"x" * SIZE, 0)
    os.fsync(fd)
    try:
        yield path, fd
    finally:
        os.close(fd)


def _allocated(fd: int) -> int:
    return os.fstat(fd).st_blocks * 512


def _can_punch(fd: int, path: Path) -> None:
    probe = os.open(path.with_suffix(".probe"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        pwrite_full(probe, b"p" * 8192, 0)
        if not fallocate(probe, PUNCH, 0, 4096, path):
            pytest.skip(f"the file system of {path} cannot punch holes")
    finally:
        os.close(probe)


def test_full_reads_and_writes_cross_many_calls(image: tuple[Path, int]) -> None:
    path, fd = image
    data = os.urandom(3 * MIB + 17)
    pwrite_full(fd, memoryview(data), 12345)
    assert pread_full(fd, len(data), 12345, path) == data
    assert pread_padded(fd, len(data), 12345) == data


def test_a_read_past_the_end_names_the_file_and_offset_or_pads(image: tuple[Path, int]) -> None:
    path, fd = image
    with pytest.raises(OSError, match=f"offset {SIZE} of {path}"):
        pread_full(fd, 100, SIZE - 10, path)
    assert pread_padded(fd, 100, SIZE - 10) == b"x" * 10 + bytes(90)
    assert pread_padded(fd, 10, SIZE + MIB) == bytes(10)


def test_punch_leaves_a_real_hole_of_zeros_and_keeps_the_size(image: tuple[Path, int]) -> None:
    path, fd = image
    _can_punch(fd, path)
    before = _allocated(fd)
    zeroer = Zeroer(fd, path)
    zeroer.punch(MIB, 2 * MIB)
    assert _allocated(fd) <= before - 2 * MIB
    assert os.fstat(fd).st_size == SIZE
    assert pread_full(fd, 2 * MIB, MIB, path) == bytes(2 * MIB)
    assert pread_full(fd, 10, MIB - 10, path) == b"x" * 10, "bytes before the range were touched"
    assert os.lseek(fd, MIB, os.SEEK_DATA) == 3 * MIB
    assert zeroer.fast(may_punch=True)


def test_zero_without_punch_keeps_the_range_allocated(image: tuple[Path, int]) -> None:
    path, fd = image
    _can_punch(fd, path)
    before = _allocated(fd)
    Zeroer(fd, path).zero(0, 2 * MIB, may_punch=False)
    assert pread_full(fd, 2 * MIB, 0, path) == bytes(2 * MIB)
    assert _allocated(fd) == before
    Zeroer(fd, path).zero(0, 2 * MIB, may_punch=True)
    assert _allocated(fd) <= before - 2 * MIB


def test_the_zero_write_fallback_zeros_without_a_hole(image: tuple[Path, int]) -> None:
    path, fd = image
    before = _allocated(fd)
    zeroer = Zeroer(fd, path, fallocate=False)
    assert not zeroer.fast(may_punch=True) and not zeroer.fast(may_punch=False)
    zeroer.punch(MIB + 7, 2 * MIB + 3)
    zeroer.zero(5 * MIB, MIB, may_punch=True)
    assert _allocated(fd) == before, "the fallback must write zeros, not punch"
    assert pread_full(fd, 2 * MIB + 3, MIB + 7, path) == bytes(2 * MIB + 3)
    assert pread_full(fd, MIB, 5 * MIB, path) == bytes(MIB)
    assert pread_full(fd, 7, MIB, path) == b"x" * 7
    assert os.fstat(fd).st_size == SIZE


def test_fallocate_refuses_what_no_file_system_takes(image: tuple[Path, int]) -> None:
    path, fd = image
    assert not fallocate(fd, PUNCH, 0, 0, path), "a zero length is EINVAL: reported as unsupported"
    with pytest.raises(OSError, match=str(path)):
        fallocate(-1, PUNCH, 0, 4096, path)


def test_data_ranges_find_the_real_data(tmp_path: Path) -> None:
    path = tmp_path / "sparse.img"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, 64 * MIB)
        pwrite_full(fd, b"a" * 4096, 10 * MIB)
        pwrite_full(fd, b"b" * 4096, 40 * MIB)
        ranges = list(data_ranges(fd, 0, 64 * MIB))
        if ranges == [(0, 64 * MIB)]:
            pytest.skip(f"the file system of {path} does not report holes")
        assert sum(end - start for start, end in ranges) < 4 * MIB
        assert [r for r in ranges if r[0] <= 10 * MIB < r[1]] and [r for r in ranges if r[0] <= 40 * MIB < r[1]]
        inside = list(data_ranges(fd, 10 * MIB + 100, 40 * MIB + 10))
        assert inside[0][0] == 10 * MIB + 100 and inside[-1][1] == 40 * MIB + 10
        assert list(data_ranges(fd, 50 * MIB, 64 * MIB)) == []
        assert file_data_ranges(path, 64 * MIB) == ranges
        assert list(data_ranges(fd, 5, 64 * MIB, seek_holes=False)) == [(5, 64 * MIB)]
    finally:
        os.close(fd)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(1, 3)), max_size=8), st.integers(0, 1 << 20))
def test_every_byte_outside_the_data_ranges_reads_as_zero(
    tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[int, int]], start: int
) -> None:
    path = tmp_path_factory.mktemp("ranges") / "img"
    size = 256 * 4096
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, size)
        for block, count in writes:
            pwrite_full(fd, b"d" * min(count * 4096, size - block * 4096), block * 4096)
        ranges = list(data_ranges(fd, start, size))
        assert all(start <= a < b <= size for a, b in ranges)
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(ranges, ranges[1:], strict=False)), "not sorted and apart"
        content = pread_full(fd, size, 0, path)
        covered = bytearray(size)
        for a, b in ranges:
            covered[a:b] = content[a:b]
        assert covered[start:] == content[start:]
    finally:
        os.close(fd)


def test_a_held_lock_names_the_path_and_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    second = os.open(path, os.O_RDWR)
    try:
        lock(first, path)
        write_holder(first, "apply change sets")
        with pytest.raises(FileLockedError, match=f"{path} is locked by pid {os.getpid()}") as caught:
            lock(second, path, names_holder=True)
        assert caught.value.holder == f"pid {os.getpid()} (apply change sets)"
        with pytest.raises(FileLockedError, match="another process"):
            lock(second, path, shared=True)
        os.close(first)
        first = -1
        lock(second, path)
    finally:
        for fd in (first, second):
            if fd >= 0:
                os.close(fd)


def test_shared_locks_coexist_and_keep_an_exclusive_one_out(tmp_path: Path) -> None:
    path = tmp_path / "image"
    fds = [os.open(path, os.O_RDWR | os.O_CREAT, 0o600) for _ in range(3)]
    try:
        lock(fds[0], path, shared=True)
        lock(fds[1], path, shared=True)
        with pytest.raises(FileLockedError) as caught:
            lock(fds[2], path)
        assert caught.value.holder == ""
    finally:
        for fd in fds:
            os.close(fd)


def test_fsync_dir_and_a_durable_replacement(tmp_path: Path) -> None:
    target = tmp_path / "state" / "epoch"
    write_durably(target, b"7")
    write_durably(target, b"8")
    fsync_dir(tmp_path / "state")
    assert target.read_bytes() == b"8"
    assert not target.with_name("epoch.tmp").exists()
    with pytest.raises(NotADirectoryError):
        fsync_dir(target)


def test_open_image_creates_with_the_mode_and_closes_on_exec(tmp_path: Path) -> None:
    path = tmp_path / "new.img"
    with pytest.raises(FileNotFoundError):
        open_image(path, writable=False)
    fd = open_image(path, writable=True, create=True, mode=0o640)
    try:
        assert os.stat(path).st_mode & 0o777 == 0o640 & ~_umask()
        assert not os.get_inheritable(fd)
        pwrite_full(fd, b"abc", 0)
    finally:
        os.close(fd)
    reader = open_image(path, writable=False)
    try:
        assert pread_full(reader, 3, 0, path) == b"abc"
        with pytest.raises(OSError):
            os.pwrite(reader, b"x", 0)
    finally:
        os.close(reader)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
