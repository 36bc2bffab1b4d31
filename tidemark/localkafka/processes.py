"""Detached JVMs seen through /proc: spawn, recognise, signal, wait until every thread is gone.

Processes spawned here run in their own session, so they outlive the command that launched them.
They are kept in `_children` so they are reaped (no zombie) whichever object stops them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

# Processes started by this Python process, kept so they are reaped and never garbage-collected
# while running.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(command: list[str], cwd: Path, console: Path) -> int:
    """Start `command` in its own session, stdout and stderr appended to `console`; its pid."""
    with open(console, "ab") as output:
        process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )  # fmt: skip
    _children[process.pid] = process
    return process.pid


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` ('R', 'S', 'Z', ...), or None if there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[-1].split()[0]


def command_line(pid: int) -> list[bytes]:
    """The arguments of a live (not zombie) `pid`, [] if it is gone or not readable."""
    state = process_state(pid)
    if state is None or state in ("Z", "X"):
        return []
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if not cmdline:  # a process in the middle of exec shows no command line yet
            time.sleep(0.2)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return cmdline.split(b"\0")


def exited(pid: int) -> bool:
    """Whether every thread of `pid` is gone (its sockets and files are closed).

    A JVM's main thread can be a zombie while its other threads still exit and hold the listening
    socket, so a 'Z' state alone is not enough: our own child is waited for, any other process
    must have no thread left but the zombie leader.
    """
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return False
        del _children[pid]
        return True
    state = process_state(pid)
    if state is None:
        return True
    if state not in ("Z", "X"):
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Until every one of `pids` has exited; False when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if all(exited(pid) for pid in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
