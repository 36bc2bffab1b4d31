"""Send input the mirror cannot accept to the dead-letter topic, with the reason.

The record is built by `tidemark.schemas.records.dead_letter`: the raw value cut to a bound, with its whole length
and xxh3, so a dead letter always fits in one message.
"""

from __future__ import annotations

import time

from confluent_kafka import Message, Producer

from tidemark.core.topics import Topics
from tidemark.schemas import records
from tidemark.schemas.codec import default_codec

from ..reading.topic_reader import position

STAGE = "sink.mirror"


def dead_letter(producer: Producer, topics: Topics, msg: Message, reason: str, volume: str | None) -> None:
    partition, offset = position(msg)
    record = records.dead_letter(
        stage=STAGE,
        reason=reason,
        topic=msg.topic() or "",
        partition=partition,
        offset=offset,
        key=msg.key(),
        value=msg.value(),
        volume=volume,
        timestamp=int(time.time() * 1000),
    )
    producer.produce(topics.dead_letters, key=msg.key(), value=default_codec().encode("DeadLetter", record))
    producer.flush(30)
