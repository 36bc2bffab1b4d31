"""One volume's share of a `tidemark mirror` process: its mirror, its stream, its status.

The site's loop (sinks/apply/applier.py) reads the change-set partitions once and hands each
message keyed by this volume to `handle`. Per applied set: undo saved (synced) -> mirror written and
fsynced -> progress saved (all in Mirror.apply) -> offset committed -> MirrorStatus published.
The progress file, not the committed offset, decides where to resume (a revert moves it back),
so a message below the recorded `next_offset` of the volume's partition is skipped undecoded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Message, Producer

from tidemark.core.kafka import KafkaClients
from tidemark.core.metrics import StageMetrics
from tidemark.core.topics import Topics
from tidemark.core.volumes import lookup_volume
from tidemark.schemas.exceptions import DecodeError
from tidemark.schemas.topic_records import Topic, decode_on

from ..exceptions import ChangeSetGapError, InvalidChangeSetError, MirrorDiskFullError, PromotedMirrorError
from ..layout import MirrorLayout, exclusive
from ..mirror import Mirror
from ..reading.topic_reader import position
from ..status import publish_status, status_record
from ..storage.disk_full import is_disk_full
from ..storage.progress import ERROR, REPLICATING
from ..storage.retention import Retention
from ..stream_applier import Applied, StreamApplier
from .applier_stop import APPLIER_PURPOSE
from .dead_letters import dead_letter

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 1.0
HEARTBEAT_INTERVAL_S = 10.0


@dataclass
class RunSummary:
    changesets: int = 0
    bytes: int = 0
    dead_letters: int = 0
    expired: list[int] = field(default_factory=list)
    changeset_id: int = 0
    rp_id: int | None = None
    disk_full: int = 0  # change sets that met a full disk (each was applied again later)


class DiskFull(Exception):
    """Raised by `handle` when the set met a full disk: the loop waits, then re-reads it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VolumeApplier:
    """The applier state of one volume; holds the mirror's lock while open."""

    def __init__(self, mirror: Mirror, retention: Retention, producer: Producer, topics: Topics) -> None:
        self.mirror = mirror
        self.volume = mirror.layout.volume
        self.key = self.volume.encode()
        self.retention = retention
        self.producer = producer
        self.topics = topics
        self.stream = StreamApplier(mirror, self.volume, mirror.layout.spool)
        self.summary = RunSummary()
        self.metrics = StageMetrics("mirror", self.volume)
        self.lag_events: Callable[[], int] = lambda: 0  # the loop sets it: offsets not yet consumed
        self._last_status = 0.0
        self._changed = False

    @classmethod
    @contextmanager
    def opened(
        cls, clients: KafkaClients, topics: Topics, layout: MirrorLayout, path: Path, retention: Retention,
        producer: Producer,
    ) -> Iterator[VolumeApplier]:  # fmt: skip
        """Lock the mirror, open (or create) it and check it may apply; closes it all on exit."""
        with ExitStack() as stack:
            stack.enter_context(exclusive(layout, APPLIER_PURPOSE))
            spec = lookup_volume(clients, topics, layout.volume)
            mirror = stack.enter_context(Mirror.create_or_open(layout, path, spec.size, spec.block_size))
            mirror.require_not_reverting()
            mirror.require_not_promoted(APPLIER_PURPOSE)
            mirror.require_not_resync_needed()
            if spec.primary_site == layout.site:
                raise PromotedMirrorError(
                    f"cannot {APPLIER_PURPOSE}: site {layout.site!r} is the primary of volume "
                    f"{layout.volume!r} (generation {spec.generation}); its copy is the production disk. "
                    f"Fail back (`tidemark failback --volume {layout.volume} --site {layout.site} ...`) "
                    "or fail over to another site first"
                )
            mirror.progress.state = REPLICATING
            applier = cls(mirror, retention, producer, topics)
            stack.callback(applier.stream.close)
            applier.summary.expired += mirror.expire(retention, _now_ms())
            yield applier
            applier.summary.changeset_id = mirror.progress.changeset_id
            applier.summary.rp_id = mirror.progress.rp_id

    @property
    def partition(self) -> int | None:
        return self.mirror.progress.partition

    @property
    def resume_offset(self) -> int | None:
        """Where this volume's stream goes on: right after its last applied seal (None: the start)."""
        return self.mirror.progress.next_offset

    def already_applied(self, partition: int, offset: int) -> bool:
        state = self.mirror.progress
        return state.partition == partition and state.next_offset is not None and offset < state.next_offset

    def handle(self, msg: Message) -> Applied | None:
        """Decode and apply one message of this volume. Raises ResyncNeededError on a gap and
        DiskFull on a full disk; bad input goes to dead letters here."""
        partition, offset = position(msg)
        try:
            record_type, record = decode_on(Topic.CHANGESETS, msg.value() or b"")
            applied = self.stream.handle(record_type, record, partition, offset)
        except ChangeSetGapError:
            self.resync_needed()
            raise
        except (MirrorDiskFullError, OSError) as exc:
            if not is_disk_full(exc):
                raise
            raise DiskFull(self._disk_full_reason(exc)) from exc
        except (DecodeError, InvalidChangeSetError) as exc:
            log.error("dead letter at %s[%d]@%d: %s", msg.topic(), partition, offset, exc)
            dead_letter(self.producer, self.topics, msg, str(exc), self.volume)
            self.summary.dead_letters += 1
            self.metrics.dead_letter()
            self.status(force=True)
            return None
        if applied is not None:
            self._after_apply(applied)
        return applied

    def resync_needed(self) -> None:
        """Report RESYNC_NEEDED (already recorded in the progress); the caller drops the volume."""
        log.error("volume %s: %s", self.volume, self.mirror.progress.message)
        self.status(force=True)
        self.producer.flush(30)

    def _disk_full_reason(self, exc: BaseException) -> str:
        state = self.mirror.progress
        reason = (
            str(exc)
            if isinstance(exc, MirrorDiskFullError)
            else (
                f"disk full while receiving change set {self.stream.applied + 1} of volume "
                f"{self.volume!r} into {self.mirror.layout.spool}: {exc}; free space on that "
                f"filesystem, the mirror stays at change set {state.changeset_id}"
            )
        )
        self.summary.disk_full += 1
        state.state, state.message = ERROR, reason  # in memory only: the disk is full
        self.status(force=True)
        return reason

    def forget_open_set(self) -> None:
        """The partition is read again from an earlier offset: the open set arrives again whole."""
        self.stream.buffer.reset()
        self.stream.blocked_at = None

    def _after_apply(self, applied: Applied) -> None:
        self.summary.changesets += 1
        self._changed = True
        self.summary.bytes += applied.bytes
        self.metrics.handled(1, applied.bytes)
        self.metrics.lag(time.time() - applied.sealed_at / 1000)
        if applied.rp_id is not None:
            self.metrics.recovery_point()
            self.summary.expired += self.mirror.expire(self.retention, _now_ms())
            log.info("volume %s: recovery point %d complete", self.volume, applied.rp_id)

    def status(self, force: bool = False) -> None:
        """Publish after a new recovery point or an error at once, after other sets at most 1/s."""
        now = time.monotonic()
        elapsed = now - self._last_status
        due = elapsed >= HEARTBEAT_INTERVAL_S or (self._changed and elapsed >= STATUS_INTERVAL_S)
        if not (force or due):
            return
        self._last_status, self._changed = now, False
        lag_events = self.lag_events()
        sealed_at = self.mirror.progress.sealed_at
        lag_seconds = 0.0 if lag_events == 0 or sealed_at is None else max(0.0, time.time() - sealed_at / 1000)
        publish_status(self.producer, self.topics, status_record(self.mirror.progress, lag_events, lag_seconds))

    def holds(self, rp_id: int) -> bool:
        return (self.mirror.progress.rp_id or 0) >= rp_id


def _now_ms() -> int:
    return int(time.time() * 1000)
