"""Send input the mirror cannot accept to the dead-letter topic, whole, with the reason."""

from __future__ import annotations

import time

from confluent_kafka import Message, Producer

from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec

STAGE = "sink.mirror"


def dead_letter(producer: Producer, topics: Topics, msg: Message, reason: str, volume: str | None) -> None:
    record = {
        "stage": STAGE,
        "reason": reason,
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": msg.key(),
        "value": msg.value() or b"",
        "volume": volume,
        "timestamp": int(time.time() * 1000),
    }
    producer.produce(topics.dead_letters, key=msg.key(), value=default_codec().encode("DeadLetter", record))
    producer.flush(30)
