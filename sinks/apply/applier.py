"""`tidemark mirror`: one process per site applies the change sets of many volumes.

One consumer reads each partition that holds a served volume once, and hands every message to
the `VolumeApplier` of its key; messages of other volumes are dropped without decoding, and no
volume's data is read twice. Per-volume order, idempotence, progress files,
undo-before-blocks, dead letters and MirrorStatus stay per volume
(sinks/apply/volume_applier.py). Offsets are committed under the site's group
`tidemark-mirror-<site>` only so the usual Kafka tooling shows each site's lag: the progress
files decide where each volume resumes. A partition starts at the smallest
resume offset of its volumes; each volume skips what it already applied.

A volume that cannot be served (locked, promoted, resync needed) is reported and left out; the
process fails only when it serves none. A volume whose mirror's `release` file appears (failover
asks for it) is let go: its lock is released and the others go on; with none left, it exits.
A mirror that was away longer than the topic's retention
(its resume offset is below the partition's low watermark, or the next set it needs is gone) is
recorded RESYNC_NEEDED and dropped: only `tidemark resync` brings it back. A full disk is a
waiting state: the volume reports ERROR with the reason, the partition is read again from the
smallest recorded offset of its volumes every `disk_full_retry_s` until the set applies.
With `all_in` (`--all`), every volume in the registry is served and the registry is read again
every `registry_refresh_s`, so volumes registered later join the running process.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from tidemark.core.kafka import KafkaClients
from tidemark.core.kafka_io import wait_for_partitions
from tidemark.core.topics import Topics
from tidemark.core.volumes import read_volumes
from tidemark.exceptions import TidemarkError

from ..exceptions import ChangeSetGapError, ResyncNeededError, SinkError
from ..layout import DEFAULT_SITE, MirrorLayout
from ..reading.key_partitions import key_partitions
from ..reading.topic_reader import position
from ..storage.disk_full import is_disk_full
from ..storage.retention import KEEP_ALL, Retention
from .volume_applier import DiskFull, RunSummary, VolumeApplier

log = logging.getLogger(__name__)

POLL_S = 0.2
LAG_CACHE_S = 1.0
RELEASE_CHECK_S = 0.5

__all__ = ["Applier", "ApplierOptions", "RunSummary", "SiteApplier", "SiteOptions", "group_id", "mirror_path_in"]


@dataclass
class SiteOptions:
    targets: dict[str, Path]  # volume -> its mirror image
    site: str = DEFAULT_SITE
    retention: Retention = KEEP_ALL
    until_rp: int | None = None  # exit once every volume holds this point
    exit_when_idle: float | None = None
    disk_full_retry_s: float = 5.0
    all_in: Path | None = None  # serve every registered volume, its mirror at all_in/<volume>.img
    registry_refresh_s: float = 30.0


@dataclass
class ApplierOptions:
    """The single-volume form: `tidemark mirror --volume V --path P`."""

    volume: str
    path: Path
    site: str = DEFAULT_SITE
    retention: Retention = KEEP_ALL
    until_rp: int | None = None
    exit_when_idle: float | None = None
    disk_full_retry_s: float = 5.0

    def site_options(self) -> SiteOptions:
        return SiteOptions(
            {self.volume: self.path}, self.site, self.retention, self.until_rp, self.exit_when_idle,
            self.disk_full_retry_s,
        )  # fmt: skip


def group_id(site: str) -> str:
    return f"tidemark-mirror-{site}"


def mirror_path_in(folder: Path, volume: str) -> Path:
    """Where `--dir D` (and `--all`) keeps a volume's mirror: D/<volume>.img."""
    return Path(folder) / f"{volume}.img"


@dataclass
class _Partitions:
    """What the loop knows of the partitions it reads."""

    count: int = 0
    at_eof: dict[int, bool] = field(default_factory=dict)
    lag: dict[int, tuple[float, int]] = field(default_factory=dict)  # partition -> (when, offsets behind)


class SiteApplier:
    def __init__(self, clients: KafkaClients, topics: Topics, state_dir: Path, options: SiteOptions) -> None:
        self.clients = clients
        self.topics = topics
        self.state_dir = Path(state_dir)
        self.options = options
        self.summaries: dict[str, RunSummary] = {}
        self.errors: dict[str, TidemarkError] = {}  # volumes left out, and why
        self._volumes: dict[bytes, VolumeApplier] = {}
        self._stacks: dict[str, ExitStack] = {}
        self._parts = _Partitions()
        self._last_activity = time.monotonic()
        self._last_refresh = time.monotonic()
        self._last_release_check = 0.0
        self._consumer: Consumer | None = None

    def run(self, stop: threading.Event) -> dict[str, RunSummary]:
        topic = self.topics.changesets
        with ExitStack() as stack:
            producer = self.clients.producer()
            stack.callback(producer.flush, 30)
            consumer = self.clients.consumer(group_id(self.options.site), **{"enable.partition.eof": True})
            stack.callback(consumer.close)
            self._consumer = consumer
            stack.callback(self._close_all)
            partitions = wait_for_partitions(consumer, topic, stop, f"site {self.options.site}'s mirror")
            if partitions is None:
                return self.summaries
            self._last_activity = self._last_refresh = time.monotonic()  # waiting was not idling
            self._parts.count = len(partitions)
            targets = dict(self.options.targets)
            if self.options.all_in is not None:  # --all: every volume registered now, more later (`_refresh`)
                for name in sorted(read_volumes(self.clients, self.topics)):
                    targets.setdefault(name, mirror_path_in(self.options.all_in, name))
            joined = self._join(targets.items(), producer)
            self._assign(consumer, rewind=set())
            self._check_retention(consumer, joined)
            for volume in list(self._volumes.values()):
                volume.status(force=True)
            while not stop.is_set() and not self._done():
                msg = consumer.poll(POLL_S)
                if msg is not None:
                    self._on_message(msg, consumer, stop)
                for volume in list(self._volumes.values()):
                    volume.status()
                self._release_asked(consumer)
                self._refresh(consumer, producer)
            for volume in list(self._volumes.values()):
                volume.status(force=True)
        return self.summaries

    # -- volumes -----------------------------------------------------------------------------
    def _join(self, targets: Iterable[tuple[str, Path]], producer: Producer) -> list[VolumeApplier]:
        """Open each target; one that cannot be served is recorded in `errors` and left out."""
        joined: list[VolumeApplier] = []
        for name, path in targets:
            stack = ExitStack()
            try:
                layout = MirrorLayout.of(self.state_dir, self.options.site, name)
                layout.release.unlink(missing_ok=True)  # left by a failover that did not finish
                volume = stack.enter_context(
                    VolumeApplier.opened(
                        self.clients, self.topics, layout, Path(path), self.options.retention, producer
                    )
                )
                partition = volume.partition
                if partition is not None and partition >= self._parts.count:
                    raise SinkError(
                        f"{self.topics.changesets} has no partition {partition} recorded by the mirror of {name!r}"
                    )
            except TidemarkError as exc:
                stack.close()
                self._left_out(name, exc)
                continue
            volume.lag_events = functools.partial(self._lag_of, volume)
            self._stacks[name] = stack
            self._volumes[volume.key] = volume
            self.summaries[name] = volume.summary
            joined.append(volume)
            log.info("site %s: mirroring volume %s to %s", self.options.site, name, path)
        if not self._volumes and self.errors:
            raise next(iter(self.errors.values()))
        return joined

    def _left_out(self, name: str, exc: TidemarkError) -> None:
        log.error("site %s: volume %s is not mirrored: %s", self.options.site, name, exc)
        self.errors[name] = exc
        self.summaries.setdefault(name, RunSummary())

    def _drop(self, volume: VolumeApplier, exc: TidemarkError) -> None:
        """Stop serving one volume (its mirror needs a resync); raise once none is left."""
        self._volumes.pop(volume.key, None)
        self._stacks.pop(volume.volume).close()
        self._left_out(volume.volume, exc)
        if not self._volumes:
            raise exc

    def _release_asked(self, consumer: Consumer) -> None:
        """Let go of the volumes whose `release` file appeared (`tidemark failover`)."""
        now = time.monotonic()
        if now - self._last_release_check < RELEASE_CHECK_S:
            return
        self._last_release_check = now
        released = [v for v in self._volumes.values() if v.mirror.layout.release.exists()]
        for volume in released:
            log.info("site %s: letting go of volume %s, as asked", self.options.site, volume.volume)
            self._volumes.pop(volume.key)
            self._stacks.pop(volume.volume).close()
        if released and self._volumes:
            self._assign(consumer, rewind=set())

    def _close_all(self) -> None:
        for name in list(self._stacks):
            self._stacks.pop(name).close()

    def _refresh(self, consumer: Consumer, producer: Producer) -> None:
        """--all: volumes registered since the last look join the running process."""
        folder = self.options.all_in
        if folder is None or time.monotonic() - self._last_refresh < self.options.registry_refresh_s:
            return
        self._last_refresh = time.monotonic()
        known = set(self.summaries)
        registered = sorted(read_volumes(self.clients, self.topics))
        new = [(name, mirror_path_in(folder, name)) for name in registered if name not in known]
        if not new:
            return
        joined = self._join(new, producer)
        self._assign(consumer, rewind={p for v in joined for p in self._partitions(v)})
        self._check_retention(consumer, joined)

    # -- partitions --------------------------------------------------------------------------
    def _partitions(self, volume: VolumeApplier) -> list[int]:
        partition = volume.partition
        return [partition] if partition is not None else key_partitions(volume.volume, self._parts.count)

    def _assign(self, consumer: Consumer, rewind: set[int]) -> None:
        """Read the partitions of the served volumes. A partition in `rewind` (or new) starts at
        the smallest resume offset of its volumes, which then receive their open set again."""
        topic = self.topics.changesets
        current = {tp.partition: tp.offset for tp in consumer.position(consumer.assignment())}
        starts: dict[int, int] = {}
        for volume in self._volumes.values():
            for partition in self._partitions(volume):
                resume = volume.resume_offset if volume.partition == partition else None
                start = OFFSET_BEGINNING if resume is None else resume
                starts[partition] = min(starts.get(partition, start), start)
        for partition in starts:
            if partition not in rewind and current.get(partition, -1) >= 0:
                starts[partition] = current[partition]
            else:
                for volume in self._volumes.values():
                    if partition in self._partitions(volume):
                        volume.forget_open_set()
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in sorted(starts.items())])
        self._parts.at_eof = {p: False for p in starts}

    def _check_retention(self, consumer: Consumer, volumes: list[VolumeApplier]) -> None:
        """A resume offset below the low watermark: retention deleted events this mirror needed."""
        for volume in volumes:
            state = volume.mirror.progress
            if state.partition is None or state.next_offset is None:
                continue
            tp = TopicPartition(self.topics.changesets, state.partition)
            low, _ = consumer.get_watermark_offsets(tp, timeout=10.0)
            if state.next_offset >= low:
                continue
            volume.mirror.mark_resync_needed(
                f"the mirror resumes at offset {state.next_offset} of {self.topics.changesets}"
                f"[{state.partition}] (after change set {state.changeset_id}) but the partition now "
                f"starts at offset {low}: change sets it needed were deleted by retention while it was offline"
            )
            self._resync_needed(volume)

    def _resync_needed(self, volume: VolumeApplier) -> None:
        volume.resync_needed()
        try:
            volume.mirror.require_not_resync_needed()
        except ResyncNeededError as exc:
            self._drop(volume, exc)

    # -- messages ----------------------------------------------------------------------------
    def _on_message(self, msg: Message, consumer: Consumer, stop: threading.Event) -> None:
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._parts.at_eof[msg.partition() or 0] = True
                return
            if error.retriable() or not error.fatal():
                log.warning("consumer error on %s: %s", self.topics.changesets, error)
                return
            raise SinkError(f"consuming {self.topics.changesets} failed: {error}")
        partition, offset = position(msg)
        self._parts.at_eof[partition] = False
        volume = self._volumes.get(msg.key() or b"")
        if volume is None or partition not in self._partitions(volume) or volume.already_applied(partition, offset):
            return
        self._last_activity = time.monotonic()
        learning = volume.partition is None
        try:
            applied = volume.handle(msg)
        except ChangeSetGapError:
            self._resync_needed(volume)
            return
        except DiskFull as full:
            self._disk_full(volume, full, partition, consumer, stop)
            return
        if applied is None:
            return
        consumer.commit(offsets=[TopicPartition(self.topics.changesets, partition, offset + 1)], asynchronous=True)
        if learning:  # the volume's partition is now known: stop reading the other candidate
            self._assign(consumer, rewind=set())
        volume.status(force=applied.rp_id is not None)

    def _disk_full(
        self, volume: VolumeApplier, full: DiskFull, partition: int, consumer: Consumer, stop: threading.Event
    ) -> None:
        """Wait until the undo store opens again, then read the partition again from the
        smallest recorded offset of its volumes (the set that met the full disk comes again)."""
        log.error("%s; retrying every %.1f s", full.reason, self.options.disk_full_retry_s)
        self._assign(consumer, rewind={partition})
        while not stop.wait(self.options.disk_full_retry_s):
            try:
                volume.mirror.reopen_undo()
                return
            except Exception as again:  # rocksdict raises plain Exception
                if not is_disk_full(again):
                    raise
                log.error("volume %s: still no space for the undo store: %s", volume.volume, again)

    def _lag_of(self, volume: VolumeApplier) -> int:
        return sum(self._partition_lag(p) for p in self._partitions(volume))

    def _partition_lag(self, partition: int) -> int:
        """Offsets not yet consumed (cached for a second). The processor writes in transactions,
        so the partition's last offset is usually a commit marker no consumer sees: one is not lag.

        The watermarks are the ones the consumer's last fetch brought (`cached=True`), never a
        request to the broker: this runs between two change sets, and a broker slow to answer held
        the next set's apply for up to the request's timeout (figure 3's RPO tail). Before the
        first fetch they are unknown, and the last known lag stands."""
        now = time.monotonic()
        cached = self._parts.lag.get(partition)
        if cached is not None and now - cached[0] < LAG_CACHE_S:
            return cached[1]
        lag = cached[1] if cached is not None else 0
        tp = TopicPartition(self.topics.changesets, partition)
        try:
            assert self._consumer is not None, "lag is asked only while the loop runs"
            consumer_position = self._consumer.position([tp])[0].offset
            low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                lag = max(0, high - consumer_position - 1) if consumer_position >= 0 else max(0, high - max(low, 0))
        except Exception as exc:  # confluent_kafka raises KafkaException for an unknown partition
            log.warning("cannot read watermarks of %s: %s", self.topics.changesets, exc)
        self._parts.lag[partition] = (now, lag)
        return lag

    def _done(self) -> bool:
        if not self._volumes and self.options.all_in is None:
            return True  # every volume was let go
        until = self.options.until_rp
        if until is not None and all(v.holds(until) for v in self._volumes.values()):
            return True
        idle = self.options.exit_when_idle
        return idle is not None and all(self._parts.at_eof.values()) and time.monotonic() - self._last_activity >= idle


class Applier:
    """One volume, the original form; runs a SiteApplier serving just that volume."""

    def __init__(self, clients: KafkaClients, topics: Topics, state_dir: Path, options: ApplierOptions) -> None:
        self.options = options
        self.site = SiteApplier(clients, topics, state_dir, options.site_options())

    @property
    def summary(self) -> RunSummary:
        return self.site.summaries.get(self.options.volume) or RunSummary()

    def run(self, stop: threading.Event) -> RunSummary:
        return self.site.run(stop).get(self.options.volume) or RunSummary()
