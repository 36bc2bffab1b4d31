"""server.properties of one node and of three: the quorum, the listeners, the replication."""

from __future__ import annotations

from pathlib import Path

from tidemark.core.settings import Settings
from tidemark.localkafka.config import jvm_options, server_properties
from tidemark.localkafka.ports import NodePorts

PLAN = [NodePorts(19500, 19510), NodePorts(19501, 19511), NodePorts(19502, 19512)]


def test_a_single_node_replicates_nothing() -> None:
    properties = server_properties(1, PLAN[:1], Path("/d"), Settings())
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19510"
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["transaction.state.log.replication.factor"] == "1"
    assert properties["transaction.state.log.min.isr"] == "1"


def test_three_nodes_share_the_voters_and_replicate_internal_topics() -> None:
    voters = "1@127.0.0.1:19510,2@127.0.0.1:19511,3@127.0.0.1:19512"
    for node_id in (1, 2, 3):
        properties = server_properties(node_id, PLAN, Path(f"/d{node_id}"), Settings())
        assert properties["node.id"] == str(node_id)
        assert properties["process.roles"] == "broker,controller"
        assert properties["controller.quorum.voters"] == voters
        port, controller = 19499 + node_id, 19509 + node_id
        assert properties["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"
        assert properties["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        assert properties["log.dirs"] == f"/d{node_id}"
        assert properties["offsets.topic.replication.factor"] == "3"
        assert properties["transaction.state.log.replication.factor"] == "3"
        assert properties["transaction.state.log.min.isr"] == "2"


def test_an_extra_listener_is_advertised_and_mapped() -> None:
    properties = server_properties(1, PLAN[:1], Path("/d"), Settings(), "SASL_SSL://127.0.0.1:19599")
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19500,SASL_SSL://127.0.0.1:19599"
    assert properties["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")


def test_heaps_are_explicit_and_smaller_per_node_in_a_cluster() -> None:
    assert "-Xmx1g" in jvm_options(1)
    assert "-Xmx512m" in jvm_options(3)
