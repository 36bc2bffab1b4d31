"""The mirror image: a sparse raw file exactly the size of the volume.

Every open holds an flock on the file, shared by default: a process of tidemark that has the file
open says so to the others. An overlay opens its file with `exclusive=True` and fails fast when
another holds it (a mirror, a failback, another mount), so writes never land in a file in use.
New files are created with `mode` (the image 0640: the owner and the group of readers; overlays
and state files 0600).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from tidemark.core.image_io import FileLockedError, Zeroer, lock, open_image, pread_padded, pwrite_full

from ..exceptions import FileInUseError, MirrorSizeError, SinkError

IMAGE_MODE = 0o640
RUN_BYTES = 1 << 20


class MirrorFile:
    """Positional reads and writes on the mirror; `zero` punches a hole where the filesystem can."""

    def __init__(
        self, path: Path, size: int, create: bool = True, writable: bool = True, *,
        mode: int = IMAGE_MODE, exclusive: bool = False,
    ) -> None:  # fmt: skip
        self.path = Path(path)
        self.size = size
        exists = self.path.exists()
        if not exists and not create:
            raise SinkError(f"mirror {self.path} does not exist; run `tidemark mirror` to create it")
        self._fd = open_image(self.path, writable=writable, create=create, mode=mode)
        try:
            try:
                lock(self._fd, self.path, shared=not exclusive)
            except FileLockedError:
                raise FileInUseError(
                    f"{self.path} is held by another tidemark process (a mirror, mount, failback or "
                    "tracker); stop it first, or pick another file"
                ) from None
            actual = os.fstat(self._fd).st_size
            if not exists:
                os.ftruncate(self._fd, size)
                actual = size
            if actual != size:
                raise MirrorSizeError(
                    f"mirror {self.path} is {actual} bytes but the volume is {size} bytes; "
                    "point --path at the mirror of this volume or remove the file"
                )
        except BaseException:
            os.close(self._fd)
            raise
        self._zeroer = Zeroer(self._fd, self.path)

    def pread(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return pread_padded(self._fd, length, offset)

    read = pread  # the BlockReader interface shared with PointView

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._check(offset, len(data))
        pwrite_full(self._fd, data, offset)

    def zero(self, offset: int, length: int) -> None:
        """Make the range read as zeros: a punched hole, or written zeros where punching fails."""
        self._check(offset, length)
        self._zeroer.punch(offset, length)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise SinkError(f"range [{offset}, {offset + length}) is outside mirror {self.path} of {self.size} bytes")

    def __enter__(self) -> MirrorFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class RunWriter:
    """Writes `(block, content)` pairs to an image, adjacent blocks coalesced into runs of at most
    RUN_BYTES; an all-zero run is punched (`zero`), so a revert to an empty point stays sparse.
    Call `flush` after the last pair."""

    def __init__(self, image: MirrorFile, block_size: int) -> None:
        self.image = image
        self.block_size = block_size
        self._first = 0
        self._run = bytearray()

    def add(self, block: int, content: bytes) -> None:
        if self._run and (block != self._first + len(self._run) // self.block_size or len(self._run) >= RUN_BYTES):
            self.flush()
        if not self._run:
            self._first = block
        self._run += content

    def flush(self) -> None:
        if not self._run:
            return
        offset = self._first * self.block_size
        if self._run.count(0) == len(self._run):
            self.image.zero(offset, len(self._run))
        else:
            self.image.pwrite(offset, self._run)
        self._run = bytearray()
