"""Raw image I/O, written once: full positional reads and writes, zeroing by the file system, data
ranges, fsync of a folder and non-blocking flock. Trackers, replay and mirrors use only this module.

Guarantees, per function:
- `pread_full` returns exactly `length` bytes or raises naming the file and the offset; short reads
  are retried. `pread_padded` returns exactly `length` bytes, zeros past the end of the file.
- `pwrite_full` writes every byte (short writes are resumed where they stopped).
  EINTR is retried by Python itself (PEP 475), so neither loop sees it.
- `Zeroer` makes a range read as zeros: fallocate(PUNCH_HOLE|KEEP_SIZE) or (ZERO_RANGE|KEEP_SIZE)
  where the file system takes them, written zeros where it refuses (EOPNOTSUPP, ENOSYS, EINVAL); a
  refused mode is remembered per file and not asked again. The file size never changes.
- `data_ranges` yields the `[start, end)` ranges holding data (SEEK_DATA/SEEK_HOLE), in order,
  clipped to the range asked; where holes cannot be seen, the whole range is data. Every byte outside
  the ranges reads as zero.
- `open_image` opens an image (or a file laid out like one) close-on-exec, so child processes
  (qemu-io, nbdkit, a broker) never inherit it; a new file gets `mode`.
- `fsync_dir` makes a folder's entries (a rename, a new or removed file) durable.
- `lock` takes a non-blocking flock; a held lock raises `FileLockedError` naming the path and what
  the holder wrote into it (`write_holder`: "pid N (purpose)").
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from tidemark.exceptions import TidemarkError

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
ZERO_RANGE = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
ZERO_CHUNK = 1 << 20  # bytes of zeros written per pwrite when the file system cannot zero
HOLDER_BYTES = 256  # most bytes of a lock file read as the holder's description
UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})  # fallocate modes a file system lacks

Range = tuple[int, int]  # [start, end) in bytes

_ZEROS = bytes(ZERO_CHUNK)


def _libc_fallocate() -> Callable[..., int] | None:
    """fallocate(2) from the C library, or None where the C library has none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


_fallocate = _libc_fallocate()


class FileLockedError(TidemarkError):
    """Another process holds the flock; `holder` is what it wrote into the file ("" if nothing)."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is locked by {holder or 'another process'}; stop that process first")


def open_image(path: Path | str, *, writable: bool, create: bool = False, mode: int = 0o600) -> int:
    """An fd of the file at `path`, read-write or read-only, created (empty, `mode`) if `create`."""
    flags = (os.O_RDWR if writable else os.O_RDONLY) | (os.O_CREAT if create else 0) | os.O_CLOEXEC
    return os.open(path, flags, mode)


def pread_full(fd: int, length: int, offset: int, path: Path | str) -> bytes:
    """Exactly `length` bytes at `offset`; OSError(EIO) naming `path` when the file ends first."""
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    parts = [data]
    done = len(data)
    while done < length:
        chunk = os.pread(fd, length - done, offset + done)
        if not chunk:
            raise OSError(errno.EIO, f"short read at offset {offset + done} of {path}: the file ends there")
        parts.append(chunk)
        done += len(chunk)
    return b"".join(parts)


def pread_padded(fd: int, length: int, offset: int) -> bytes:
    """Exactly `length` bytes at `offset`, zeros past the end of the file (a file that shrank)."""
    parts: list[bytes] = []
    remaining = length
    while remaining:
        part = os.pread(fd, remaining, offset)
        if not part:
            parts.append(bytes(remaining))
            break
        parts.append(part)
        offset += len(part)
        remaining -= len(part)
    return b"".join(parts)


def pwrite_full(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    """Write all of `data` at `offset`."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def write_zeros(fd: int, offset: int, length: int) -> None:
    """Write `length` zero bytes at `offset` (allocates the range)."""
    end = offset + length
    while offset < end:
        step = min(ZERO_CHUNK, end - offset)
        pwrite_full(fd, memoryview(_ZEROS)[:step], offset)
        offset += step


class Zeroer:
    """Zeroes ranges of one open file; see the module docstring for the guarantees.

    `fallocate=False` never asks the file system (every zeroing writes zeros): the path taken where
    the C library or the file system has no fallocate. Safe from several threads (a refused mode
    is only remembered; asking twice is harmless).
    """

    def __init__(self, fd: int, path: Path | str, *, fallocate: bool = True) -> None:
        self.fd = fd
        self.path = path
        self._refused: set[int] = set() if fallocate and _fallocate is not None else {PUNCH, ZERO_RANGE}

    def punch(self, offset: int, length: int) -> None:
        """The range reads as zeros: a hole where the file system can punch one, else written zeros."""
        if length > 0 and not self._try(PUNCH, offset, length):
            write_zeros(self.fd, offset, length)

    def zero(self, offset: int, length: int, *, may_punch: bool) -> None:
        """The range reads as zeros; `may_punch=False` keeps it allocated (ZERO_RANGE or zeros)."""
        if length <= 0:
            return
        if may_punch and self._try(PUNCH, offset, length):
            return
        if not self._try(ZERO_RANGE, offset, length):
            write_zeros(self.fd, offset, length)

    def fast(self, may_punch: bool) -> bool:
        """Whether `zero` can zero without writing zeros, as far as the file system has told."""
        usable = {PUNCH, ZERO_RANGE} if may_punch else {ZERO_RANGE}
        return bool(usable - self._refused)

    def _try(self, mode: int, offset: int, length: int) -> bool:
        """True when fallocate(mode) succeeded; False (and remembered) when the file system lacks it."""
        if mode in self._refused:
            return False
        if fallocate(self.fd, mode, offset, length, self.path):
            return True
        self._refused.add(mode)
        return False


def fallocate(fd: int, mode: int, offset: int, length: int, path: Path | str) -> bool:
    """fallocate(2): True when done, False when the C library or the file system lacks `mode`
    (UNSUPPORTED errors); any other error raises, naming `path` and the range."""
    if _fallocate is None:
        return False
    if _fallocate(fd, mode, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in UNSUPPORTED:
        return False
    raise OSError(err, f"fallocate({mode:#x}) of [{offset}, {offset + length}) in {path}: {os.strerror(err)}")


def data_ranges(fd: int, start: int, end: int, *, seek_holes: bool = True) -> Iterator[Range]:
    """The data ranges within `[start, end)`, in order (see the module docstring).

    Moves the fd's file position (lseek). `seek_holes=False` reports the whole range as data, as
    for a file system without SEEK_DATA.
    """
    position = start
    while position < end:
        if not seek_holes:
            yield position, end
            return
        try:
            data = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after position
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # holes cannot be seen
                seek_holes = False
                continue
            raise
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole
        position = hole


def fsync_dir(path: Path | str) -> None:
    """Make the folder's entries durable; a file system that cannot sync folders (EINVAL) is left as is."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def lock(fd: int, path: Path, *, shared: bool = False, names_holder: bool = False) -> None:
    """A non-blocking flock on `fd`, exclusive unless `shared`; FileLockedError when another holds it.

    `names_holder`: the file is a lock file whose holder wrote itself into it (`write_holder`); the
    error then carries that text. Never set it for an image (its first bytes are data).
    """
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, HOLDER_BYTES, 0).decode(errors="replace").strip() if names_holder else ""
        raise FileLockedError(path, holder) from None


def write_holder(fd: int, purpose: str) -> None:
    """Say in the locked file who holds it: "pid N (purpose)", read back by `lock` for its error."""
    os.ftruncate(fd, 0)
    pwrite_full(fd, f"pid {os.getpid()} ({purpose})\n".encode(), 0)


def file_data_ranges(path: Path | str, size: int) -> list[Range]:
    """The data ranges of the file at `path` within `[0, size)` (opened read-only for the call)."""
    fd = open_image(path, writable=False)
    try:
        return list(data_ranges(fd, 0, size))
    finally:
        os.close(fd)
