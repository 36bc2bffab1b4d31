"""`wait_for_partitions` waits for an unreachable cluster but not for one that refuses the login:
the two are told apart by the librdkafka error behind the metadata failure."""

from __future__ import annotations

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException

from tidemark.core import kafka_io
from tidemark.core.exceptions import KafkaError


def _metadata_failure(code: int) -> KafkaError:
    """The error `topic_partitions` raises, with librdkafka's exception behind it."""
    try:
        try:
            raise KafkaException(RdKafkaError(code))
        except KafkaException as exc:
            raise KafkaError("cannot read the metadata of topic t; is the broker up?") from exc
    except KafkaError as error:
        return error


def test_a_refused_login_is_told_apart_from_an_unreachable_cluster() -> None:
    assert kafka_io.refused(_metadata_failure(RdKafkaError._AUTHENTICATION))
    assert kafka_io.refused(_metadata_failure(RdKafkaError.SASL_AUTHENTICATION_FAILED))
    assert not kafka_io.refused(_metadata_failure(RdKafkaError._TRANSPORT))
    assert not kafka_io.refused(_metadata_failure(RdKafkaError._TIMED_OUT))
    assert not kafka_io.refused(KafkaError("no librdkafka error behind it"))
