"""Pinned recovery points: a mount, revert, failover or verify in progress keeps its point.

Each user of a point writes a pin file into the mirror's state folder,
`<state_dir>/mirrors/<site>/<volume>/pins/<pid>-<random>.json` (0600):
`{"rp_id": int, "pid": int, "start": int, "purpose": str}`, where `start` is the process's start
time in clock ticks since boot (/proc/<pid>/stat field 22), so a pid reused by another process
does not keep a pin alive. A pin whose process is gone (or whose pid now names another process)
is stale: it is ignored and removed by the next reader. Retention skips every point with a live
pin (Mirror.expire). A pin is written before its user checks that the point is retained, so an
applier that expires points after that check sees it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from .private import PRIVATE_FILE, private_folder

PINS = "pins"


@dataclass(frozen=True)
class Pin:
    rp_id: int
    pid: int
    start: int
    purpose: str


def process_start(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after the command name start at field 3


@contextmanager
def pinned(root: Path, rp_id: int, purpose: str) -> Iterator[Pin]:
    """Pin `rp_id` of the mirror whose state folder is `root` until the block exits."""
    folder = root / PINS
    private_folder(folder)
    pid = os.getpid()
    pin = Pin(rp_id, pid, process_start(pid) or 0, purpose)
    name = f"{pid}-{uuid.uuid4().hex[:8]}"
    path, partial = folder / f"{name}.json", folder / f".{name}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(asdict(pin)))
    os.rename(partial, path)  # readers never see a pin half written
    try:
        yield pin
    finally:
        path.unlink(missing_ok=True)


def live_pins(root: Path) -> list[Pin]:
    """Every live pin of the mirror; stale and unreadable pin files are removed."""
    folder = root / PINS
    if not folder.is_dir():
        return []
    found: list[Pin] = []
    for path in sorted(folder.glob("*.json")):
        try:
            pin = Pin(**json.loads(path.read_text()))
        except FileNotFoundError:
            continue  # its user just finished
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if process_start(pin.pid) == pin.start:
            found.append(pin)
        else:
            path.unlink(missing_ok=True)
    return found


def pinned_points(root: Path) -> set[int]:
    return {pin.rp_id for pin in live_pins(root)}
