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

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path

from tidemark.producers.image_file import open_volume_image

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_FALLOC_FL_ZERO_RANGE = 0x10
_PUNCH = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
_ZERO_RANGE = _FALLOC_FL_ZERO_RANGE | _FALLOC_FL_KEEP_SIZE
MAX_EXTENTS = 1024  # most (length, flags) pairs one `extents` call returns (the client asks again)
HOLE = 1 | 2  # base:allocation flags of a hole: NBD_STATE_HOLE | NBD_STATE_ZERO
_ZERO_CHUNK = bytes(1024 * 1024)
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _libc_fallocate() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fallocate = libc.fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate.restype = ctypes.c_int
    return fallocate


class RawImage:
    """A raw disk image of a fixed size, opened read-write."""

    def __init__(self, path: Path, expected_size: int, volume_name: str) -> None:
        self.path = path
        self._fd = open_volume_image(path, volume_name, expected_size, writable=True)
        self.size = expected_size
        self._fallocate = _libc_fallocate()
        self._unsupported: set[int] = set() if self._fallocate is not None else {_PUNCH, _ZERO_RANGE}

    def read(self, offset: int, length: int) -> bytes:
        """Exactly `length` bytes at `offset` (the caller checked the range)."""
        data = os.pread(self._fd, length, offset)
        if len(data) == length:
            return data
        parts = [data]
        done = len(data)
        while done < length:
            chunk = os.pread(self._fd, length - done, offset + done)
            if not chunk:
                raise OSError(errno.EIO, f"short read at offset {offset + done} of {self.path}")
            parts.append(chunk)
            done += len(chunk)
        return b"".join(parts)

    def write(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def trim(self, offset: int, length: int) -> None:
        """Discard the range; it reads back as zeros afterwards."""
        if not self._punch_hole(offset, length):
            self._write_zeros(offset, length)

    def write_zeroes(self, offset: int, length: int, *, may_punch: bool) -> None:
        """Zero the range; `may_punch=False` (NBD_CMD_FLAG_NO_HOLE) keeps it allocated."""
        if not self._zero_by_fallocate(offset, length, may_punch):
            self._write_zeros(offset, length)

    def zeroes_fast(self, may_punch: bool) -> bool:
        """Whether `write_zeroes` can zero without writing zeros (as far as the file system has told)."""
        usable = {_PUNCH, _ZERO_RANGE} if may_punch else {_ZERO_RANGE}
        return bool(usable - self._unsupported)

    def prefetch(self, offset: int, length: int) -> None:
        """Ask the kernel to read the range into the page cache (NBD_CMD_CACHE); returns at once."""
        os.posix_fadvise(self._fd, offset, length, os.POSIX_FADV_WILLNEED)

    def extents(self, offset: int, length: int) -> list[tuple[int, int]]:
        """(length, flags) from `offset`: HOLE for holes, 0 for data; at most MAX_EXTENTS pairs."""
        end = offset + length
        found: list[tuple[int, int]] = []
        at = offset
        while at < end and len(found) < MAX_EXTENTS:
            try:
                data = os.lseek(self._fd, at, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no data after `at`
                    raise
                data = end
            if data > at:
                found.append((min(data, end) - at, HOLE))
                at = min(data, end)
                continue
            hole = os.lseek(self._fd, at, os.SEEK_HOLE)
            found.append((min(hole, end) - at, 0))
            at = min(hole, end)
        return found

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _punch_hole(self, offset: int, length: int) -> bool:
        """True when the file system punched the hole; False when it cannot (fall back to zeros)."""
        return self._try_fallocate(_PUNCH, offset, length)

    def _zero_by_fallocate(self, offset: int, length: int, may_punch: bool) -> bool:
        """Zero with PUNCH_HOLE (if allowed) or ZERO_RANGE; False when the file system offers neither."""
        if may_punch and self._try_fallocate(_PUNCH, offset, length):
            return True
        return self._try_fallocate(_ZERO_RANGE, offset, length)

    def _try_fallocate(self, mode: int, offset: int, length: int) -> bool:
        """True when fallocate(mode) succeeded; False (and remembered) when the file system lacks it."""
        if self._fallocate is None or mode in self._unsupported:
            return False
        if self._fallocate(self._fd, mode, offset, length) == 0:
            return True
        err = ctypes.get_errno()
        if err in _UNSUPPORTED:
            self._unsupported.add(mode)
            return False
        raise OSError(err, f"fallocate({mode:#x}) at offset {offset} of {self.path}: {os.strerror(err)}")

    def _write_zeros(self, offset: int, length: int) -> None:
        end = offset + length
        while offset < end:
            step = min(len(_ZERO_CHUNK), end - offset)
            self.write(offset, memoryview(_ZERO_CHUNK)[:step])
            offset += step
