"""A SASL_SSL listener for testing secured clusters: TLS plus SCRAM users, secrets never on argv.

The users' passwords are read from a file the caller owns (one `name:password` per line, the
name before the first colon) and created through the Admin API on the node's PLAINTEXT listener
once the node runs, so no password appears on any process's command line (/proc/<pid>/cmdline).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from tidemark.core.exceptions import LocalBrokerError

from .ports import HOST

SCRAM_ITERATIONS = 8192
ADMIN_TIMEOUT_S = 30.0


def read_users(secrets: Path) -> list[tuple[str, str]]:
    """(name, password) pairs of a secrets file that only its owner may read."""
    mode = os.stat(secrets).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LocalBrokerError(
            f"{secrets} holds SCRAM passwords but others may read it (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {secrets}`"
        )
    users = []
    for number, line in enumerate(secrets.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, password = line.partition(":")
        if not colon or not name or not password:
            raise LocalBrokerError(f"{secrets}:{number}: expected `name:password`")
        users.append((name, password))
    return users


@dataclass(frozen=True)
class SaslSslListener:
    """A second listener that needs TLS and SCRAM credentials.

    `keystore` is a PEM file holding the broker's private key (PKCS#8, unencrypted) followed by its
    certificate chain; `secrets` is the users file described above.
    """

    port: int
    keystore: Path
    secrets: Path
    mechanism: str = "SCRAM-SHA-256"

    @property
    def listener(self) -> str:
        return f"SASL_SSL://{HOST}:{self.port}"

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

    def create_users(self, plaintext_bootstrap: str) -> None:
        """Upsert every user of the secrets file through the Admin API (idempotent)."""
        mechanism = ScramMechanism[self.mechanism.replace("-", "_")]
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(name, ScramCredentialInfo(mechanism, SCRAM_ITERATIONS), password.encode())
            for name, password in read_users(self.secrets)
        ]
        admin = AdminClient({"bootstrap.servers": plaintext_bootstrap, "log_level": 0})
        try:
            for future in admin.alter_user_scram_credentials(upserts).values():
                future.result(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            raise LocalBrokerError(
                f"creating the SCRAM users of {self.secrets} on {plaintext_bootstrap} failed: {exc}"
            ) from exc
