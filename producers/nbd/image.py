"""The raw image behind the NBD export: positional reads and writes on one file descriptor.

Every method blocks (disk I/O); the server calls them from a thread pool. Positional I/O on one
fd is safe from several threads at once. Trimmed and zeroed ranges always read back as zeros:
mirrors apply TRIM as zeros, so the source must agree with them.
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
        if may_punch and self._punch_hole(offset, length):
            return
        self._write_zeros(offset, length)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _punch_hole(self, offset: int, length: int) -> bool:
        """True when the file system punched the hole; False when it cannot (fall back to zeros)."""
        if self._fallocate is None:
            return False
        mode = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
        if self._fallocate(self._fd, mode, offset, length) == 0:
            return True
        err = ctypes.get_errno()
        if err in _UNSUPPORTED:
            self._fallocate = None
            return False
        raise OSError(err, f"fallocate(PUNCH_HOLE) at offset {offset} of {self.path}: {os.strerror(err)}")

    def _write_zeros(self, offset: int, length: int) -> None:
        end = offset + length
        while offset < end:
            step = min(len(_ZERO_CHUNK), end - offset)
            self.write(offset, memoryview(_ZERO_CHUNK)[:step])
            offset += step
