"""A real single-node Kafka broker (KRaft: broker and controller in one JVM) on loopback.

Everything lives under `<state dir>/kafka/`:

    ports.json          the listener and controller ports, chosen once and reused on restart
    server.properties   regenerated on every start from the settings
    data/               the KRaft metadata log and topic partitions (formatted once)
    logs/               server.log (log4j) and console.log (the JVM's stdout/stderr)
    broker.pid          the running JVM
    bootstrap           host:port while the broker runs (read by `resolve_bootstrap`)

The JVM runs in its own session, so it outlives the `tidemark kafka start` command that launched it.
Stopping and starting again with the same state directory gives the same port and the same data.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tidemark.exceptions import ConfigurationError

from .exceptions import LocalBrokerError
from .kafka import BOOTSTRAP_FILE, local_broker_dir
from .kafka_dist import KafkaDistribution, require_tool
from .settings import Settings

HOST = "127.0.0.1"
JVM_OPTIONS = ("-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
KILL_TIMEOUT_S = 10.0
PORT_FREE_TIMEOUT_S = 10.0

# Brokers started by this process, kept so they are reaped (no zombie) and never garbage-collected
# while running, whichever LocalBroker instance stops them.
_children: dict[int, subprocess.Popen[bytes]] = {}


class BrokerSettings(BaseSettings):
    """Options of the local broker only (`TIDEMARK_KAFKA_PORT`)."""

    model_config = SettingsConfigDict(env_prefix="TIDEMARK_", extra="ignore", env_ignore_empty=True)

    kafka_port: int | None = Field(default=None, ge=1, le=65535)


def _port_from_environment() -> int | None:
    try:
        return BrokerSettings().kafka_port
    except ValidationError as exc:
        raise ConfigurationError(
            f"TIDEMARK_KAFKA_PORT must be a TCP port number (1-65535) or unset: {exc.errors()[0]['msg']}"
        ) from exc


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None
    data_dir: Path
    logs_dir: Path
    already_running: bool = False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` ('R', 'S', 'Z', ...), or None if there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[-1].split()[0]


def _exited(pid: int) -> bool:
    """Whether every thread of `pid` is gone (its sockets and files are closed).

    A JVM's main thread can be a zombie while its other threads still exit and hold the listening
    socket, so a 'Z' state alone is not enough: our own child is waited for, any other process
    must have no thread left but the zombie leader.
    """
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return False
        del _children[pid]
        return True
    state = _process_state(pid)
    if state is None:
        return True
    if state not in ("Z", "X"):
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass(frozen=True)
class SaslSslListener:
    """A second listener that needs TLS and SCRAM credentials (for testing secured clusters).

    `keystore` is a PEM file holding the broker's private key (PKCS#8, unencrypted) followed by its
    certificate chain; `users` are SCRAM credentials created when the storage is formatted.
    """

    port: int
    keystore: Path
    users: tuple[tuple[str, str], ...]
    mechanism: str = "SCRAM-SHA-256"

    def properties(self) -> dict[str, str]:
        mechanism = self.mechanism.lower()
        return {
            "sasl.enabled.mechanisms": self.mechanism,
            f"listener.name.sasl_ssl.{mechanism}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(self.keystore),
        }

    def scram_arguments(self) -> list[str]:
        arguments: list[str] = []
        for name, password in self.users:
            arguments += ["--add-scram", f"{self.mechanism}=[name={name},password={password}]"]
        return arguments


class LocalBroker:
    """Start, stop and inspect the local broker of one state directory."""

    def __init__(self, settings: Settings, port: int | None = None, secure: SaslSslListener | None = None) -> None:
        self.settings = settings
        self.secure = secure
        self.requested_port = port if port is not None else _port_from_environment()
        self.home = local_broker_dir(settings).expanduser().resolve()
        self.data_dir = self.home / "data"
        self.logs_dir = self.home / "logs"
        self.distribution = KafkaDistribution(settings.kafka_cache, settings.kafka_version)

    @property
    def _pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def _bootstrap_file(self) -> Path:
        return self.home / BOOTSTRAP_FILE

    @property
    def _ports_file(self) -> Path:
        return self.home / "ports.json"

    @property
    def _server_properties(self) -> Path:
        return self.home / "server.properties"

    # ---- inspection -------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of this state directory's broker JVM if it is alive, else None."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._is_our_broker(pid):
            return pid
        _exited(pid)  # reap a dead child of ours, so no zombie is left behind
        return None

    def _is_our_broker(self, pid: int) -> bool:
        state = _process_state(pid)
        if state is None or state in ("Z", "X"):
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if not cmdline:  # a process in the middle of exec shows no command line yet
                time.sleep(0.2)
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        args = cmdline.split(b"\0")
        return b"kafka.Kafka" in args and str(self._server_properties).encode() in args

    def status(self) -> BrokerStatus:
        pid = self.pid()
        bootstrap = None
        if pid is not None and self._bootstrap_file.is_file():
            bootstrap = self._bootstrap_file.read_text().strip()
        return BrokerStatus(pid is not None, pid, bootstrap, self.data_dir, self.logs_dir)

    # ---- start ------------------------------------------------------------------------------

    def fetch(self) -> Path:
        """Assemble the broker's jars (cached); returns the lib folder."""
        require_tool("java", "run the local Kafka broker")
        return self.distribution.ensure()

    def start(self, timeout: float = READY_TIMEOUT_S) -> BrokerStatus:
        """Start the broker and wait until it serves metadata. A running broker is left alone."""
        running = self.pid()
        if running is not None:
            port = self._recorded_ports().get("port")
            if port is None:
                raise LocalBrokerError(
                    f"a broker (pid {running}) runs for {self.home} but {self._ports_file} is missing; "
                    "run `tidemark kafka stop` and start again"
                )
            self._wait_ready(running, port, timeout)
            self._bootstrap_file.write_text(f"{HOST}:{port}\n")
            return BrokerStatus(True, running, f"{HOST}:{port}", self.data_dir, self.logs_dir, True)
        java = require_tool("java", "run the local Kafka broker")
        self.distribution.ensure()
        self._bootstrap_file.unlink(missing_ok=True)
        ports = self._ports()
        for name, port in ports.items():
            if not self._wait_port_free(port):
                raise LocalBrokerError(
                    f"the local broker's {name} {port} (recorded in {self._ports_file}) is in use by "
                    "another process; stop that process, set TIDEMARK_KAFKA_PORT to another port, "
                    "or delete the ports file to choose new ones"
                )
        self._write_config(ports)
        self._format_storage(java)
        pid = self._spawn(java)
        try:
            self._wait_ready(pid, ports["port"], timeout)
        except LocalBrokerError:
            self.stop()  # never leave a half-started JVM behind
            raise
        bootstrap = f"{HOST}:{ports['port']}"
        self._bootstrap_file.write_text(bootstrap + "\n")
        return BrokerStatus(True, pid, bootstrap, self.data_dir, self.logs_dir)

    @staticmethod
    def _wait_port_free(port: int, timeout: float = PORT_FREE_TIMEOUT_S) -> bool:
        """A broker that just died may hold its port for a moment while its threads exit."""
        deadline = time.monotonic() + timeout
        while not _port_is_free(port):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def _recorded_ports(self) -> dict[str, int]:
        if not self._ports_file.is_file():
            return {}
        try:
            return {k: int(v) for k, v in json.loads(self._ports_file.read_text()).items()}
        except (ValueError, AttributeError) as exc:
            raise LocalBrokerError(f"{self._ports_file} is corrupt ({exc}); delete it") from exc

    def _ports(self) -> dict[str, int]:
        """The persisted ports; chosen on first start (or `TIDEMARK_KAFKA_PORT`) and then reused."""
        self.home.mkdir(parents=True, exist_ok=True)
        recorded = self._recorded_ports()
        port = self.requested_port or recorded.get("port") or _free_port()
        controller = recorded.get("controller port")
        if controller is None or controller == port:
            controller = _free_port()
            while controller == port:
                controller = _free_port()
        ports = {"port": port, "controller port": controller}
        if ports != recorded:
            self._ports_file.write_text(json.dumps(ports) + "\n")
        return ports

    def _write_config(self, ports: dict[str, int]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        port, controller = ports["port"], ports["controller port"]
        listeners = f"PLAINTEXT://{HOST}:{port}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if self.secure is not None:
            listeners += f",SASL_SSL://{HOST}:{self.secure.port}"
            protocols += ",SASL_SSL:SASL_SSL"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{controller}",
            "listeners": f"{listeners},CONTROLLER://{HOST}:{controller}",
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": protocols,
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.settings.partitions),
            "message.max.bytes": str(self.settings.message_max_bytes),
            "replica.fetch.max.bytes": str(self.settings.message_max_bytes),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "group.initial.rebalance.delay.ms": "0",
            # After a crash the restarted broker cannot register until the old registration's
            # session expires (default 9 s); a shorter session makes kill-and-restart quick.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "1000",
        }
        if self.secure is not None:
            properties |= self.secure.properties()
        self._server_properties.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        log4j = resources.files("tidemark.core").joinpath("log4j.properties").read_text()
        (self.home / "log4j.properties").write_text(log4j)

    def _java_command(self, java: str, main: str, *args: str) -> list[str]:
        return [
            java,
            *JVM_OPTIONS,
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            self.distribution.classpath,
            main,
            *args,
        ]

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        command = self._java_command(
            java, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(),
            "-c", str(self._server_properties), "--ignore-formatted",
            *(self.secure.scram_arguments() if self.secure is not None else []),
        )  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        if result.returncode != 0:
            raise LocalBrokerError(
                f"formatting the broker's storage in {self.data_dir} failed (exit {result.returncode}); "
                f"delete {self.home} to start from scratch:\n{(result.stdout + result.stderr)[-2000:]}"
            )

    def _spawn(self, java: str) -> int:
        command = self._java_command(java, "kafka.Kafka", str(self._server_properties))
        with open(self.logs_dir / "console.log", "ab") as console:
            process = subprocess.Popen(
                command, cwd=self.home, stdin=subprocess.DEVNULL, stdout=console,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            )  # fmt: skip
        _children[process.pid] = process
        self._pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def _wait_ready(self, pid: int, port: int, timeout: float) -> None:
        """Until an AdminClient sees a broker in the metadata; fail early if the JVM exits."""
        deadline = time.monotonic() + timeout
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            # Not the command-line check of `pid()`: right after exec, /proc briefly shows no cmdline.
            if _exited(pid):
                self._pid_file.unlink(missing_ok=True)
                raise LocalBrokerError(
                    f"the local Kafka broker exited during start-up; see {self.logs_dir}/server.log "
                    f"and console.log:\n{_tail(self.logs_dir / 'server.log')}\n"
                    f"{_tail(self.logs_dir / 'console.log')}"
                )
            if _accepts(port):
                admin = admin or AdminClient({"bootstrap.servers": f"{HOST}:{port}", "log_level": 0})
                try:
                    if admin.list_topics(timeout=2.0).brokers:
                        return
                except KafkaException:
                    pass
            time.sleep(0.25)
        raise LocalBrokerError(
            f"the local Kafka broker (pid {pid}) did not become ready on {HOST}:{port} within "
            f"{timeout:.0f} s; see {self.logs_dir}/server.log"
        )

    # ---- stop -------------------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """SIGTERM, wait, SIGKILL if needed. Returns whether a broker was running."""
        pid = self.pid()
        self._bootstrap_file.unlink(missing_ok=True)
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        self._signal(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            self._signal(pid, signal.SIGKILL)
            if not self._wait_gone(pid, KILL_TIMEOUT_S):
                raise LocalBrokerError(f"the local Kafka broker (pid {pid}) survived SIGKILL")
        self._pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL, like a crash: no clean shutdown, files left as they are (for fault tests)."""
        pid = self.pid()
        if pid is None:
            return False
        self._signal(pid, signal.SIGKILL)
        if not self._wait_gone(pid, KILL_TIMEOUT_S):
            raise LocalBrokerError(f"the local Kafka broker (pid {pid}) survived SIGKILL")
        return True

    def restart(self, timeout: float = READY_TIMEOUT_S) -> BrokerStatus:
        """Stop, then start with the same data and port (for fault tests)."""
        self.stop()
        return self.start(timeout)

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if _exited(pid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
