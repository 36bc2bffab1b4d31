"""One node of the local cluster: its folder, its storage, its JVM.

Node 1 lives in `<state dir>/kafka/` itself (the layout of a single broker); node N > 1 in
`<state dir>/kafka/node-N/`. Each node's folder holds:

    server.properties   regenerated on every start
    log4j.properties    the logging of that JVM
    data/               the KRaft metadata log and topic partitions (formatted once)
    logs/               server.log (log4j) and console.log (the JVM's stdout/stderr)
    broker.pid          the running JVM
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tidemark.core.exceptions import LocalBrokerError

from . import processes
from .config import log4j_properties, render
from .distribution import KafkaDistribution

STOP_TIMEOUT_S = 30.0
KILL_TIMEOUT_S = 10.0
FORMAT_TIMEOUT_S = 120.0


class LocalNode:
    def __init__(self, cluster_home: Path, node_id: int, distribution: KafkaDistribution, jvm: tuple[str, ...]) -> None:
        self.node_id = node_id
        self.home = cluster_home if node_id == 1 else cluster_home / f"node-{node_id}"
        self.data_dir = self.home / "data"
        self.logs_dir = self.home / "logs"
        self.distribution = distribution
        self.jvm = jvm

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def server_properties(self) -> Path:
        return self.home / "server.properties"

    def pid(self) -> int | None:
        """The pid of this node's JVM if it is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        arguments = processes.command_line(pid)
        if b"kafka.Kafka" in arguments and str(self.server_properties).encode() in arguments:
            return pid
        processes.exited(pid)  # reap a dead child of ours, so no zombie is left behind
        return None

    def configure(self, properties: dict[str, str]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.server_properties.write_text(render(properties))
        (self.home / "log4j.properties").write_text(log4j_properties())

    def is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def format(self, java: str, cluster_id: str) -> None:
        """Format this node's storage for `cluster_id` (every node of a cluster shares it)."""
        command = self._java(java, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                             "-c", str(self.server_properties), "--ignore-formatted")  # fmt: skip
        result = subprocess.run(
            command, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=FORMAT_TIMEOUT_S
        )
        if result.returncode != 0:
            raise LocalBrokerError(
                f"formatting node {self.node_id}'s storage in {self.data_dir} failed (exit {result.returncode}); "
                f"delete {self.home} to start from scratch:\n{(result.stdout + result.stderr)[-2000:]}"
            )

    def spawn(self, java: str) -> int:
        pid = processes.spawn(
            self._java(java, "kafka.Kafka", str(self.server_properties)), self.home, self.logs_dir / "console.log"
        )
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def _java(self, java: str, main: str, *args: str) -> list[str]:
        return [
            java,
            *self.jvm,
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            self.distribution.classpath,
            main,
            *args,
        ]

    def exit_report(self) -> str:
        """Why a node that exited during start-up did so: the tails of its logs."""
        return (
            f"node {self.node_id} of the local Kafka cluster exited during start-up; see {self.logs_dir}/"
            f"server.log and console.log:\n{processes.tail(self.logs_dir / 'server.log')}\n"
            f"{processes.tail(self.logs_dir / 'console.log')}"
        )

    def kill(self) -> bool:
        """SIGKILL, like a crash: no clean shutdown, files left as they are. Whether it ran."""
        pid = self.pid()
        if pid is None:
            return False
        processes.send(pid, signal.SIGKILL)
        if not processes.wait_gone([pid], KILL_TIMEOUT_S):
            raise LocalBrokerError(f"node {self.node_id} of the local Kafka cluster (pid {pid}) survived SIGKILL")
        return True


def stop_nodes(nodes: list[LocalNode], timeout: float = STOP_TIMEOUT_S) -> list[LocalNode]:
    """SIGTERM every running node at once (one by one, the last ones would wait for a controller
    quorum that is gone), wait, SIGKILL what is left. Returns the nodes that were running."""
    running = [(node, pid) for node in nodes if (pid := node.pid()) is not None]
    for _, pid in running:
        processes.send(pid, signal.SIGTERM)
    pids = [pid for _, pid in running]
    if not processes.wait_gone(pids, timeout):
        for pid in pids:
            processes.send(pid, signal.SIGKILL)
        if not processes.wait_gone(pids, KILL_TIMEOUT_S):
            raise LocalBrokerError(f"the local Kafka cluster's JVMs {pids} survived SIGKILL")
    for node in nodes:
        node.pid_file.unlink(missing_ok=True)
    return [node for node, _ in running]
