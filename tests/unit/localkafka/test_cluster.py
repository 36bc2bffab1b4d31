"""The local cluster's pieces that need no JVM: tool checks, cluster ids, the pom, settings, pid files."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tidemark.core.exceptions import LocalBrokerError
from tidemark.core.settings import Settings
from tidemark.exceptions import ConfigurationError
from tidemark.localkafka import LocalCluster
from tidemark.localkafka.config import new_cluster_id
from tidemark.localkafka.distribution import pom_for
from tidemark.localkafka.ports import NodePorts, write_ports


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    broker = LocalCluster(Settings(state_dir=tmp_path / "state", kafka_cache=tmp_path / "cache"))
    with pytest.raises(LocalBrokerError, match="apt-get install openjdk-17-jre-headless maven"):
        broker.start()
    assert broker.status().running is False


def test_missing_maven_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_java = bin_dir / "java"
    fake_java.write_text("#!/bin/sh\nexit 1\n")
    fake_java.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    broker = LocalCluster(Settings(state_dir=tmp_path / "state", kafka_cache=tmp_path / "cache"))
    with pytest.raises(LocalBrokerError, match="`mvn` not found"):
        broker.start()


def test_cluster_ids_are_kafka_uuids() -> None:
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_pom_names_the_broker_and_a_logging_backend() -> None:
    pom = pom_for("3.9.1")
    assert "<artifactId>kafka_2.13</artifactId><version>3.9.1</version>" in pom
    assert "<artifactId>slf4j-reload4j</artifactId>" in pom
    assert "<artifactId>reload4j</artifactId>" in pom


def test_a_bad_port_variable_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIDEMARK_KAFKA_PORT", "ninety-two")
    with pytest.raises(ConfigurationError, match="TIDEMARK_KAFKA_PORT"):
        LocalCluster(Settings(state_dir=tmp_path))


@pytest.mark.parametrize("count", ["0", "4", "three"])
def test_a_bad_broker_count_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, count: str
) -> None:
    monkeypatch.setenv("TIDEMARK_KAFKA_BROKERS", count)
    with pytest.raises(ConfigurationError, match="TIDEMARK_KAFKA_BROKERS"):
        LocalCluster(Settings(state_dir=tmp_path))


def test_status_of_a_fresh_state_dir(tmp_path: Path) -> None:
    status = LocalCluster(Settings(state_dir=tmp_path / "state")).status()
    assert status.running is False and status.pid is None and status.bootstrap is None
    assert status.data_dir == (tmp_path / "state" / "kafka" / "data").resolve()


def test_the_node_count_comes_from_the_recorded_ports(tmp_path: Path) -> None:
    """A stopped three-node cluster is still three nodes for `stop` and `status` without --brokers."""
    cluster = LocalCluster(Settings(state_dir=tmp_path), brokers=3)
    cluster.home.mkdir(parents=True)
    write_ports(cluster.ports_file, [NodePorts(19500 + n, 19510 + n) for n in range(3)])
    again = LocalCluster(Settings(state_dir=tmp_path))
    assert again.brokers == 3
    assert [node.home for node in again.nodes] == [again.home, again.home / "node-2", again.home / "node-3"]
    assert again.status().pids == (None, None, None)


def test_a_formatted_cluster_keeps_its_node_count(tmp_path: Path) -> None:
    cluster = LocalCluster(Settings(state_dir=tmp_path / "state", kafka_cache=tmp_path / "cache"))
    cluster.home.mkdir(parents=True)
    write_ports(cluster.ports_file, [NodePorts(19500, 19510)])
    cluster.data_dir.mkdir(parents=True)
    (cluster.data_dir / "meta.properties").write_text("cluster.id=x\nnode.id=1\n")
    with pytest.raises(LocalBrokerError, match="formatted with 1 node"):
        LocalCluster(cluster.settings, brokers=3).start()


def test_the_sasl_listener_needs_a_single_node(tmp_path: Path) -> None:
    from tidemark.localkafka.sasl import SaslSslListener

    listener = SaslSslListener(port=19599, keystore=tmp_path / "k.pem", secrets=tmp_path / "secrets")
    with pytest.raises(LocalBrokerError, match="single-node"):
        LocalCluster(Settings(state_dir=tmp_path), brokers=3, secure=listener)


def test_a_stale_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    """A pid reused by an unrelated process (here: this test) is never taken for the broker."""
    broker = LocalCluster(Settings(state_dir=tmp_path))
    broker.home.mkdir(parents=True)
    (broker.home / "broker.pid").write_text(f"{os.getpid()}\n")
    assert broker.status().pid is None
    assert broker.stop() is False
