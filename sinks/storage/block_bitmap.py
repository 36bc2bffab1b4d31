"""A set of block indexes kept in a file, replaced atomically (pyroaring serialization)."""

from __future__ import annotations

import os
from pathlib import Path

from pyroaring import BitMap

from tidemark.core.durable import write_durably

from ..exceptions import SinkError
from .private import PRIVATE_FILE


def load_bitmap(path: Path) -> BitMap:
    """The saved set, or an empty one when the file does not exist."""
    try:
        return BitMap.deserialize(path.read_bytes())
    except FileNotFoundError:
        return BitMap()
    except (OSError, ValueError) as exc:
        raise SinkError(f"block bitmap {path} is unreadable ({exc}); remove it only if you know why") from exc


def save_bitmap(path: Path, blocks: BitMap) -> None:
    """Durable when this returns: temporary file, fsync, rename, fsync of the folder. Private (0600)."""
    write_durably(path, blocks.serialize())
    os.chmod(path, PRIVATE_FILE)
