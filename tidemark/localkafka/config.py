"""What each node of the local cluster runs with: server.properties, JVM options, cluster id.

Every node is broker and controller at once (KRaft combined mode): on a 2-core machine three JVMs
cost less than three controllers plus three brokers, and a majority of the voters (2 of 3) keeps
the metadata quorum when one node is killed. Internal topics are replicated on up to three nodes
with a minimum of two in sync, so the offsets and the transaction state survive one lost node.
"""

from __future__ import annotations

import base64
import uuid
from importlib import resources
from pathlib import Path

from tidemark.core.settings import Settings

from .ports import HOST, NodePorts

SINGLE_NODE_HEAP = ("-Xms256m", "-Xmx1g")
CLUSTER_NODE_HEAP = ("-Xms128m", "-Xmx512m")
JVM_FLAGS = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")


def jvm_options(brokers: int) -> tuple[str, ...]:
    """Explicit heaps (without them a JVM may take a quarter of the machine's memory)."""
    return (*(SINGLE_NODE_HEAP if brokers == 1 else CLUSTER_NODE_HEAP), *JVM_FLAGS)


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def internal_replication(brokers: int) -> dict[str, str]:
    """Replication of the offsets and transaction-state topics for a cluster of `brokers` nodes."""
    factor = min(3, brokers)
    return {
        "offsets.topic.replication.factor": str(factor),
        "transaction.state.log.replication.factor": str(factor),
        "transaction.state.log.min.isr": str(min(2, factor)),
    }


def server_properties(
    node_id: int, plan: list[NodePorts], data_dir: Path, settings: Settings, extra_listener: str = ""
) -> dict[str, str]:
    """server.properties of node `node_id` (1-based) of the cluster `plan` describes.

    `extra_listener` is a further `NAME://host:port` listener (with its protocol mapped to itself),
    added after the PLAINTEXT one, for the test SASL_SSL listener.
    """
    ports = plan[node_id - 1]
    voters = ",".join(f"{number}@{HOST}:{p.controller}" for number, p in enumerate(plan, start=1))
    listeners = f"PLAINTEXT://{HOST}:{ports.port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if extra_listener:
        name = extra_listener.split(":", 1)[0]
        listeners += f",{extra_listener}"
        protocols += f",{name}:{name}"
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"{listeners},CONTROLLER://{HOST}:{ports.controller}",
        "advertised.listeners": listeners,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": protocols,
        "log.dirs": str(data_dir),
        "num.partitions": str(settings.partitions),
        "message.max.bytes": str(settings.message_max_bytes),
        "replica.fetch.max.bytes": str(settings.message_max_bytes),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.num.partitions": "10",
        **internal_replication(len(plan)),
        "group.initial.rebalance.delay.ms": "0",
        # After a crash the restarted broker cannot register until the old registration's
        # session expires (default 9 s); a shorter session makes kill-and-restart quick.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
    }


def render(properties: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def log4j_properties() -> str:
    return resources.files("tidemark.localkafka").joinpath("log4j.properties").read_text()
