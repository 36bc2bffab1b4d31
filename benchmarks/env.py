"""The broker, topics, volumes and helper processes every figure runs against.

A local broker (`LocalBroker`, state under a temp folder) is started for the run unless
TIDEMARK_BOOTSTRAP names a cluster. Each figure gets its own uuid topic prefix (created with
`ensure_topics`, deleted afterwards) and its own state directory, so nothing is shared between
figures but the broker.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topic_admin import ensure_topics
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec, publish_volume
from tidemark.localkafka import LocalCluster as LocalBroker

MIB = 1 << 20
GIB = 1 << 30


@dataclass
class Stage:
    """One figure's corner of the broker: a topic prefix, a state directory, clients."""

    root: Path
    settings: Settings
    clients: KafkaClients
    topics: Topics

    def register(self, name: str, size: int, block_size: int = 4096) -> VolumeSpec:
        spec = VolumeSpec(name=name, size=size, block_size=block_size)
        publish_volume(self.clients, self.topics, spec)
        return spec

    def cli_env(self) -> dict[str, str]:
        """Environment to run the `tidemark` CLI against this stage's broker, prefix and state."""
        env = dict(os.environ)
        env.update(
            TIDEMARK_BOOTSTRAP=self.clients.bootstrap,
            TIDEMARK_STATE_DIR=str(self.settings.state_dir),
            TIDEMARK_TOPIC_PREFIX=self.settings.topic_prefix,
        )
        return env

    def cli(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """`tidemark ARGS...` as a child process (output to `log`)."""
        with open(log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "tidemark.cli", *args],
                env=self.cli_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip


class BenchEnv:
    """The run's broker and temp folder; `stage()` hands each figure a fresh prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.anchors: dict[str, float] = {}  # anchors one figure measures and a later one reuses
        self.external = os.environ.get("TIDEMARK_BOOTSTRAP")
        base = Settings(state_dir=root / "broker")
        self.kafka_version = base.kafka_version
        self.kafka_cache = base.kafka_cache
        self._broker: LocalBroker | None = None
        self.data_dir: Path | None = None  # the broker's log directories, when the run started it
        if self.external:
            self.bootstrap = self.external
            self.kafka_label = f"external cluster at {self.external} (tools {self.kafka_version})"
        else:
            self._broker = LocalBroker(base)
            status = self._broker.start()
            assert status.bootstrap is not None
            self.bootstrap = status.bootstrap
            self.data_dir = Path(status.data_dir) if status.data_dir else None
            self.kafka_label = f"{self.kafka_version} (local single-node KRaft broker, started by the run)"

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        root = self.root / name
        root.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            state_dir=root / "state", topic_prefix=f"bench-{name}-{uuid.uuid4().hex[:10]}",
            kafka_cache=self.kafka_cache, kafka_version=self.kafka_version,
        )  # fmt: skip
        clients = KafkaClients(settings, KafkaSettings(bootstrap=self.bootstrap), self.bootstrap)
        topics = Topics(settings.topic_prefix)
        ensure_topics(clients, topics, settings)
        try:
            yield Stage(root, settings, clients, topics)
        finally:
            self._drop_topics(clients, settings.topic_prefix)

    @staticmethod
    def _drop_topics(clients: KafkaClients, prefix: str) -> None:
        """Free the broker's disk (and an external cluster's topic list) after each figure."""
        admin = clients.admin()
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                with suppress(KafkaException, TimeoutError):  # a topic already gone (or slow to go) is fine
                    future.result(timeout=35)

    def close(self) -> None:
        if self._broker is not None:
            self._broker.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def random_image(path: Path, size: int, seed: int = 7) -> Path:
    """A file of `size` random bytes (incompressible, no holes)."""
    import random

    rng = random.Random(seed)
    chunk = 8 * MIB
    with open(path, "wb") as handle:
        for offset in range(0, size, chunk):
            handle.write(rng.randbytes(min(chunk, size - offset)))
    return path


def sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path
