"""Port plans of the local cluster: persisted, reused, distinct; the single-broker file still reads."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidemark.core.exceptions import LocalBrokerError
from tidemark.localkafka.ports import (
    LOWEST_PORT,
    MAX_BROKERS,
    NodePorts,
    free_port,
    plan_ports,
    ports_outside_ephemeral,
    read_ports,
    write_ports,
)

recorded_plans = st.lists(st.builds(NodePorts, st.integers(20000, 20100), st.integers(20000, 20100)), max_size=3)


@given(recorded_plans, st.integers(1, 3), st.one_of(st.none(), st.integers(21000, 21010)))
def test_a_plan_has_one_entry_per_node_and_no_port_twice(
    recorded: list[NodePorts], brokers: int, requested: int | None
) -> None:
    plan = plan_ports(recorded, brokers, requested)
    ports = [p for node in plan for p in (node.port, node.controller)]
    assert len(plan) == brokers
    assert len(set(ports)) == len(ports)
    if requested is not None:
        assert plan[0].port == requested


def test_recorded_ports_are_kept() -> None:
    recorded = [NodePorts(19500, 19510), NodePorts(19501, 19511), NodePorts(19502, 19512)]
    assert plan_ports(recorded, 3, None) == recorded


def test_a_requested_port_numbers_the_nodes_from_it_when_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = sock.getsockname()[1]
    plan = plan_ports([], 3, base)
    assert plan[0].port == base
    assert all(node.port in (base + n, node.port) for n, node in enumerate(plan))


def test_a_busy_neighbour_port_is_replaced() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        plan = plan_ports([], 2, busy - 1)
    assert plan[0].port == busy - 1 and plan[1].port != busy


def test_files_round_trip_and_the_single_broker_layout_reads(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    assert read_ports(path) == []
    plan = [NodePorts(19500, 19510), NodePorts(19501, 19511)]
    write_ports(path, plan)
    assert read_ports(path) == plan
    path.write_text(json.dumps({"port": 9092, "controller port": 9093}))
    assert read_ports(path) == [NodePorts(9092, 9093)]


@pytest.mark.parametrize("text", ["{", "[]", '{"nodes": [{"port": 1}]}', '{"nodes": 3}'])
def test_a_corrupt_ports_file_says_to_delete_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ports.json"
    path.write_text(text)
    with pytest.raises(LocalBrokerError, match="delete it"):
        read_ports(path)


def test_fresh_ports_come_from_below_the_ephemeral_range(tmp_path: Path) -> None:
    """The kernel gives ports of its ephemeral range to outgoing connections, which could take a
    node's port before the node binds it; fresh ports are chosen below that range."""
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("32768\t60999\n")
    assert ports_outside_ephemeral(ranges) == range(LOWEST_PORT, 32768 - MAX_BROKERS)
    ranges.write_text("10500\t60999\n")
    assert ports_outside_ephemeral(ranges) == range(0), "too little room: the kernel's pick"
    assert ports_outside_ephemeral(tmp_path / "missing") == range(0)
    below = ports_outside_ephemeral()
    fresh = {free_port() for _ in range(20)}
    assert not below or fresh <= set(below), fresh
    plan = plan_ports([], 3, None)
    assert not below or {p for node in plan for p in (node.port, node.controller)} <= set(below), plan
