"""Detached processes through /proc: spawned, recognised by their command line, signalled, reaped."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tidemark.localkafka import processes


def test_a_spawned_process_is_seen_signalled_and_reaped(tmp_path: Path) -> None:
    pid = processes.spawn(["sleep", "30"], tmp_path, tmp_path / "console.log")
    assert processes.command_line(pid)[:2] == [b"sleep", b"30"]
    assert processes.process_state(pid) in ("R", "S")
    assert not processes.exited(pid)
    processes.send(pid, signal.SIGTERM)
    assert processes.wait_gone([pid], 10.0)
    assert processes.process_state(pid) is None, "our child was reaped, no zombie left"
    assert processes.command_line(pid) == []


def test_a_process_that_ignores_sigterm_outlives_the_wait(tmp_path: Path) -> None:
    ready = tmp_path / "trapped"
    script = f"trap '' TERM; touch {ready}; sleep 30"
    pid = processes.spawn(["sh", "-c", script], tmp_path, tmp_path / "console.log")
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        processes.send(pid, signal.SIGTERM)
        assert not processes.wait_gone([pid], 0.5)
    finally:
        processes.send(pid, signal.SIGKILL)
        assert processes.wait_gone([pid], 10.0)


def test_a_pid_that_is_gone() -> None:
    gone = 2**22 + 1  # above the default pid_max
    assert processes.exited(gone) and processes.process_state(gone) is None
    processes.send(gone, signal.SIGTERM)  # no error for a pid that is gone


def test_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert processes.tail(tmp_path / "missing.log") == ""
    (tmp_path / "some.log").write_text("".join(f"line {n}\n" for n in range(30)))
    assert processes.tail(tmp_path / "some.log", 2) == "line 28\nline 29"
