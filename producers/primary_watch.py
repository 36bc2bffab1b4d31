"""One primary at a time, the tracker's part: which generation and site a tracker writes for, and
when the registry says it no longer may.

The registry (`tidemark.volumes`, compacted, keyed by volume) names each volume's primary
`generation` and `primary_site` (None: the original primary). A tracker takes the generation it
finds at start and stamps it on every BlockWrite and Marker. It is fenced (stops accepting
writes) once the registry shows either
- a newer generation (a failover bumped it), or
- a named `primary_site` other than the tracker's own site.
A record of an older or equal generation naming the tracker's site (or none) changes nothing.

`PrimaryWatch` reads the registry topic from its start with one consumer: first up to the end (the
volume's current primary, at start), then it keeps tailing in its own thread and calls
`on_fenced(reason)` once. A tracker started while Kafka was unreachable (from its copy of the
registry record, `registry_copy`) starts the watch without that first read: the watch's thread
tries it every `CATCH_UP_RETRY_S` until Kafka answers, fences the tracker if the record moved on
meanwhile, and tails from there. `fence_reason` and `start_refusal` are the pure rules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicPartition

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.exceptions import TidemarkError
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError
from tidemark.schemas.topic_records import Topic, decode_on

from .exceptions import TrackerError

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
CATCH_UP_RETRY_S = 5.0  # between reads of the registry while Kafka does not answer
CATCH_UP_READ_S = 15.0  # the limit of one such read (metadata, watermarks, records)
CATCH_UP_LOG_S = 60.0  # how often a watch still waiting for Kafka says so
STOP_WAIT_S = 5.0  # then a stop leaves a read in progress to close the consumer when it ends


class NotPrimaryError(TrackerError):
    """The registry names another site as the volume's primary: this tracker may not start."""


@dataclass(frozen=True)
class Primary:
    """A volume's primary as the registry names it."""

    generation: int = 0
    site: str | None = None

    def describe(self) -> str:
        return f"generation {self.generation} at " + (f"site {self.site!r}" if self.site else "the original primary")


def fence_reason(volume: str, own: Primary, seen: Primary) -> str | None:
    """Why a tracker writing as `own` must stop, given the registry's `seen` record; None: it may go on."""
    if seen.generation > own.generation:
        return (
            f"volume {volume}: the registry moved the primary to {seen.describe()} (this tracker writes "
            f"{own.describe()}), so a failover happened; writes are refused from now on. Stop this tracker; "
            "to protect this copy again, fail back or re-protect it under the new generation"
        )
    if seen.site is not None and seen.site != own.site:
        return (
            f"volume {volume}: the registry names site {seen.site!r} as the primary, not this tracker's "
            f"site {own.site!r}; writes are refused from now on. Stop this tracker, or run it at {seen.site!r}"
        )
    return None


def start_refusal(volume: str, site: str | None, current: Primary) -> str | None:
    """Why a tracker for `site` may not start (None: it may); `site` None means the current primary."""
    if site is None or current.site is None or current.site == site:
        return None
    return (
        f"volume {volume}: its primary is site {current.site!r} ({current.describe()}), not {site!r}; "
        f"start the tracker at {current.site!r}, or fail over to {site!r} first"
    )


class PrimaryWatch:
    """Reads the registry records of one volume, then tails them in a daemon thread."""

    def __init__(self, clients: KafkaClients, topics: Topics, volume: str) -> None:
        self.volume = volume
        self._topic = topics.volumes
        self._key = volume.encode()
        self._codec = default_codec()
        self._consumer = clients.consumer(f"tidemark-primary-watch-{volume}-{time.monotonic_ns()}")
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._caught_up = False
        self._close_lock = threading.Lock()
        self._closed = False

    def current(self, timeout: float = 30.0) -> Primary:
        """The volume's primary after reading the registry to its current end (default if no
        record); the tail (`start`) goes on from that end."""
        consumer, topic = self._consumer, self._topic
        primary = Primary()
        try:
            parts = kafka_io.topic_partitions(consumer, topic, timeout)
            bounds = {p: kafka_io.watermarks(consumer, topic, p, timeout) for p in parts}
            starts = {p: low for p, (low, _high) in bounds.items()}
            ends = {p: high for p, (_low, high) in bounds.items()}
            for msg in kafka_io.read_to_end(consumer, topic, starts, ends, timeout=timeout, stall=None):
                primary = self._parse(msg.key(), msg.value()) or primary
            consumer.assign([TopicPartition(topic, p, end) for p, end in ends.items()])
        except KafkaException as exc:
            raise TrackerError(f"volume {self.volume}: cannot read the registry {topic}: {exc}") from exc
        self._caught_up = True
        return primary

    def start(self, own: Primary, on_fenced: Callable[[str], None]) -> None:
        """Tail the registry after `current` (or after reading it once Kafka answers, when `current`
        was not called); call `on_fenced(reason)` once, then stop tailing."""
        self._thread = threading.Thread(
            target=self._run, args=(own, on_fenced), name=f"primary-watch-{self.volume}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the tail; the consumer is closed here, or by the thread if it is still in a read."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT_S)
            if self._thread.is_alive():
                log.warning("volume %s: the registry watch did not stop within %.0f s", self.volume, STOP_WAIT_S)
                return
        self._close()

    def _close(self) -> None:
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._consumer.close()

    def _run(self, own: Primary, on_fenced: Callable[[str], None]) -> None:
        try:
            if not self._caught_up:
                seen = self._catch_up()
                if seen is None:
                    return
                reason = fence_reason(self.volume, own, seen)
                if reason is not None:
                    on_fenced(reason)
                    return
                log.info("volume %s: Kafka answered; the registry still names %s", self.volume, seen.describe())
            self._tail(own, on_fenced)
        finally:
            if self._stopping.is_set():  # stop() may have given up waiting for this thread
                self._close()

    def _catch_up(self) -> Primary | None:
        """`current`, tried until Kafka answers and the registry reads to its end; None when stopped
        first. Whatever a read raises is tried again: this watch is what fences the tracker."""
        since = logged = time.monotonic()
        while not self._stopping.is_set():
            try:
                return self.current(CATCH_UP_READ_S)
            except Exception as exc:  # a missing topic or no leader while the cluster comes back, too
                if time.monotonic() - logged >= CATCH_UP_LOG_S:
                    logged = time.monotonic()
                    log.warning(
                        "volume %s: the registry still cannot be read after %.0f s (%s); this tracker "
                        "keeps writing as the registry record kept at its start says",
                        self.volume, logged - since, exc,
                        exc_info=not isinstance(exc, TidemarkError),
                    )  # fmt: skip
            self._stopping.wait(CATCH_UP_RETRY_S)
        return None

    def _tail(self, own: Primary, on_fenced: Callable[[str], None]) -> None:
        while not self._stopping.is_set():
            msg = self._consumer.poll(POLL_SECONDS)
            if msg is None or msg.error():
                continue
            seen = self._parse(msg.key(), msg.value())
            reason = None if seen is None else fence_reason(self.volume, own, seen)
            if reason is not None:
                on_fenced(reason)
                return

    def _parse(self, key: bytes | None, value: bytes | None) -> Primary | None:
        """This volume's record as a Primary; None for other volumes, tombstones and undecodable values."""
        if key != self._key or value is None:
            return None
        try:
            _, record = decode_on(Topic.VOLUMES, value, self._codec)
        except DecodeError:
            return None
        return Primary(int(record.get("generation") or 0), record.get("primary_site"))
