"""Sparse image helpers for the scan tests: create, write real bytes, punch holes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tidemark.core.image_io import PUNCH, fallocate


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
        if not fallocate(fd, PUNCH, offset, length, path):
            pytest.skip(f"cannot punch holes in {path}")
    finally:
        os.close(fd)
