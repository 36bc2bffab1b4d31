"""Make a running `tidemark mirror` let go of one mirror: its pid is in the mirror's lock file.

The process may serve many volumes: the request is the mirror's `release` file, which the site
loop sees within a poll; it lets go of that volume only (the half-received set is dropped, the
progress file says where to resume), releases its lock and keeps serving the others (a process
left with no volume exits). Only a lock holder that says it applies change sets is asked.
"""

from __future__ import annotations

import os
import re
import time

from tidemark.core.image_io import FileLockedError, lock

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
            lock(fd, layout.lock, names_holder=True)
        except FileLockedError as exc:
            match = _HOLDER.match(exc.holder)
            return (int(match.group(1)), match.group(2)) if match else (0, "unknown")
        return None
    finally:
        os.close(fd)


def stop_running_applier(layout: MirrorLayout, timeout: float = 60.0) -> int | None:
    """Ask the applier holding the mirror to let it go and wait for the lock; its pid, or None."""
    holder = _holder(layout)
    if holder is None:
        return None
    pid, purpose = holder
    if purpose != APPLIER_PURPOSE or pid <= 0:
        raise MirrorLockedError(
            f"the mirror of volume {layout.volume!r} at site {layout.site!r} is held by pid {pid} "
            f"({purpose}), not by an applier; wait for it to finish"
        )
    layout.release.touch()
    try:
        deadline = time.monotonic() + timeout
        while _holder(layout) is not None:
            if time.monotonic() > deadline:
                raise MirrorLockedError(
                    f"the applier of volume {layout.volume!r} (pid {pid}) did not let the mirror go "
                    f"within {timeout:.0f} s; stop it, then run failover again"
                )
            time.sleep(0.2)
    finally:
        layout.release.unlink(missing_ok=True)
    return pid
