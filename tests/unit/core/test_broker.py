"""The local broker's pieces that need no JVM: tool checks, cluster ids, the pom, port settings."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tidemark.core.broker import LocalBroker, new_cluster_id
from tidemark.core.exceptions import LocalBrokerError
from tidemark.core.kafka_dist import pom_for
from tidemark.core.settings import Settings
from tidemark.exceptions import ConfigurationError


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    broker = LocalBroker(Settings(state_dir=tmp_path / "state", kafka_cache=tmp_path / "cache"))
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
    broker = LocalBroker(Settings(state_dir=tmp_path / "state", kafka_cache=tmp_path / "cache"))
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
        LocalBroker(Settings(state_dir=tmp_path))


def test_status_of_a_fresh_state_dir(tmp_path: Path) -> None:
    status = LocalBroker(Settings(state_dir=tmp_path / "state")).status()
    assert status.running is False and status.pid is None and status.bootstrap is None
    assert status.data_dir == (tmp_path / "state" / "kafka" / "data").resolve()


def test_a_stale_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    """A pid reused by an unrelated process (here: this test) is never taken for the broker."""
    broker = LocalBroker(Settings(state_dir=tmp_path))
    broker.home.mkdir(parents=True)
    (broker.home / "broker.pid").write_text(f"{os.getpid()}\n")
    assert broker.pid() is None
    assert broker.stop() is False
