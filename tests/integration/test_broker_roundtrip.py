"""Every tidemark event goes through the real broker with the codec and comes back equal."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from typing import Any

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType
from fastavro.utils import generate_one

from tidemark.schemas.codec import bundled_schemas, default_codec

from ..conftest import CliRunner, TidemarkTest

pytestmark = pytest.mark.integration

DELIVERY_LIMIT_S = 60.0


def _topic_for(tm: TidemarkTest, record_type: str) -> str:
    design = {
        "Volume": tm.topics.volumes,
        "BlockWrite": tm.topics.writes,
        "Marker": tm.topics.writes,
        "Extent": tm.topics.changesets,
        "ChangeSetSealed": tm.topics.changesets,
        "RecoveryPoint": tm.topics.recovery_points,
        "MirrorStatus": tm.topics.mirror_status,
        "VolumeMetrics": tm.topics.metrics,
        "DeadLetter": tm.topics.dead_letters,
    }
    return design.get(record_type, tm.topics.dead_letters)


def _samples() -> list[tuple[str, dict[str, Any]]]:
    """Three random records of every bundled schema, so a new schema is covered without an edit."""
    return [(schema["name"], generate_one(schema)) for schema in bundled_schemas() for _ in range(3)]


def _large_block_write(tm: TidemarkTest, size: int) -> dict[str, Any]:
    return {
        "volume": "vol-large", "epoch": 1, "seq": 7, "timestamp": 1_700_000_000_000_000,
        "offset": 0, "length": size, "op": "WRITE", "compression": "NONE",
        "data": bytes(range(256)) * (size // 256), "checksum": b"\x00" * 8, "generation": 0,
    }  # fmt: skip


def _produce(tm: TidemarkTest, messages: dict[bytes, tuple[str, str, dict[str, Any]]]) -> None:
    codec = default_codec()
    producer = tm.clients.producer()
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(f"{msg.topic()}: {err}")

    for key, (topic, record_type, record) in messages.items():
        producer.produce(topic, key=key, value=codec.encode(record_type, record), on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(DELIVERY_LIMIT_S) == 0, "messages still undelivered"
    assert errors == []


def _consume(tm: TidemarkTest, topics: set[str], keys: set[bytes]) -> dict[bytes, tuple[str, dict[str, Any]]]:
    codec = default_codec()
    consumer = tm.clients.consumer(tm.group("roundtrip"))
    consumer.subscribe(sorted(topics))
    received: dict[bytes, tuple[str, dict[str, Any]]] = {}
    deadline = time.monotonic() + DELIVERY_LIMIT_S
    try:
        while keys - received.keys() and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            key, value = msg.key(), msg.value()
            assert key is not None and value is not None
            received[key] = codec.decode(value)
    finally:
        consumer.close()
    return received


def test_every_record_type_round_trips_through_the_broker(tm: TidemarkTest) -> None:
    samples = _samples()
    assert {name for name, _ in samples} == set(default_codec().record_types)
    samples.append(("BlockWrite", _large_block_write(tm, tm.settings.extent_bytes)))
    messages = {
        uuid.uuid4().bytes: (_topic_for(tm, record_type), record_type, record) for record_type, record in samples
    }
    _produce(tm, messages)
    received = _consume(tm, {topic for topic, _, _ in messages.values()}, set(messages))
    assert received.keys() == messages.keys()
    for key, (_, record_type, record) in messages.items():
        assert received[key] == (record_type, record)


def test_an_event_near_the_message_limit_is_accepted(tm: TidemarkTest) -> None:
    """Broker, topic, producer and consumer limits agree: an event just under the limit passes."""
    size = tm.settings.message_max_bytes - 64 * 1024
    key = uuid.uuid4().bytes
    _produce(tm, {key: (tm.topics.writes, "BlockWrite", _large_block_write(tm, size))})
    received = _consume(tm, {tm.topics.writes}, {key})
    assert received[key][1]["length"] == size
    assert len(received[key][1]["data"]) == size


def _topic_configs(tm: TidemarkTest, names: list[str]) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    admin = tm.clients.admin()  # keep the handle alive until every future is resolved
    futures = admin.describe_configs(resources)
    return {
        resource.name: {key: entry.value for key, entry in future.result(timeout=30).items()}
        for resource, future in futures.items()
    }


def test_topics_create_via_the_cli_is_idempotent_and_configures_topics(tm: TidemarkTest, cli: CliRunner) -> None:
    prefix = f"{tm.prefix}-cli"
    env = {"TIDEMARK_TOPIC_PREFIX": prefix, "TIDEMARK_WRITES_RETENTION_MS": "3600000"}
    first = cli("topics", "create", env=env)
    names = [f"{prefix}.{t}" for t in ("volumes", "writes", "changesets", "recovery-points",
                                        "mirror-status", "metrics", "dead-letters", "alerts",
                                        "tracker-checkpoints", "read-profiles")]  # fmt: skip
    for name in names:
        assert f"created  {name}" in first.stdout
    second = cli("topics", "create", env=env)
    assert "created" not in second.stdout
    assert all(f"exists   {name}" in second.stdout for name in names)

    listed = cli("topics", "list", env=env).stdout
    assert sorted(line.split()[0] for line in listed.splitlines()) == sorted(names)

    configs = _topic_configs(tm, names)
    assert configs[f"{prefix}.volumes"]["cleanup.policy"] == "compact"
    assert configs[f"{prefix}.read-profiles"]["cleanup.policy"] == "compact"
    assert configs[f"{prefix}.writes"]["cleanup.policy"] == "delete"
    assert configs[f"{prefix}.writes"]["retention.ms"] == "3600000"
    for name in names:
        assert configs[name]["max.message.bytes"] == str(tm.settings.message_max_bytes)


def test_kcat_lists_the_topics(tm: TidemarkTest) -> None:
    kcat = shutil.which("kcat")
    assert kcat is not None, "kcat is not installed (Debian: apt-get install kcat)"
    bootstrap = tm.clients.bootstrap
    listing = subprocess.run(
        [kcat, "-L", "-b", bootstrap], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for name in tm.topics.all():
        assert f'topic "{name}"' in listing
