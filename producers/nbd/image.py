"""The raw image behind the NBD export: positional reads and writes on one file descriptor.

Every method blocks (disk I/O); the server calls them from a thread pool. Positional I/O on one
fd is safe from several threads at once. Trimmed and zeroed ranges always read back as zeros:
mirrors apply TRIM as zeros, so the source must agree with them.

Zeroing prefers the file system: PUNCH_HOLE when a hole is allowed, ZERO_RANGE when the range
must stay allocated, and writes zeros only when the file system supports neither (`zeroes_fast`
says whether zeroing is fast before anything is done). `extents` reports holes from
SEEK_DATA/SEEK_HOLE (a hole reads as zeros).
"""

from __future__ import annotations

import os
from pathlib import Path

from tidemark.core.image_io import Zeroer, data_ranges, pread_full, pwrite_full
from tidemark.producers.image_file import open_volume_image

MAX_EXTENTS = 1024  # most (length, flags) pairs one `extents` call returns (the client asks again)
HOLE = 1 | 2  # base:allocation flags of a hole: NBD_STATE_HOLE | NBD_STATE_ZERO


class RawImage:
    """A raw disk image of a fixed size, opened read-write."""

    def __init__(self, path: Path, expected_size: int, volume_name: str) -> None:
        self.path = path
        self._fd = open_volume_image(path, volume_name, expected_size, writable=True)
        self.size = expected_size
        self._zeroer = Zeroer(self._fd, path)

    def read(self, offset: int, length: int) -> bytes:
        """Exactly `length` bytes at `offset` (the caller checked the range)."""
        return pread_full(self._fd, length, offset, self.path)

    def write(self, offset: int, data: bytes | memoryview) -> None:
        pwrite_full(self._fd, data, offset)

    def fileno(self) -> int:
        """The image's descriptor (for the NBD core's native write path; this object owns it)."""
        return self._fd

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def trim(self, offset: int, length: int) -> None:
        """Discard the range; it reads back as zeros afterwards."""
        self._zeroer.punch(offset, length)

    def write_zeroes(self, offset: int, length: int, *, may_punch: bool) -> None:
        """Zero the range; `may_punch=False` (NBD_CMD_FLAG_NO_HOLE) keeps it allocated."""
        self._zeroer.zero(offset, length, may_punch=may_punch)

    def zeroes_fast(self, may_punch: bool) -> bool:
        """Whether `write_zeroes` can zero without writing zeros (as far as the file system has told)."""
        return self._zeroer.fast(may_punch)

    def prefetch(self, offset: int, length: int) -> None:
        """Ask the kernel to read the range into the page cache (NBD_CMD_CACHE); returns at once."""
        os.posix_fadvise(self._fd, offset, length, os.POSIX_FADV_WILLNEED)

    def extents(self, offset: int, length: int) -> list[tuple[int, int]]:
        """(length, flags) from `offset`: HOLE for holes, 0 for data; at most MAX_EXTENTS pairs."""
        end = offset + length
        found: list[tuple[int, int]] = []
        at = offset
        for start, stop in data_ranges(self._fd, offset, end):
            if len(found) >= MAX_EXTENTS:
                return found
            if start > at:
                found.append((start - at, HOLE))
                if len(found) >= MAX_EXTENTS:
                    return found
            found.append((stop - start, 0))
            at = stop
        if at < end and len(found) < MAX_EXTENTS:
            found.append((end - at, HOLE))
        return found

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
