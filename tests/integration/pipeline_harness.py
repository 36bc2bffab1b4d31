"""The whole pipeline as real processes: tracker, processor, mirror and mounts, for end-to-end tests.

`Pipeline` owns one volume and its source image, starts each stage as its own `tidemark`
subprocess (output to files under `logs`, so a failure shows every stage's log), and polls the
public signals between them: recovery point manifests (`rp create` labels) on the
recovery-points topic, MirrorStatus for what the mirror holds. Every process it starts is
stopped by `close()` (by its own pid), which the test's fixture finalizer calls.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.manifests import recovery_points
from tidemark.sinks.status import latest_statuses

from ..conftest import CliRunner, TidemarkTest
from .producers.nbd_harness import TrackerProcess, qemu_io

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
WAIT_S = 90.0
POLL_S = 0.25
SITE = "default"
_URL = re.compile(r"nbd://\S+")


class Service:
    """One `tidemark ARGS...` process; stdout and stderr go to `<logs>/<name>-<n>.{out,err}`."""

    def __init__(self, env: dict[str, str], name: str, args: Sequence[str], logs: Path) -> None:
        self.name = name
        logs.mkdir(parents=True, exist_ok=True)
        run = len(list(logs.glob(f"{name}-*.out")))
        self.stdout_path = logs / f"{name}-{run}.out"
        self.stderr_path = logs / f"{name}-{run}.err"
        command = [sys.executable, "-m", "tidemark.cli", *args]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                command, env=env, cwd=logs, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, tail: int = 4000) -> str:
        out = self.stdout_path.read_text(errors="replace")[-tail:]
        err = self.stderr_path.read_text(errors="replace")[-tail:]
        return f"--- {self.name} stdout\n{out}\n--- {self.name} stderr\n{err}"

    def wait_for_output(self, pattern: re.Pattern[str], timeout: float = READY_TIMEOUT_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.search(self.stdout_path.read_text(errors="replace"))
            if found:
                return found
            assert self.alive(), f"{self.name} exited {self.process.returncode}\n{self.output()}"
            assert time.monotonic() < deadline, f"{self.name}: no {pattern.pattern!r} in {timeout} s\n{self.output()}"
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM (a clean stop) and wait; returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or recorded."""
        if self.alive():
            self.process.kill()
        self.process.wait(STOP_TIMEOUT_S)


class Pipeline:
    """One volume through every stage: source image -> tracker -> processor -> mirror."""

    def __init__(self, tm: TidemarkTest, cli: CliRunner, root: Path, volume: str, size: int) -> None:
        self.tm, self.cli, self.volume = tm, cli, volume
        self.logs = root / "logs"
        self.image = root / "source.img"
        self.mirror = root / "mirror.img"
        self.tracker: TrackerProcess | None = None
        self.processor: Service | None = None
        self.applier: Service | None = None
        self._started: list[Service] = []
        self._trackers: list[TrackerProcess] = []
        cli("volume", "add", volume, "--size", str(size))
        with self.image.open("wb") as handle:
            handle.truncate(size)

    @property
    def layout(self) -> MirrorLayout:
        return MirrorLayout.of(self.tm.settings.state_dir, SITE, self.volume)

    # -- stages --------------------------------------------------------------------------------
    def start_tracker(self, *extra: str) -> TrackerProcess:
        self.tracker = TrackerProcess(self.tm.env, self.volume, self.image, self.logs, 0, *extra)
        self._trackers.append(self.tracker)
        return self.tracker

    def stop_tracker(self) -> None:
        assert self.tracker is not None
        assert self.tracker.stop() == 0, self.tracker.output()
        self.tracker = None

    def start_processor(self, *extra: str) -> Service:
        # No periodic points: every recovery point of these tests is one they asked for.
        args = ["process", "--subinterval", "0.5", "--rp-interval", "3600", "--tick-interval", "0.2", *extra]
        self.processor = self.service("processor", args)
        return self.processor

    def start_mirror(self) -> Service:
        self.applier = self.service("mirror", ["mirror", "--volume", self.volume, "--path", str(self.mirror)])
        return self.applier

    def stop_mirror(self) -> str:
        """SIGTERM the applier; returns its summary line."""
        assert self.applier is not None
        code = self.applier.stop()
        assert code == 0, f"the applier exited {code}\n{self.applier.output()}"
        out = self.applier.stdout_path.read_text()
        self.applier = None
        return out

    def mirror_stopped_by_another(self) -> None:
        """The applier was stopped by another command (`failover --stop-applier`): reap it."""
        assert self.applier is not None
        code = self.applier.process.wait(STOP_TIMEOUT_S)
        assert code == 0, f"the applier exited {code}\n{self.applier.output()}"
        self.applier = None

    def kill_mirror(self) -> None:
        assert self.applier is not None
        self.applier.kill()
        self.applier = None

    def applied_changeset(self) -> int:
        """The last change set the mirror recorded as applied (its progress file); 0 for none."""
        try:
            return int(json.loads(self.layout.progress.read_text())["changeset_id"])
        except (OSError, ValueError, KeyError):
            return 0

    def service(self, name: str, args: Sequence[str]) -> Service:
        started = Service(self.tm.env, name, args, self.logs)
        self._started.append(started)
        return started

    @contextmanager
    def mounted(self, *args: str) -> Iterator[str]:
        """`tidemark mount --volume V ARGS` while the block runs; yields its nbd:// URL."""
        mount = self.service("mount", ["mount", "--volume", self.volume, *args, "--listen", "127.0.0.1:0"])
        try:
            yield mount.wait_for_output(_URL).group(0)
        finally:
            code = mount.stop()
            assert code == 0, f"mount exited {code}\n{mount.output()}"

    def close(self) -> None:
        """Stop every process this pipeline started that still runs (finalizer)."""
        for service in reversed(self._started):
            try:
                service.stop()
            except subprocess.TimeoutExpired:
                service.kill()
        for tracker in self._trackers:
            tracker.kill()

    def logs_text(self) -> str:
        parts = [s.output() for s in self._started] + [t.output() for t in self._trackers]
        return "\n".join(parts)

    # -- writing and cutting -------------------------------------------------------------------
    def write(self, commands: Sequence[str]) -> None:
        assert self.tracker is not None
        qemu_io(self.tracker.uri, commands)

    def copy_source(self, name: str) -> Path:
        """The source image as it is now (the tracker has written every acknowledged write)."""
        copy = self.image.with_name(name)
        shutil.copyfile(self.image, copy)
        return copy

    def cut(self, label: str) -> int:
        """`tidemark rp create --label` and wait for the processor's manifest; its rp_id."""
        self.cli("rp", "create", "--volume", self.volume, "--label", label)
        found: list[int] = []

        def published() -> bool:
            found[:] = [rp for rp, m in self.manifests().items() if m["label"] == label]
            return bool(found)

        self.wait(published, f"the manifest of recovery point {label!r}")
        return found[0]

    def manifests(self) -> dict[int, dict[str, Any]]:
        return recovery_points(self.tm.clients, self.tm.topics, self.volume)

    def status(self) -> dict[str, Any] | None:
        return latest_statuses(self.tm.clients, self.tm.topics, self.volume).get(SITE)

    def wait_held(self, rp_id: int) -> dict[str, Any]:
        """Until the mirror's MirrorStatus says it holds rp_id; fails fast on an ERROR state."""
        seen: list[dict[str, Any]] = []

        def held() -> bool:
            status = self.status()
            if status is None:
                return False
            seen[:] = [status]
            assert status["state"] != "ERROR", f"mirror in ERROR: {status['message']}\n{self.logs_text()}"
            return status["rp_id"] is not None and status["rp_id"] >= rp_id

        self.wait(held, f"the mirror holding recovery point {rp_id}")
        return seen[0]

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = WAIT_S, interval: float = POLL_S) -> None:
        """Poll `condition`; fail with every stage's log on timeout or when a stage died."""
        deadline = time.monotonic() + timeout
        while not condition():
            for stage in (self.processor, self.applier):
                if stage is not None and not stage.alive():
                    raise AssertionError(f"{stage.name} exited waiting for {what}\n{self.logs_text()}")
            if self.tracker is not None and self.tracker.process.poll() is not None:
                raise AssertionError(f"the tracker exited waiting for {what}\n{self.logs_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s\n{self.logs_text()}")
            time.sleep(interval)


_SUFFIX = {"": 1, "k": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def qemu_size(text: str) -> int:
    """A qemu-io size or offset: bytes, or with a k/M/G suffix."""
    found = re.fullmatch(r"(\d+)([kMG]?)", text)
    assert found, f"not a qemu-io size: {text!r}"
    return int(found.group(1)) * _SUFFIX[found.group(2)]


def blocks_of(commands: Sequence[str], block_size: int) -> set[int]:
    """Blocks touched by qemu-io `write [-P n|-z] OFFSET LENGTH` and `discard OFFSET LENGTH`."""
    touched: set[int] = set()
    for command in commands:
        words = command.split()
        if words[0] not in ("write", "discard"):
            continue
        offset, length = qemu_size(words[-2]), qemu_size(words[-1])
        touched.update(range(offset // block_size, -(-(offset + length) // block_size)))
    return touched


def differing_blocks(a: bytes, b: bytes, block_size: int) -> set[int]:
    assert len(a) == len(b), f"sizes differ: {len(a)} vs {len(b)}"
    return {i // block_size for i in range(0, len(a), block_size) if a[i : i + block_size] != b[i : i + block_size]}
