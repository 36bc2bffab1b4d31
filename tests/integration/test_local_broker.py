"""`tidemark kafka start | status | stop` manage a broker of their own (not the session's)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tidemark.core.settings import Settings
from tidemark.core.topics import Topics
from tidemark.localkafka import LocalCluster
from tidemark.localkafka.ports import free_port

pytestmark = pytest.mark.integration

Run = Callable[..., "subprocess.CompletedProcess[str]"]


def _broker_processes(marker: Path) -> list[int]:
    """Live (not zombie) processes whose command line names this state directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if str(marker).encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[Run, Path, int]]:
    """A CLI runner for a broker with its own state dir and port; stopped whatever happens."""
    state_dir = tmp_path / "own-state"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")}
    env |= {
        "TIDEMARK_STATE_DIR": str(state_dir),
        "TIDEMARK_KAFKA_PORT": str(port),
        "TIDEMARK_TOPIC_PREFIX": "own",
    }
    if "TIDEMARK_KAFKA_CACHE" in os.environ:
        env["TIDEMARK_KAFKA_CACHE"] = os.environ["TIDEMARK_KAFKA_CACHE"]

    def run(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tidemark.cli", *args], env=env | (extra or {}), cwd=tmp_path, check=False,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    yield run, state_dir, port
    LocalCluster(Settings(state_dir=state_dir)).stop()


def test_start_twice_status_stop_leaves_no_process(own_broker: tuple[Run, Path, int]) -> None:
    run, state_dir, port = own_broker
    bootstrap_file = state_dir / "kafka" / "bootstrap"

    before = run("kafka", "status")
    assert before.returncode == 3, before.stdout + before.stderr
    assert "not running" in before.stdout

    first = run("kafka", "start")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"bootstrap: 127.0.0.1:{port}" in first.stdout
    assert bootstrap_file.read_text().strip() == f"127.0.0.1:{port}"
    pids = _broker_processes(state_dir)
    assert len(pids) == 1

    second = run("kafka", "start")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already running" in second.stdout
    assert f"pid:       {pids[0]}" in second.stdout
    assert _broker_processes(state_dir) == pids

    status = run("kafka", "status")
    assert status.returncode == 0
    assert "running" in status.stdout and f"127.0.0.1:{port}" in status.stdout
    assert str(state_dir / "kafka" / "data") in status.stdout

    created = run("topics", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"bootstrap: 127.0.0.1:{port}" in created.stdout

    stopped = run("kafka", "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped" in stopped.stdout
    assert _broker_processes(state_dir) == []
    assert not bootstrap_file.exists()
    assert run("kafka", "status").returncode == 3

    again = run("kafka", "stop")
    assert again.returncode == 0 and "not running" in again.stdout


def test_restart_keeps_port_and_data(own_broker: tuple[Run, Path, int]) -> None:
    run, state_dir, port = own_broker
    assert run("kafka", "start").returncode == 0
    assert run("topics", "create").returncode == 0
    assert run("kafka", "stop").returncode == 0

    # The port was persisted at first start: no TIDEMARK_KAFKA_PORT needed to get it back.
    restarted = run("kafka", "start", extra={"TIDEMARK_KAFKA_PORT": ""})
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert f"bootstrap: 127.0.0.1:{port}" in restarted.stdout
    listed = run("topics", "list")
    assert listed.returncode == 0, listed.stderr
    assert "own.writes" in listed.stdout and "own.volumes" in listed.stdout
    assert run("kafka", "stop").returncode == 0
    assert _broker_processes(state_dir) == []


def test_a_named_cluster_starts_nothing(own_broker: tuple[Run, Path, int]) -> None:
    run, state_dir, _ = own_broker
    result = run("kafka", "start", extra={"TIDEMARK_BOOTSTRAP": "kafka.example:9092"})
    assert result.returncode == 0, result.stderr
    assert "using the Kafka cluster at kafka.example:9092" in result.stdout
    assert not (state_dir / "kafka").exists()
    assert _broker_processes(state_dir) == []


def test_a_killed_broker_restarts_on_the_same_port_with_its_data(local_broker: LocalCluster) -> None:
    """kill -9 (no clean shutdown), then start again: same address, topics still there."""
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = local_broker.status().bootstrap
    assert bootstrap is not None
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("survivor", num_partitions=1, replication_factor=1)])["survivor"].result(30)
    pid = local_broker.status().pid
    assert pid is not None
    assert local_broker.kill() is True
    assert local_broker.status().running is False
    assert not Path(f"/proc/{pid}").exists() or _broker_processes(local_broker.home) == []

    restarted = local_broker.start()
    assert restarted.bootstrap == bootstrap and restarted.pid != pid
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
    assert "survivor" in topics


def test_start_with_another_port_reports_the_running_broker(local_broker: LocalCluster) -> None:
    running = local_broker.status()
    again = LocalCluster(local_broker.settings, port=free_port()).start()
    assert again.already_running and again.pid == running.pid and again.bootstrap == running.bootstrap


def test_three_nodes_replicate_survive_one_kill_and_stop(own_broker: tuple[Run, Path, int]) -> None:
    """`kafka start --brokers 3`: three JVMs, topics on three replicas with two in sync, writes
    acknowledged by all in-sync replicas while one node is killed, the node back, all stopped."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    run, state_dir, port = own_broker
    started = run("kafka", "start", "--brokers", "3")
    assert started.returncode == 0, started.stdout + started.stderr
    assert len(_broker_processes(state_dir)) == 3
    bootstrap = (state_dir / "kafka" / "bootstrap").read_text().strip()
    assert bootstrap.startswith(f"127.0.0.1:{port},") and bootstrap.count(",") == 2
    status = run("kafka", "status")
    assert status.returncode == 0 and status.stdout.count("pid ") == 3, status.stdout

    created = run("topics", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stdout.count("replicas=3") == len(Topics("own").all()), created.stdout
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60  # a loaded cluster may list a new topic before its partitions
    while not (partitions := admin.list_topics("own.writes", timeout=30).topics["own.writes"].partitions):
        assert time.monotonic() < deadline, "own.writes has no partitions in the metadata after 60 s"
        time.sleep(0.5)
    assert {len(p.replicas) for p in partitions.values()} == {3}
    resource = ConfigResource(ResourceType.TOPIC, "own.writes")
    config = admin.describe_configs([resource])[resource].result(timeout=30)
    assert config["min.insync.replicas"].value == "2"
    assert config["message.timestamp.type"].value == "LogAppendTime"

    cluster = LocalCluster(Settings(state_dir=state_dir))
    assert cluster.brokers == 3
    assert cluster.kill(2) is True
    assert len(_broker_processes(state_dir)) == 2
    degraded = run("kafka", "status")
    assert degraded.returncode == 3 and "node 2:    not running" in degraded.stdout, degraded.stdout
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for number in range(20):
        producer.produce("own.writes", key=b"vm", value=b"%d" % number)
    assert producer.flush(60) == 0

    restarted = run("kafka", "start")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert len(_broker_processes(state_dir)) == 3
    stopped = run("kafka", "stop")
    assert stopped.returncode == 0 and _broker_processes(state_dir) == []
