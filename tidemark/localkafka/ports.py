"""Loopback ports of the local cluster: chosen once, persisted in `ports.json`, reused on restart.

`ports.json` layout: `{"nodes": [{"port": P, "controller port": C}, ...]}`, one entry per node in
node-id order (node ids start at 1). A file from a single-broker version,
`{"port": P, "controller port": C}`, reads as one node. Every port in a plan is distinct.
"""

from __future__ import annotations

import json
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tidemark.core.exceptions import LocalBrokerError
from tidemark.exceptions import ConfigurationError

HOST = "127.0.0.1"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000  # fresh ports are chosen from here up to the ephemeral range
PORT_FREE_TIMEOUT_S = 10.0
MAX_BROKERS = 3
DEFAULT_BROKERS = 1


class LocalKafkaSettings(BaseSettings):
    """Options of the local cluster only (`TIDEMARK_KAFKA_PORT`, `TIDEMARK_KAFKA_BROKERS`)."""

    model_config = SettingsConfigDict(env_prefix="TIDEMARK_", extra="ignore", env_ignore_empty=True)

    kafka_port: int | None = Field(default=None, ge=1, le=65535)
    kafka_brokers: int = Field(default=DEFAULT_BROKERS, ge=1, le=MAX_BROKERS)


def local_kafka_settings() -> LocalKafkaSettings:
    try:
        return LocalKafkaSettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigurationError(
            f"TIDEMARK_{str(error['loc'][0]).upper()} is invalid: {error['msg']} "
            f"(TIDEMARK_KAFKA_PORT: a TCP port 1-65535 or unset; TIDEMARK_KAFKA_BROKERS: 1-{MAX_BROKERS})"
        ) from exc


@dataclass(frozen=True)
class NodePorts:
    """The client listener and the KRaft controller listener of one node."""

    port: int
    controller: int


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, with room for `MAX_BROKERS`
    neighbours there too; one the kernel picks when the range leaves no room.

    The kernel never gives a port outside that range to an outgoing connection. One inside it can
    be taken as the local port of any client's connection between the plan and the node's bind,
    or while a killed node restarts: a CI run lost node 2 of three so ("Address already in use")."""
    candidates = ports_outside_ephemeral()
    for _ in range(100 if candidates else 0):
        port = random.choice(candidates)
        if port_is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ports_outside_ephemeral(ranges_file: Path = EPHEMERAL_RANGE) -> range:
    """`LOWEST_PORT` up to the ephemeral range's first port, less `MAX_BROKERS`; empty when that
    leaves fewer than 1,000 ports or the range cannot be read."""
    try:
        low = int(ranges_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return range(0)
    ports = range(LOWEST_PORT, low - MAX_BROKERS)
    return ports if len(ports) >= 1000 else range(0)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_port_free(port: int, timeout: float = PORT_FREE_TIMEOUT_S) -> bool:
    """A node that just died may hold its port for a moment while its threads exit."""
    deadline = time.monotonic() + timeout
    while not port_is_free(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def read_ports(path: Path) -> list[NodePorts]:
    """The recorded plan, [] when there is none."""
    if not path.is_file():
        return []
    try:
        recorded = json.loads(path.read_text())
        if "nodes" not in recorded:
            recorded = {"nodes": [recorded]}
        return [NodePorts(int(n["port"]), int(n["controller port"])) for n in recorded["nodes"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LocalBrokerError(f"{path} is corrupt ({exc!r}); delete it to choose new ports") from exc


def write_ports(path: Path, plan: list[NodePorts]) -> None:
    nodes = [{"port": p.port, "controller port": p.controller} for p in plan]
    path.write_text(json.dumps({"nodes": nodes}) + "\n")


def plan_ports(recorded: list[NodePorts], brokers: int, requested: int | None) -> list[NodePorts]:
    """`brokers` nodes' ports: node N's listener is `requested` + N - 1 when a port is requested,
    else the recorded one; controllers keep their recorded ports; a port that is missing, taken
    by another node of the plan or busy becomes a fresh free port. All distinct."""
    taken: set[int] = set()

    def pick(preferred: int | None, must: bool = False) -> int:
        port = preferred
        while port is None or port in taken or not (must or port_is_free(port)):
            port = free_port()
        taken.add(port)
        return port

    plan = []
    for index in range(brokers):
        known = recorded[index] if index < len(recorded) else None
        if requested is not None:
            preferred: int | None = requested + index
            must = index == 0 or (known is not None and known.port == preferred)
        else:
            preferred, must = (known.port, True) if known else (None, False)
        port = pick(preferred, must)
        plan.append(NodePorts(port, pick(known.controller if known else None, must=known is not None)))
    return plan
