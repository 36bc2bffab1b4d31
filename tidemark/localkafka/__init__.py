"""A real Kafka cluster on loopback for development, demos, benchmarks and tests (not the core).

One to three KRaft nodes, each a JVM that is broker and controller at once, assembled from Maven
(`distribution`), configured (`config`, `sasl`), on persisted ports (`ports`), run as detached
processes (`processes`, `node`) and managed together (`cluster`). Only the CLI, the demo, the
benchmarks and the tests use it; the stages reach Kafka through `tidemark.core.kafka` alone.
"""

from .cluster import ClusterStatus, LocalCluster

__all__ = ["ClusterStatus", "LocalCluster"]
