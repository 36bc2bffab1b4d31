"""The pipeline under fault: its own broker, and each stage a `tidemark` process that can be killed.

`FaultCluster` is the `tm` fixture's counterpart for a broker of the test's own (the `local_broker`
fixture): settings, clients, topics and a CLI environment, so restarting or killing that broker
never disturbs the session's. `Component` is one restartable `tidemark` command whose output goes
to numbered log files; `Stack` holds the tracker, the processor and the mirror of one volume and
restarts whichever of them is not running (a supervisor's job, like systemd's Restart=always).
Every process is stopped by its own pid.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroaring import BitMap

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topic_admin import ensure_topics
from tidemark.core.topics import Topics
from tidemark.localkafka import LocalCluster
from tidemark.sinks.manifests import recovery_points
from tidemark.sinks.status import latest_statuses

STOP_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120.0
_NBD_URL = re.compile(r"nbd://127\.0\.0\.1:(\d+)/")


@dataclass
class FaultCluster:
    broker: LocalCluster
    bootstrap: str
    settings: Settings
    clients: KafkaClients
    topics: Topics
    env: dict[str, str]

    @classmethod
    def on(cls, broker: LocalCluster, state_dir: Path) -> FaultCluster:
        bootstrap = broker.status().bootstrap
        assert bootstrap is not None, "the fault test's broker is not running"
        state_dir.mkdir(parents=True, exist_ok=True)
        settings = Settings(state_dir=state_dir, topic_prefix=f"f{uuid.uuid4().hex[:12]}")
        clients = KafkaClients(settings, KafkaSettings(bootstrap=bootstrap))
        topics = Topics(settings.topic_prefix)
        ensure_topics(clients, topics, settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")}
        env |= {
            "TIDEMARK_BOOTSTRAP": bootstrap,
            "TIDEMARK_TOPIC_PREFIX": settings.topic_prefix,
            "TIDEMARK_STATE_DIR": str(state_dir),
            "TIDEMARK_KAFKA_CACHE": str(settings.kafka_cache),
        }
        return cls(broker, bootstrap, settings, clients, topics, env)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "tidemark.cli", *args], env=self.env, capture_output=True, text=True,
            timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"`tidemark {' '.join(args)}` exited {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done


class Component:
    """One `tidemark ARGS...` process at a time; each run logs to `<logs>/<name>-<run>.{out,err}`."""

    def __init__(self, cluster: FaultCluster, name: str, args: Sequence[str], logs: Path) -> None:
        self.cluster, self.name, self.args, self.logs = cluster, name, list(args), logs
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        logs.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        assert not self.alive(), f"{self.name} already runs"
        self.runs += 1
        command = [sys.executable, "-m", "tidemark.cli", *self.args]
        with self._path("out").open("wb") as out, self._path("err").open("wb") as err:
            self.process = subprocess.Popen(
                command, env=self.cluster.env, cwd=self.logs, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    def _path(self, stream: str) -> Path:
        return self.logs / f"{self.name}-{self.runs}.{stream}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self, tail: int = 3000) -> str:
        parts = []
        for run in range(max(1, self.runs - 1), self.runs + 1):
            for stream in ("out", "err"):
                path = self.logs / f"{self.name}-{run}.{stream}"
                if path.exists():
                    parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)


class TrackerComponent(Component):
    """`tidemark track nbd` on a free port; `uri` once it printed its address."""

    def __init__(self, cluster: FaultCluster, volume: str, image: Path, logs: Path, *extra: str) -> None:
        args = ["track", "nbd", "--volume", volume, "--image", str(image), "--listen", "127.0.0.1:0", *extra]
        super().__init__(cluster, "tracker", args, logs)
        self.volume = volume
        self._uri: str | None = None

    def start(self) -> None:
        self._uri = None
        super().start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            printed = self._path("out").read_text(errors="replace") + self._path("err").read_text(errors="replace")
            found = _NBD_URL.search(printed)
            if found:
                self._uri = f"nbd://127.0.0.1:{found[1]}/{self.volume}"
                return
            assert self.alive(), f"the tracker exited before serving\n{self.output()}"
            assert time.monotonic() < deadline, f"the tracker did not serve in {READY_TIMEOUT_S} s\n{self.output()}"
            time.sleep(0.05)

    def uri(self) -> str | None:
        return self._uri if self.alive() else None

    def kill(self) -> None:
        self._uri = None
        super().kill()

    def dirty_blocks(self) -> BitMap:
        """The tracker's pending resync set: its durable dirty bitmap, as on disk."""
        path = self.cluster.settings.volume_state_dir("trackers", self.volume) / "dirty.bitmap"
        raw = path.read_bytes() if path.exists() else b""
        return BitMap.deserialize(raw) if raw else BitMap()


class Stack:
    """Tracker, processor and mirror of one volume; `revive()` restarts whichever is down."""

    def __init__(self, cluster: FaultCluster, volume: str, size: int, root: Path, tracker_args: Sequence[str]) -> None:
        self.cluster, self.volume = cluster, volume
        self.image, self.mirror_path, logs = root / "source.img", root / "mirror.img", root / "logs"
        cluster.cli("volume", "add", volume, "--size", str(size))
        with self.image.open("wb") as handle:
            handle.truncate(size)
        self.tracker = TrackerComponent(cluster, volume, self.image, logs, *tracker_args)
        # No periodic recovery points: each one the test checks is one it asked for.
        process_args = ["process", "--subinterval", "0.5", "--rp-interval", "3600", "--tick-interval", "0.2"]
        self.processor = Component(cluster, "processor", process_args, logs)
        mirror_args = ["mirror", "--volume", volume, "--path", str(self.mirror_path)]
        self.mirror = Component(cluster, "mirror", mirror_args, logs)
        self.unexpected_exits: dict[str, int] = {}

    @property
    def components(self) -> dict[str, Component]:
        return {"tracker": self.tracker, "processor": self.processor, "mirror": self.mirror}

    def start(self) -> None:
        for component in self.components.values():
            component.start()

    def revive(self) -> list[str]:
        """Start every component that is not running; returns the names of those that had exited."""
        restarted = []
        for name, component in self.components.items():
            if not component.alive():
                if component.process is not None and component.process.returncode != -signal.SIGKILL:
                    self.unexpected_exits[name] = self.unexpected_exits.get(name, 0) + 1
                restarted.append(name)
                component.start()
        return restarted

    def close(self) -> None:
        for component in reversed(self.components.values()):
            component.stop()

    def logs(self) -> str:
        return "\n".join(component.output() for component in self.components.values())

    # -- public signals ------------------------------------------------------------------------
    def manifests(self) -> dict[int, dict[str, Any]]:
        return recovery_points(self.cluster.clients, self.cluster.topics, self.volume)

    def status(self) -> dict[str, Any] | None:
        return latest_statuses(self.cluster.clients, self.cluster.topics, self.volume).get("default")


@contextmanager
def local_ack_stack(broker: LocalCluster, root: Path, volume: str, size: int) -> Iterator[Stack]:
    """A Stack on `broker` whose tracker acknowledges locally and gives up on a silent link after
    3 s (the fio fault tests' setting); stopped on exit."""
    cluster = FaultCluster.on(broker, root / "state")
    made = Stack(cluster, volume, size, root, ["--ack", "local", "--delivery-timeout-ms", "3000"])
    try:
        yield made
    finally:
        made.close()
