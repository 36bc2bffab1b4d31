"""Shared fixtures: one real Kafka broker per session, uuid-named topics per test.

`kafka_bootstrap` (session) is, in order of preference:
1. the cluster named by `TIDEMARK_BOOTSTRAP`;
2. a testcontainers Kafka (KRaft) when a Docker engine answers;
3. the local Maven-assembled cluster (`tidemark.localkafka.LocalCluster`) of `TIDEMARK_TEST_BROKERS`
   nodes (default 1), started once for the session with its state under a session tmp dir, and
   stopped at the end.

`local_broker` (function) is a cluster of the test's own, of the same size, for tests that stop,
kill or restart brokers.

`tm` (function) gives each test its own topic prefix, state directory and clients; `cli` runs the
`tidemark` command as a subprocess against the same broker, prefix and state directory.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topic_admin import ensure_topics
from tidemark.core.topics import Topics
from tidemark.localkafka import LocalCluster

CLI_TIMEOUT_S = 180.0
TEST_BROKERS = 1
"""Nodes of the clusters the tests start, unless `TIDEMARK_TEST_BROKERS` says otherwise."""


def cluster_size() -> int:
    return int(os.environ.get("TIDEMARK_TEST_BROKERS") or TEST_BROKERS)


# No wall-clock deadlines: a slow CI machine must not fail a correct property.
hypothesis_settings.register_profile("tidemark", deadline=None, print_blob=True)
hypothesis_settings.load_profile("tidemark")


def _start_container() -> tuple[Any, str] | None:
    """A KRaft Kafka container, or None when there is no Docker engine (or no testcontainers)."""
    with warnings.catch_warnings():
        # A failed Docker probe leaves its socket to the garbage collector; that is not a leak of ours.
        warnings.simplefilter("ignore", ResourceWarning)
        started = _try_container()
        gc.collect()
    return started


def _try_container() -> tuple[Any, str] | None:
    try:
        try:
            from testcontainers.community.kafka import KafkaContainer
        except ImportError:  # testcontainers before the `community` split
            from testcontainers.kafka import KafkaContainer

        container = KafkaContainer().with_kraft()
        container.with_env("KAFKA_MESSAGE_MAX_BYTES", str(Settings().message_max_bytes))
        container.start()
    except Exception:  # no Docker engine, no image, no network: fall through to the local broker
        return None
    return container, container.get_bootstrap_server()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a real Kafka broker for the whole session."""
    named = os.environ.get("TIDEMARK_BOOTSTRAP")
    if named:
        yield named
        return
    started = _start_container()
    if started is not None:
        container, bootstrap = started
        try:
            yield bootstrap
        finally:
            container.stop()
        return
    broker = LocalCluster(Settings(state_dir=tmp_path_factory.mktemp("session-broker")), brokers=cluster_size())
    status = broker.start()
    assert status.bootstrap is not None
    try:
        yield status.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def local_broker(tmp_path: Path) -> Iterator[LocalCluster]:
    """A started cluster of this test's own (state dir and ports, `TIDEMARK_TEST_BROKERS` nodes),
    for fault tests that stop, kill or restart brokers without disturbing the session's. Stopped
    at teardown."""
    broker = LocalCluster(Settings(state_dir=tmp_path / "own-broker"), brokers=cluster_size())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class TidemarkTest:
    """Everything one test needs to talk to the session broker without meeting other tests."""

    settings: Settings
    kafka: KafkaSettings
    clients: KafkaClients
    topics: Topics
    env: dict[str, str]
    """The full environment for a `tidemark` subprocess (os.environ + this test's TIDEMARK_*)."""

    @property
    def prefix(self) -> str:
        return self.topics.prefix

    def group(self, name: str = "group") -> str:
        """A consumer group id no other test uses."""
        return f"{self.prefix}.{name}.{uuid.uuid4().hex[:8]}"


def _delete_topics(clients: KafkaClients, prefix: str) -> None:
    """Best effort: keep a long session's broker small. Failures here never fail a test."""
    with contextlib.suppress(Exception):
        admin = clients.admin()
        names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=10).values():
                with contextlib.suppress(Exception):
                    future.result(timeout=15)


@pytest.fixture
def tm(kafka_bootstrap: str, tmp_path: Path) -> Iterator[TidemarkTest]:
    """A uuid topic prefix with every topic created, a tmp state dir, clients and a CLI env."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    settings = Settings(state_dir=state_dir, topic_prefix=prefix)
    kafka = KafkaSettings(bootstrap=kafka_bootstrap)
    clients = KafkaClients(settings, kafka)
    topics = Topics(prefix)
    ensure_topics(clients, topics, settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")}
    env |= {
        "TIDEMARK_BOOTSTRAP": kafka_bootstrap,
        "TIDEMARK_TOPIC_PREFIX": prefix,
        "TIDEMARK_STATE_DIR": str(state_dir),
        "TIDEMARK_KAFKA_CACHE": str(settings.kafka_cache),
    }
    yield TidemarkTest(settings, kafka, clients, topics, env)
    _delete_topics(clients, prefix)


CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def cli(tm: TidemarkTest, tmp_path: Path) -> CliRunner:
    """Run `python -m tidemark.cli ARGS...` with `tm.env` in tmp_path; returns the CompletedProcess.

    By default a non-zero exit fails the test with the command's output; pass `check=False` to
    inspect failures. `env` entries are added to `tm.env`.
    """

    def run(
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = CLI_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tidemark.cli", *args]
        stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        result = subprocess.run(
            command, check=False, env=tm.env | (env or {}), cwd=tmp_path, capture_output=True, text=True,
            timeout=timeout, **stdin,
        )  # fmt: skip
        if check and result.returncode != 0:
            pytest.fail(
                f"`tidemark {' '.join(args)}` exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    return run
