"""Settings, read from `TIDEMARK_*` environment variables and overridden by CLI flags.

Kafka connection options are passed through to librdkafka by `KafkaSettings.client_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

KIB = 1024
MIB = 1024 * KIB
DEFAULT_EXTENT_BYTES = 256 * KIB
"""The largest data payload of one event (tracker, scan, processor): `Settings.extent_bytes`'s default."""

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster (`TIDEMARK_BOOTSTRAP`, `TIDEMARK_SECURITY_PROTOCOL`, ...)."""

    model_config = SettingsConfigDict(env_prefix="TIDEMARK_", extra="ignore")

    bootstrap: str | None = Field(
        default=None,
        description="host:port list of an existing cluster; unset means the local broker",
    )
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_endpoint_identification: bool = True

    def client_config(self, bootstrap: str) -> dict[str, Any]:
        """The librdkafka settings shared by producers, consumers and the admin client."""
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = str(self.ssl_ca_location)
        if self.ssl_certificate_location:
            config["ssl.certificate.location"] = str(self.ssl_certificate_location)
        if self.ssl_key_location:
            config["ssl.key.location"] = str(self.ssl_key_location)
        if self.ssl_key_password is not None:
            config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        if not self.ssl_endpoint_identification:
            config["ssl.endpoint.identification.algorithm"] = "none"
        return config


class Settings(BaseSettings):
    """Everything else: where state lives, topic names, size limits."""

    model_config = SettingsConfigDict(env_prefix="TIDEMARK_", extra="ignore")

    state_dir: Path = Field(default=Path(".tidemark"), description="trackers' epochs, local broker, stores")
    kafka_cache: Path = Field(
        default=Path.home() / ".cache" / "tidemark",
        description="where the Maven-assembled Kafka broker is cached (not per state directory)",
    )
    kafka_version: str = "3.9.1"
    topic_prefix: str = Field(default="tidemark", description="topics are named <prefix>.writes etc.")
    extent_bytes: int = Field(
        default=DEFAULT_EXTENT_BYTES, description="largest data payload in one event; larger writes are split"
    )
    message_max_bytes: int = Field(
        default=4 * MIB, description="broker/topic/producer message size limit (must exceed extent_bytes)"
    )
    writes_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, description="how long the writes journal is kept")
    partitions: int = Field(default=3, description="partitions of the per-volume topics")
    replication_factor: int = 1

    def volume_state_dir(self, kind: str, volume: str) -> Path:
        """A per-volume folder under the state directory. Callers validate `volume` first."""
        return self.state_dir / kind / volume


def load() -> tuple[Settings, KafkaSettings]:
    """Settings from the environment, for the CLI and the stages."""
    return Settings(), KafkaSettings()
