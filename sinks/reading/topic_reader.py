"""The sinks' reads of a topic once, from a start to its end, over `tidemark.core.kafka_io`.

`read_messages` reads a whole small metadata topic (volumes, mirror status) within READ_TIMEOUT_S.
`read_partitions` reads only some partitions (a volume's, see key_partitions) of a topic of any
size: it has no overall time limit, only a stall limit (nothing read for kafka_io.STALL_S seconds). Both end
at the offsets present when the read starts (the last stable offset, under read_committed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from confluent_kafka import Consumer, Message, Producer

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from ..exceptions import SinkError

READ_TIMEOUT_S = 60.0


def partitions_of(client: Consumer | Producer, topic: str) -> list[int]:
    return kafka_io.topic_partitions(client, topic)


def read_messages(clients: KafkaClients, topic: str, key: str | None = None) -> Iterator[Message]:
    """Every message of `topic` (with that key, if given) present when the call starts."""
    wanted = key.encode() if key is not None else None
    for msg in kafka_io.read_topic(clients, topic, timeout=READ_TIMEOUT_S, stall=None):
        if wanted is None or msg.key() == wanted:
            yield msg


def read_records(
    clients: KafkaClients, topic: str, record_type: str, key: str | None = None
) -> Iterator[dict[str, Any]]:
    """Decoded records of one type; undecodable messages are skipped (the stages dead-letter them)."""
    codec = default_codec()
    for msg in read_messages(clients, topic, key):
        value = msg.value()
        if value is None:
            continue
        try:
            found, record = codec.decode(value)
        except DecodeError:
            continue
        if found == record_type:
            yield record


def position(msg: Message) -> tuple[int, int]:
    """(partition, offset) of a consumed message (never None for one without an error)."""
    partition, offset = msg.partition(), msg.offset()
    if partition is None or offset is None:
        raise SinkError(f"a message of {msg.topic()} without a partition or an offset")
    return partition, offset


def reader_consumer(clients: KafkaClients) -> Consumer:
    """A throwaway consumer (no commits) that reports partition EOF."""
    return kafka_io.reader(clients, "reader")


def read_partitions(
    consumer: Consumer, topic: str, starts: Mapping[int, int], ends: Mapping[int, int] | None = None
) -> Iterator[Message]:
    """Messages of the partitions in `starts` (partition -> first offset, or OFFSET_BEGINNING),
    each up to the offset in `ends` (excluded), by default its end when the read starts."""
    return kafka_io.read_to_end(consumer, topic, starts, ends)
