"""Who may read a mirror's state: its owner only.

A mirror's state folder (`<state_dir>/mirrors/<site>/<volume>/`: progress, undo store, spool,
bitmaps, saved blocks, default overlays) is 0700, and every file the sinks create in it or for an
overlay is 0600, whatever the umask: undo data and overlays hold volume content. Files written by
other libraries inside (RocksDB's) take the umask's mode but sit in the private folder. The
mirror image itself stays 0640 (owner and a group of readers, as a disk image usually is).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def private_folder(path: Path) -> None:
    """Create `path` (and its parents) and make it 0700."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_FOLDER)


def private_umask() -> None:
    """From now on this process creates files without group or other access (umask 077).

    The commands that write a mirror's undo store call it first: RocksDB creates its files with
    the umask's mode, so only the umask makes them 0600. Images created by such a process are 0600.
    """
    os.umask(os.umask(0) | 0o077)
