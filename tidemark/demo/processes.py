"""Child processes of the demo: each in its own process group, stopped for sure at the end.

Children run in a new session, so Ctrl-C in the terminal reaches only the demo, which then
stops them in order (SIGTERM to the group, SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .exceptions import DemoError

STOP_GRACE_S = 20.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the small race with other programs is acceptable here)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Supervisor:
    """Starts `tidemark` sub-commands and other programs; `stop_all` ends every one of them."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.children: dict[str, Child] = {}

    def tidemark_command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tidemark.cli", *args]

    def start(self, name: str, command: Sequence[str]) -> Child:
        if name in self.children:
            raise DemoError(f"process {name!r} already runs")
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(command), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, start_new_session=True,
            )  # fmt: skip
        child = Child(name, process, log)
        self.children[name] = child
        return child

    def require_running(self, name: str) -> None:
        child = self.children[name]
        code = child.process.poll()
        if code is not None:
            tail = child.log.read_text(errors="replace")[-2000:]
            raise DemoError(f"{name} exited with {code}; the end of {child.log}:\n{tail}")

    def stop(self, name: str) -> int | None:
        """SIGTERM to the child's group, SIGKILL after the grace period; returns its exit code."""
        child = self.children.pop(name, None)
        if child is None:
            return None
        process = child.process
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(5)
        _signal_group(process.pid, signal.SIGKILL)  # anything the child left in its group
        return process.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            self.stop(name)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
