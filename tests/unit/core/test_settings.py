"""TIDEMARK_* environment variables become settings and librdkafka configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tidemark.core.settings import KafkaSettings, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Each test sees only the TIDEMARK_* variables it sets."""
    import os

    for name in list(os.environ):
        if name.startswith("TIDEMARK_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_plaintext_by_default(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TIDEMARK_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    kafka = KafkaSettings()
    assert kafka.bootstrap == "kafka-1:9092,kafka-2:9092"
    assert kafka.client_config(kafka.bootstrap) == {
        "bootstrap.servers": "kafka-1:9092,kafka-2:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_no_bootstrap_means_the_local_broker() -> None:
    assert KafkaSettings().bootstrap is None


def test_sasl_ssl_is_passed_through_to_librdkafka(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    for name, value in {
        "TIDEMARK_SECURITY_PROTOCOL": "SASL_SSL",
        "TIDEMARK_SASL_MECHANISM": "SCRAM-SHA-512",
        "TIDEMARK_SASL_USERNAME": "replicator",
        "TIDEMARK_SASL_PASSWORD": "s3cret",
        "TIDEMARK_SSL_CA_LOCATION": str(ca),
        "TIDEMARK_SSL_CERTIFICATE_LOCATION": str(cert),
        "TIDEMARK_SSL_KEY_LOCATION": str(key),
        "TIDEMARK_SSL_KEY_PASSWORD": "keypass",
        "TIDEMARK_SSL_ENDPOINT_IDENTIFICATION": "false",
    }.items():
        clean_env.setenv(name, value)
    config = KafkaSettings().client_config("broker:9093")
    assert config == {
        "bootstrap.servers": "broker:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "replicator",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(ca),
        "ssl.certificate.location": str(cert),
        "ssl.key.location": str(key),
        "ssl.key.password": "keypass",
        "ssl.endpoint.identification.algorithm": "none",
    }


def test_secrets_do_not_show_in_repr(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TIDEMARK_SASL_PASSWORD", "s3cret")
    clean_env.setenv("TIDEMARK_SSL_KEY_PASSWORD", "keypass")
    text = repr(KafkaSettings())
    assert "s3cret" not in text and "keypass" not in text


def test_unknown_security_protocol_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TIDEMARK_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValidationError, match="security_protocol"):
        KafkaSettings()


def test_settings_from_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("TIDEMARK_STATE_DIR", str(tmp_path / "state"))
    clean_env.setenv("TIDEMARK_TOPIC_PREFIX", "site-a")
    clean_env.setenv("TIDEMARK_MESSAGE_MAX_BYTES", "8388608")
    clean_env.setenv("TIDEMARK_WRITES_RETENTION_MS", "3600000")
    clean_env.setenv("TIDEMARK_PARTITIONS", "6")
    settings = Settings()
    assert settings.state_dir == tmp_path / "state"
    assert settings.topic_prefix == "site-a"
    assert settings.message_max_bytes == 8 * 1024 * 1024
    assert settings.writes_retention_ms == 3_600_000
    assert settings.partitions == 6
    assert settings.volume_state_dir("trackers", "vol1") == tmp_path / "state" / "trackers" / "vol1"


def test_defaults_keep_events_under_the_message_limit() -> None:
    settings = Settings()
    assert settings.state_dir == Path(".tidemark")
    assert settings.topic_prefix == "tidemark"
    assert settings.extent_bytes < settings.message_max_bytes
