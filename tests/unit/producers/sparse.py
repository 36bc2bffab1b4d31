"""Sparse image helpers for the scan tests: create, write real bytes, punch holes."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

import pytest

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def create(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def write(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        assert os.pwrite(fd, data, offset) == len(data)
    finally:
        os.close(fd)


def punch(path: Path, offset: int, length: int) -> None:
    """Deallocate a range (it reads as zeros); skips the test where the filesystem cannot."""
    fd = os.open(path, os.O_WRONLY)
    try:
        if _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) != 0:
            error = ctypes.get_errno()
            pytest.skip(f"cannot punch holes in {path}: {os.strerror(error)}")
    finally:
        os.close(fd)
