"""tidemark against a broker listener that requires TLS and SCRAM credentials (SASL_SSL)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topic_admin import ensure_topics
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec, publish_volume, read_volumes
from tidemark.localkafka import LocalCluster
from tidemark.localkafka.sasl import SaslSslListener

pytestmark = pytest.mark.integration

USER, PASSWORD = "tidemark-test", "correct horse battery staple"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, stdin=subprocess.DEVNULL)


def _certificates(folder: Path) -> tuple[Path, Path]:
    """A throwaway CA and a broker certificate for 127.0.0.1; returns (CA, broker keystore PEM)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tidemark-test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=folder)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "broker.key", "-out", "broker.csr", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "broker.pem", cwd=folder)  # fmt: skip
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8", cwd=folder)
    keystore = folder / "keystore.pem"
    keystore.write_text((folder / "broker.pk8").read_text() + (folder / "broker.pem").read_text())
    return folder / "ca.pem", keystore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CommandLines(threading.Thread):
    """Every command line seen in /proc while it runs (scanned every few milliseconds)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[bytes] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        self.seen.add((entry / "cmdline").read_bytes())
            time.sleep(0.005)

    def stop(self) -> set[bytes]:
        self.done.set()
        self.join()
        return self.seen


@dataclass
class Secured:
    bootstrap: str
    ca: Path
    broker: LocalCluster
    command_lines: set[bytes]
    """What ran while the broker was formatted, started and given its users."""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    folder = tmp_path_factory.mktemp("sasl-ssl")
    ca, keystore = _certificates(folder)
    secrets = folder / "scram-users"
    secrets.touch(mode=0o600)
    secrets.write_text(f"{USER}:{PASSWORD}\n")
    listener = SaslSslListener(port=_free_port(), keystore=keystore, secrets=secrets)
    broker = LocalCluster(Settings(state_dir=folder / "state"), secure=listener)
    watcher = CommandLines()
    watcher.start()
    try:
        broker.start()
    finally:
        seen = watcher.stop()
    try:
        yield Secured(f"127.0.0.1:{listener.port}", ca, broker, seen)
    finally:
        broker.stop()


def _kafka(bootstrap: str, ca: Path, password: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username=USER,
        sasl_password=SecretStr(password),
        ssl_ca_location=ca,
    )


def test_tidemark_works_over_sasl_ssl_with_the_right_credentials(secured: Secured, tmp_path: Path) -> None:
    bootstrap, ca = secured.bootstrap, secured.ca
    settings = Settings(state_dir=tmp_path, topic_prefix="secure")
    clients = KafkaClients(settings, _kafka(bootstrap, ca, PASSWORD))
    topics = Topics("secure")
    ensure_topics(clients, topics, settings)
    publish_volume(clients, topics, VolumeSpec("vol-secure", 1 << 20))
    assert "vol-secure" in read_volumes(clients, topics)


def test_wrong_credentials_fail_with_a_clear_error(secured: Secured, tmp_path: Path) -> None:
    bootstrap, ca = secured.bootstrap, secured.ca
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")} | {
        "TIDEMARK_BOOTSTRAP": bootstrap,
        "TIDEMARK_SECURITY_PROTOCOL": "SASL_SSL",
        "TIDEMARK_SASL_MECHANISM": "SCRAM-SHA-256",
        "TIDEMARK_SASL_USERNAME": USER,
        "TIDEMARK_SASL_PASSWORD": "wrong password",
        "TIDEMARK_SSL_CA_LOCATION": str(ca),
        "TIDEMARK_STATE_DIR": str(tmp_path),
        "TIDEMARK_TOPIC_PREFIX": "secure-wrong",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tidemark.cli", "topics", "create"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "authentication" in result.stderr.lower(), result.stderr
    assert "TIDEMARK_SASL_PASSWORD" in result.stderr.replace("\n", ""), result.stderr


def test_no_password_on_any_command_line(secured: Secured) -> None:
    """Formatting the storage, the broker JVM, creating the users: no argv carries the password."""
    pid = secured.broker.status().pid
    assert pid is not None
    assert Path(f"/proc/{pid}/cmdline").read_bytes() in secured.command_lines
    assert any(b"kafka.tools.StorageTool" in line for line in secured.command_lines), "format was not seen"
    leaking = [line.replace(b"\0", b" ")[:200] for line in secured.command_lines if PASSWORD.encode() in line]
    assert leaking == []
