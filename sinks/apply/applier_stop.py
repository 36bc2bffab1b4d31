"""Stop a running `tidemark mirror` of one mirror: its pid is in the mirror's lock file.

Only a lock holder that says it applies change sets is signalled (SIGTERM: the applier finishes
the change set in hand, records progress and exits), and only while it still holds the lock.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import time

from ..exceptions import MirrorLockedError
from ..layout import MirrorLayout

APPLIER_PURPOSE = "apply change sets"
_HOLDER = re.compile(r"pid (\d+) \((.*)\)")


def _holder(layout: MirrorLayout) -> tuple[int, str] | None:
    """(pid, purpose) of the process holding the lock, None when it is free."""
    if not layout.lock.exists():
        return None
    fd = os.open(layout.lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            match = _HOLDER.match(os.pread(fd, 256, 0).decode(errors="replace").strip())
            return (int(match.group(1)), match.group(2)) if match else (0, "unknown")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop_running_applier(layout: MirrorLayout, timeout: float = 60.0) -> int | None:
    """SIGTERM the applier holding the mirror and wait for the lock; its pid, or None if none ran."""
    holder = _holder(layout)
    if holder is None:
        return None
    pid, purpose = holder
    if purpose != APPLIER_PURPOSE or pid <= 0:
        raise MirrorLockedError(
            f"the mirror of volume {layout.volume!r} at site {layout.site!r} is held by pid {pid} "
            f"({purpose}), not by an applier; wait for it to finish"
        )
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _holder(layout) is not None:
        if time.monotonic() > deadline:
            raise MirrorLockedError(
                f"the applier of volume {layout.volume!r} (pid {pid}) did not stop within {timeout:.0f} s; "
                "stop it, then run failover again"
            )
        time.sleep(0.2)
    return pid
