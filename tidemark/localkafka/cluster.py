"""The local Kafka cluster of one state directory: one to three KRaft nodes on loopback.

Everything lives under `<state dir>/kafka/`: `ports.json` (see `ports`), one folder per node (see
`node`), and `bootstrap`, the comma-separated listener list while the cluster runs (read by
`tidemark.core.kafka.resolve_bootstrap`). The JVMs run in their own sessions, so they outlive the
`tidemark kafka start` that launched them. Stopping and starting again with the same state
directory gives the same ports and the same data. The number of nodes is fixed when the storage is
formatted; a cluster with a node down is started again by starting the missing node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tidemark.core.exceptions import LocalBrokerError
from tidemark.core.kafka import BOOTSTRAP_FILE, local_broker_dir
from tidemark.core.settings import Settings

from . import processes
from .config import jvm_options, new_cluster_id, server_properties
from .distribution import KafkaDistribution, require_tool
from .node import LocalNode, stop_nodes
from .ports import (
    HOST,
    NodePorts,
    accepts,
    local_kafka_settings,
    plan_ports,
    read_ports,
    wait_port_free,
    write_ports,
)
from .sasl import SaslSslListener

READY_TIMEOUT_S = 120.0
"""Per node started at once: on 2 loaded cores three JVMs recovering their logs after a kill -9
took 100 s together (load average 11)."""


@dataclass(frozen=True)
class ClusterStatus:
    pids: tuple[int | None, ...]
    """One entry per node, in node-id order; None where the node does not run."""
    bootstrap: str | None
    data_dir: Path
    logs_dir: Path
    already_running: bool = False

    @property
    def running(self) -> bool:
        """Every node runs."""
        return all(pid is not None for pid in self.pids)

    @property
    def pid(self) -> int | None:
        """Node 1's JVM."""
        return self.pids[0]


class LocalCluster:
    """Start, stop, kill and inspect the local cluster of one state directory.

    `brokers` is the node count for a new cluster (default: what `ports.json` records, else
    `TIDEMARK_KAFKA_BROKERS`, else 1); `port` is node 1's listener (else `TIDEMARK_KAFKA_PORT`,
    else the recorded one, else a free port).
    """

    def __init__(
        self, settings: Settings, port: int | None = None, brokers: int | None = None,
        secure: SaslSslListener | None = None,
    ) -> None:  # fmt: skip
        environment = local_kafka_settings()
        self.settings = settings
        self.secure = secure
        self.requested_port = port if port is not None else environment.kafka_port
        self.home = local_broker_dir(settings).expanduser().resolve()
        recorded = read_ports(self.ports_file)
        self.brokers = brokers or len(recorded) or environment.kafka_brokers
        if secure is not None and self.brokers != 1:
            raise LocalBrokerError("the SASL_SSL test listener runs on a single-node cluster only")
        self.distribution = KafkaDistribution(settings.kafka_cache, settings.kafka_version)
        jvm = jvm_options(self.brokers)
        self.nodes = [LocalNode(self.home, number, self.distribution, jvm) for number in range(1, self.brokers + 1)]

    @property
    def ports_file(self) -> Path:
        return self.home / "ports.json"

    @property
    def bootstrap_file(self) -> Path:
        return self.home / BOOTSTRAP_FILE

    @property
    def data_dir(self) -> Path:
        return self.nodes[0].data_dir

    # ---- inspection -------------------------------------------------------------------------

    def status(self, already_running: bool = False) -> ClusterStatus:
        pids = tuple(node.pid() for node in self.nodes)
        bootstrap = None
        if any(pids) and self.bootstrap_file.is_file():
            bootstrap = self.bootstrap_file.read_text().strip()
        return ClusterStatus(pids, bootstrap, self.data_dir, self.nodes[0].logs_dir, already_running)

    def fetch(self) -> Path:
        """Assemble the broker's jars (cached); returns the lib folder."""
        require_tool("java", "run the local Kafka broker")
        return self.distribution.ensure()

    # ---- start ------------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> ClusterStatus:
        """Start every node that does not run and wait until all serve metadata (`timeout`,
        default READY_TIMEOUT_S per node started). A cluster whose nodes all run is left alone
        (`already_running`)."""
        down = [node for node in self.nodes if node.pid() is None]
        timeout = timeout if timeout is not None else READY_TIMEOUT_S * max(1, len(down))
        plan = self._plan(fresh=len(down) == len(self.nodes))
        bootstrap = ",".join(f"{HOST}:{p.port}" for p in plan)
        if not down:
            self._wait_ready([], plan, timeout)
            self.bootstrap_file.write_text(bootstrap + "\n")
            return self.status(already_running=True)
        java = require_tool("java", "run the local Kafka broker")
        self.distribution.ensure()
        if len(down) == len(self.nodes):
            self.bootstrap_file.unlink(missing_ok=True)
        self._check_ports_free(down, plan)
        for node in down:
            extra = self.secure.listener if self.secure is not None else ""
            properties = server_properties(node.node_id, plan, node.data_dir, self.settings, extra)
            node.configure(properties | (self.secure.properties() if self.secure is not None else {}))
        cluster_id = self._cluster_id()
        for node in down:
            if not node.is_formatted():
                node.format(java, cluster_id)
        spawned = [(node, node.spawn(java)) for node in down]
        try:
            self._wait_ready(spawned, plan, timeout)
            if self.secure is not None:
                self.secure.create_users(bootstrap)
        except LocalBrokerError:
            stop_nodes([node for node, _ in spawned])  # never leave a half-started JVM behind
            raise
        self.bootstrap_file.write_text(bootstrap + "\n")
        return self.status()

    def _plan(self, fresh: bool) -> list[NodePorts]:
        """The nodes' ports; a running node keeps its recorded ports whatever was requested."""
        recorded = read_ports(self.ports_file)
        if recorded and len(recorded) != self.brokers and self.nodes[0].is_formatted():
            raise LocalBrokerError(
                f"the local Kafka cluster under {self.home} was formatted with {len(recorded)} node(s), "
                f"not {self.brokers}; start it with --brokers {len(recorded)}, or stop it and delete "
                f"{self.home} to start a new cluster"
            )
        if not fresh:
            if len(recorded) != self.brokers:
                raise LocalBrokerError(
                    f"nodes of the local Kafka cluster run under {self.home} but {self.ports_file} does not "
                    "record their ports; run `tidemark kafka stop` and start again"
                )
            return recorded
        self.home.mkdir(parents=True, exist_ok=True)
        plan = plan_ports(recorded, self.brokers, self.requested_port)
        if plan != recorded:
            write_ports(self.ports_file, plan)
        return plan

    def _check_ports_free(self, down: list[LocalNode], plan: list[NodePorts]) -> None:
        for node in down:
            ports = plan[node.node_id - 1]
            for name, port in (("port", ports.port), ("controller port", ports.controller)):
                if not wait_port_free(port):
                    raise LocalBrokerError(
                        f"node {node.node_id}'s {name} {port} (recorded in {self.ports_file}) is in use by "
                        "another process; stop that process, set TIDEMARK_KAFKA_PORT to another port, "
                        "or delete the ports file to choose new ones"
                    )

    def _cluster_id(self) -> str:
        """The id the formatted nodes share, or a new one for a cluster not formatted yet."""
        for node in self.nodes:
            if node.is_formatted():
                for line in (node.data_dir / "meta.properties").read_text().splitlines():
                    if line.startswith("cluster.id="):
                        return line.split("=", 1)[1].strip()
        return new_cluster_id()

    def _wait_ready(self, spawned: list[tuple[LocalNode, int]], plan: list[NodePorts], timeout: float) -> None:
        """Until every node's listener accepts and the metadata lists every node; fail early if a
        JVM we started exits."""
        deadline = time.monotonic() + timeout
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            for node, pid in spawned:
                # Not the command-line check of `pid()`: right after exec, /proc shows no cmdline.
                if processes.exited(pid):
                    node.pid_file.unlink(missing_ok=True)
                    raise LocalBrokerError(node.exit_report())
            if all(accepts(p.port) for p in plan):
                bootstrap = ",".join(f"{HOST}:{p.port}" for p in plan)
                admin = admin or AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
                try:
                    if len(admin.list_topics(timeout=2.0).brokers) == len(plan):
                        return
                except KafkaException:
                    pass
            time.sleep(0.25)
        raise LocalBrokerError(
            f"the local Kafka cluster under {self.home} did not become ready within {timeout:.0f} s "
            f"({len(plan)} node(s), listeners {', '.join(str(p.port) for p in plan)}); see server.log in "
            f"{', '.join(str(node.logs_dir) for node in self.nodes)}"
        )

    # ---- stop -------------------------------------------------------------------------------

    def stop(self) -> bool:
        """SIGTERM every node, wait, SIGKILL if needed. Returns whether any node was running."""
        self.bootstrap_file.unlink(missing_ok=True)
        return bool(stop_nodes(self.nodes))

    def kill(self, node: int | None = None) -> bool:
        """SIGKILL node `node` (1-based), or every node: a crash, for fault tests. Whether any ran."""
        targets = self.nodes if node is None else [self.nodes[node - 1]]
        killed = [target.kill() for target in targets]  # every target, no short cut
        return any(killed)

    def restart(self, timeout: float | None = None) -> ClusterStatus:
        """Stop, then start with the same data and ports (for fault tests)."""
        self.stop()
        return self.start(timeout)
