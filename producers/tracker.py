"""The tracker core: every write becomes BlockWrite events, and nothing acknowledged is lost.

Acknowledgement modes (`AckMode`, compare DRBD's protocols A and C):
- `local` (default): a write's future is done once the front end wrote the image and the write's
  region is in the durable activity log (the front end makes FUA and FLUSH durable in the image).
  The events are published asynchronously by the shipper. After a crash the activity log
  republishes every region that may hold unshipped writes, from the image.
- `kafka`: the future is done when Kafka confirmed every event of the write, or, when Kafka is
  unreachable, when its blocks are in the dirty bitmap (published again from the image later).

The hot path per write is: the activity-log check (no I/O for a region already in the log), the
ship window's admission, and an enqueue. The shipper (`shipper.Shipper`) does the rest, in
batches with local acknowledgement (`TrackerOptions.local_batch_pause`); runs of writes from the
NBD server's C path are shipped on its event loop once their replies are out
(`Shipper.ship_queued`). When the
unshipped bytes pass `unshipped_max_bytes` or Kafka is unreachable, writes are only marked in the
dirty bitmap (pull-ahead, `ship_window`), so memory stays bounded whatever the client writes; the
drain of the bitmap yields to a client that keeps writing (`drain_pace`, DRBD's c-min-rate).

Seqs are per volume, gap-free within an epoch and increasing; each start (and each reconnect)
takes a new epoch and continues after the last seq found at the tail of the writes partition.
Without an image there is nothing to publish again from, so such a tracker acknowledges from
Kafka and makes writes wait while the window is full or Kafka is unreachable.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Self

from pyroaring import BitMap

from tidemark.core.blocks import is_aligned
from tidemark.core.exceptions import KafkaAuthenticationError, KafkaError
from tidemark.core.kafka import KafkaClients
from tidemark.core.metrics import StageMetrics
from tidemark.core.settings import DEFAULT_EXTENT_BYTES, MIB, Settings
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec

from . import registry_copy
from .activity_log import DEFAULT_CAPACITY, DEFAULT_REGION_BYTES, ActivityLog
from .control_socket import ControlServer, MarkerRequest
from .dirty_bitmap import DirtyBitmap
from .drain_pace import DEFAULT_MIN_BYTES_PER_S
from .events import Compression, now_micros
from .exceptions import TrackerError
from .image_file import open_volume_image
from .parked_markers import ParkedMarkers
from .primary_watch import NotPrimaryError, Primary, PrimaryWatch, start_refusal
from .ship_window import AtRisk, Mode, ShipWindow
from .shipper import MarkItem, Shipper, ShipperConfig, WriteItem
from .tracker_state import TrackerState

log = logging.getLogger(__name__)
KEEPER_INTERVAL_SECONDS = 1.0
REGISTRY_PROBE_S = 5.0  # how long a start waits for Kafka before it takes the kept registry record
NO_ROOM_WAIT_SECONDS = 0.01


class AckMode(StrEnum):
    LOCAL = "local"
    KAFKA = "kafka"


@dataclass(frozen=True)
class TrackerOptions:
    compression: Compression = Compression.NONE
    extent_bytes: int = DEFAULT_EXTENT_BYTES
    delivery_timeout_ms: int = 10_000
    region_bytes: int = DEFAULT_REGION_BYTES
    al_extents: int = DEFAULT_CAPACITY
    reconnect_interval: float = 1.0
    # librdkafka's queue bound in KiB. Below the unshipped bound on purpose: what waits beyond it
    # stays in the shipper's queue, and a bound as large as the window's took the tracker over
    # 300 MB of resident memory in CI's broker-stop fault test (316 MB against 216 MB).
    queue_max_kbytes: int = 64 * 1024
    ack: AckMode = AckMode.LOCAL
    unshipped_max_bytes: int = 128 * MIB
    # local ack batches events for throughput; kafka ack waits per write, so no linger there.
    local_linger_ms: int = 5
    # local ack: the shipper takes queued writes in batches, and its poll thread looks for
    # delivery reports, at most this often (seconds); see `ShipperConfig.batch_pause` and
    # `report_pause`. It adds at most this much to the unshipped window's age.
    local_batch_pause: float = 0.005
    # local ack with an image: once the ship thread has worked this long without emptying its
    # queue (one batch pause: it is behind the client), it lets go of the interpreter lock after
    # every write it ships (`ShipperConfig.yield_after`).
    local_yield_after: float = 0.005
    # While AHEAD and the client writes faster than this, the drain ships this much a second and
    # leaves the rest of the machine to the client, for up to `drain_pace.MAX_YIELD_S` of a burst.
    drain_min_bytes_per_s: int = DEFAULT_MIN_BYTES_PER_S


class TrackerFencedError(TrackerError):
    """The registry named a newer primary generation or another site: this tracker takes no writes."""


@dataclass
class TrackerStats:
    """A snapshot for status lines and tests."""

    epoch: int
    writes: int
    bytes: int
    events: int
    events_shipped_queued: int  # of `events`, those the NBD server's event loop produced
    markers: int
    markers_parked: int
    dirty_recorded_blocks: int
    resynced_blocks: int
    reconnects: int
    last_seq: int
    mode: str
    at_risk: AtRisk


def _completed() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future


# Returned for every write acknowledged at once: a done future is immutable (callbacks added to it
# run at once and are not kept), so one instance serves every caller without a Condition per write.
_DONE = _completed()


class Tracker:
    """Thread-safe publisher of one volume's writes (implements `tracker_api.WriteTracker`)."""

    def __init__(
        self,
        volume: VolumeSpec,
        clients: KafkaClients,
        topics: Topics,
        state_folder: Path,
        image: Path | None = None,
        options: TrackerOptions | None = None,
        primary: Primary | None = None,
        watch: PrimaryWatch | None = None,
    ) -> None:
        """`primary`: the generation (and site) this tracker writes for, stamped on every event;
        `watch` (read to its end already) fences the tracker when the registry moves on."""
        self.volume = volume
        self.primary = primary or Primary()
        self._watch = watch
        self._fenced: str | None = None
        self.image = image
        self.options = options or TrackerOptions()
        if self.options.extent_bytes % volume.block_size:
            raise TrackerError(
                f"extent size {self.options.extent_bytes} must be a multiple of volume "
                f"{volume.name}'s block size {volume.block_size}"
            )
        self.ack = self.options.ack if image is not None else AckMode.KAFKA
        self.state = TrackerState(state_folder, volume.name)
        self.dirty = DirtyBitmap(state_folder / "dirty.bitmap")
        self.activity = ActivityLog(
            state_folder / "activity.log",
            self.options.region_bytes,
            capacity=self.options.al_extents,
            durable_hook=self._make_durable,
        )
        self.window: ShipWindow[MarkItem] = ShipWindow(self.options.unshipped_max_bytes)
        self.metrics = StageMetrics("tracker", volume.name)
        self._clients = clients
        self._topics = topics
        self._image_fd: int | None = None
        self._shipper: Shipper | None = None
        self._counts_lock = threading.Lock()
        self._writes = 0
        self._bytes = 0
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None
        self._control: ControlServer | None = None

    # -- WriteTracker properties ---------------------------------------------------------------
    @property
    def volume_name(self) -> str:
        return self.volume.name

    @property
    def volume_size(self) -> int:
        return self.volume.size

    @property
    def block_size(self) -> int:
        return self.volume.block_size

    @property
    def acknowledges_locally(self) -> bool:
        return self.ack is AckMode.LOCAL

    @property
    def pulls_ahead(self) -> bool:
        """Local acknowledgement with an image: a client that outruns the shipping goes on at disk
        speed, its writes marked dirty and drained from the image later."""
        return self.ack is AckMode.LOCAL and self.image is not None

    @property
    def connected(self) -> bool:
        return self.window.connected

    @property
    def epoch(self) -> int:
        return self._ship().epoch

    @property
    def fenced(self) -> str | None:
        """Why this tracker refuses writes (a newer generation or another primary site), else None."""
        return self._fenced

    def fence(self, reason: str) -> None:
        """Refuse every write from now on (flush and reads still work); called by the registry watch."""
        if self._fenced is None:
            self._fenced = reason
            log.error("%s", reason)

    @property
    def stats(self) -> TrackerStats:
        ship = self._ship().stats
        with ship.lock:
            return TrackerStats(
                epoch=ship.epoch, writes=self._writes, bytes=self._bytes, events=ship.events,
                events_shipped_queued=ship.events_shipped_queued,
                markers=ship.markers, markers_parked=ship.markers_parked,
                dirty_recorded_blocks=ship.dirty_recorded_blocks, resynced_blocks=ship.resynced_blocks,
                reconnects=ship.reconnects, last_seq=ship.last_seq, mode=self.window.mode.value,
                at_risk=self.at_risk(),
            )  # fmt: skip

    def at_risk(self) -> AtRisk:
        """The unshipped window: what a loss of this host now would take from the mirrors."""
        return self.window.at_risk(self.dirty.unshipped * self.block_size)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Tracker:
        self.state.lock()
        try:
            if self.image is not None:
                self._image_fd = open_volume_image(self.image, self.volume.name, self.volume.size, writable=False)
            self._recover()
        except TrackerError:
            self.state.unlock()
            raise
        self._shipper = Shipper(
            self.volume, self._clients, self._topics, self.state,
            ShipperConfig(
                compression=self.options.compression,
                extent_bytes=self.options.extent_bytes,
                delivery_timeout_ms=self.options.delivery_timeout_ms,
                reconnect_interval=self.options.reconnect_interval,
                queue_max_kbytes=self.options.queue_max_kbytes,
                linger_ms=0 if self.ack is AckMode.KAFKA else self.options.local_linger_ms,
                generation=self.primary.generation,
                batch_pause=0.0 if self.ack is AckMode.KAFKA else self.options.local_batch_pause,
                report_pause=0.0 if self.ack is AckMode.KAFKA else self.options.local_batch_pause,
                drain_min_bytes_per_s=self.options.drain_min_bytes_per_s,
                yield_after=self.options.local_yield_after if self.pulls_ahead else 0.0,
            ),
            self.window, self.dirty, self.activity, self._image_fd,
            ParkedMarkers(self.state.folder / "markers.parked"),
        )  # fmt: skip
        self._shipper.start()
        self._keeper = threading.Thread(target=self._keep, name=f"tracker-keeper-{self.volume.name}", daemon=True)
        self._keeper.start()
        if self._watch is not None:
            self._watch.start(self.primary, self.fence)
        try:
            self._control = ControlServer(self.state.folder, self._requested_marker)
        except OSError as exc:
            log.warning(
                "volume %s: no control socket in %s (%s); `tidemark rp create` writes its markers to Kafka "
                "directly, so a point may miss writes not shipped yet; use a shorter state directory",
                self.volume.name, self.state.folder, exc,
            )  # fmt: skip
        return self

    def _requested_marker(self, request: MarkerRequest) -> None:
        """A marker asked for on the control socket: queued behind every write acknowledged so far."""
        if self._fenced is not None:
            raise TrackerFencedError(self._fenced)
        self.submit_marker(request.kind, request.label).result(timeout=self.options.delivery_timeout_ms / 1000 + 5)
        name, kind, label = self.volume.name, request.kind, request.label
        log.info("volume %s: %s marker %r queued behind every acknowledged write", name, kind, label)

    def _recover(self) -> None:
        """Regions the previous tracker left in the log go to the dirty bitmap, durably."""
        recovered = self.activity.recovered_regions()
        if not recovered:
            return
        per_region = self.options.region_bytes // self.block_size
        blocks = BitMap()
        for region in recovered:
            if region * per_region < self.volume.blocks:  # a region past the end holds nothing
                blocks.add_range(region * per_region, min((region + 1) * per_region, self.volume.blocks))
        log.warning(
            "volume %s: the previous tracker stopped with %d regions in its activity log; "
            "republishing %d blocks from the image",
            self.volume.name, len(recovered), len(blocks),
        )  # fmt: skip
        if self._image_fd is None:
            log.error(
                "volume %s: no image given, so those blocks cannot be republished; resync the mirrors", self.volume.name
            )
        else:
            self.dirty.add(blocks)
            self.dirty.persist()
        self.activity.forget(recovered)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self, timeout: float = 30.0) -> None:
        """Ship what is queued and, while Kafka is reachable, drain the dirty bitmap (all within
        `timeout`), then stop. Regions with unshipped writes stay in the activity log and dirty
        blocks stay in the durable bitmap, for the next start."""
        deadline = time.monotonic() + timeout
        if self._control is not None:
            self._control.close()
        try:
            self.wait_shipped(timeout)
            while self.window.connected and self.window.mode is Mode.AHEAD and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            self._stopping.set()
            if self._watch is not None:
                self._watch.stop()
            if self._keeper is not None:
                self._keeper.join(timeout=5)
            shipper = self._shipper
            if shipper is not None:
                shipper.stop()
                self.state.save_seq_hint(shipper.next_seq - 1)
            self.dirty.persist()
            if not self.activity.close():
                log.warning(
                    "volume %s: stopped with unshipped writes; the next start republishes them", self.volume.name
                )
            if self._image_fd is not None:
                os.close(self._image_fd)
                self._image_fd = None
            self.state.unlock()

    def flush(self, timeout: float = 30.0) -> None:
        """`--ack kafka`: wait until every submitted event is confirmed by Kafka or its blocks are
        dirty. `--ack local`: nothing to wait for (the writes are covered by the activity log)."""
        if self.ack is AckMode.KAFKA:
            self.wait_shipped(timeout)

    def wait_shipped(self, timeout: float) -> None:
        """Wait until every submitted event is confirmed by Kafka or its blocks are dirty."""
        shipper = self._ship()
        deadline = time.monotonic() + timeout
        while not shipper.idle():
            if time.monotonic() > deadline:
                raise TrackerError(
                    f"volume {self.volume.name}: {self.window.unshipped_bytes} bytes still unconfirmed "
                    f"after {timeout} s; is the broker up?"
                )
            time.sleep(0.002)

    # -- the write path ------------------------------------------------------------------------
    def intent(self, offset: int, length: int) -> None:
        self.activity.enter(offset, length)

    def submit_write(self, offset: int, data: bytes) -> Future[None]:
        return self._submit(offset, len(data), "WRITE", data)

    def submit_zero(self, offset: int, length: int) -> Future[None]:
        return self._submit(offset, length, "ZERO", b"")

    def submit_trim(self, offset: int, length: int) -> Future[None]:
        return self._submit(offset, length, "TRIM", b"")

    def submit_marker(self, kind: str, label: str | None = None) -> Future[None]:
        """Queued behind every write submitted before it. `local`: done at once; `kafka`: done when
        Kafka confirmed it, or when it was parked (Kafka unreachable or congested: it is
        published after the drain, in order). A fenced tracker takes no marker (done at once)."""
        if self._fenced is not None:
            return _DONE
        future: Future[None] | None = Future() if self.ack is AckMode.KAFKA else None
        self._ship().queue.put(MarkItem(self.window.ticket(), kind, label, future))
        return future if future is not None else _DONE

    def intent_run(self, ranges: list[tuple[int, int]]) -> None:
        """`intent` of a run of writes, (offset, length) each, at once (the NBD server's C path)."""
        self.activity.enter_all(ranges)

    def submit_writes(self, writes: list[tuple[int, bytes]]) -> int:
        """`submit_write` of a run of writes, (offset, data) each, in order, with local
        acknowledgement only (their futures would be done at once): how many were taken.

        A prefix is taken: the run stops at the first write refused (fenced, or not an aligned
        extent of the volume) and raises when that is the first, or when the activity log cannot
        hold the run's regions (then none counts as taken). The run shares one admission to the
        window, one hold of the activity log, one timestamp and one update of the counts.

        The ship thread is not woken for the run: the caller ships it with `ship_queued` once its
        replies are out (else the ship thread finds it at its next round, within 0.2 s)."""
        if not self.acknowledges_locally:
            raise TrackerError(f"volume {self.volume.name}: a run of writes needs local acknowledgement")
        taken = 0
        for offset, data in writes:
            try:
                if self._fenced is not None:
                    raise TrackerFencedError(self._fenced)
                self._check_range(offset, len(data))
            except TrackerError:
                if taken == 0:
                    raise
                break
            taken += 1
        run = writes[:taken]
        tickets = self.window.admit_all([len(data) for _offset, data in run], lambda ahead: self._mark_run(run, ahead))
        pairs = list(zip(tickets, run, strict=True))
        admitted = [(ticket, offset, data) for ticket, (offset, data) in pairs if ticket is not None]
        if len(admitted) < taken:  # marked dirty (ahead): a touch after the marks (the log's guard, see `_submit`)
            self.activity.enter_all([(offset, len(data)) for ticket, (offset, data) in pairs if ticket is None])
        try:
            self.activity.hold_all([(offset, len(data)) for _ticket, offset, data in admitted])
        except BaseException:
            self.window.shipped(sum(len(data) for _ticket, _offset, data in admitted), [t for t, _o, _d in admitted])
            raise
        put, micros = self._ship().queue.put, now_micros()
        for ticket, offset, data in admitted:
            put(WriteItem(ticket, "WRITE", offset, len(data), data, micros, None), wake=False)
        with self._counts_lock:
            self._writes += taken
            self._bytes += sum(len(data) for _offset, data in run)
        return taken

    def ship_queued(self) -> None:
        """Ship the writes `submit_writes` queued, on the caller's thread (`Shipper.ship_queued`)."""
        self._ship().ship_queued()

    def _mark_run(self, run: list[tuple[int, bytes]], ahead: list[int]) -> None:
        """`ShipWindow.admit_all`'s `on_ahead`: the writes at `ahead` marked dirty."""
        for index in ahead:
            offset, data = run[index]
            self._mark_dirty(offset, len(data))

    def _submit(self, offset: int, length: int, op: str, data: bytes) -> Future[None]:
        if self._fenced is not None:
            raise TrackerFencedError(self._fenced)
        volume = self.volume
        block = volume.block_size
        if offset % block or length % block or length <= 0 or offset + length > volume.size:
            self._check_range(offset, length)  # raises
        with self._counts_lock:
            self._writes += 1
            self._bytes += length
        mark_dirty = self._marker(offset, length)
        ticket = self.window.admit(length, mark_dirty)
        while ticket is None and self._image_fd is None:
            if self._stopping.is_set():
                raise TrackerError(f"volume {self.volume.name}: tracker stopped while Kafka was unreachable")
            time.sleep(NO_ROOM_WAIT_SECONDS)
            ticket = self.window.admit(length, mark_dirty)
        if ticket is None:
            # Marked dirty (ahead): no event to hold the regions for, so no count to take and give
            # back, only a touch after the mark (the log's guard, activity_log.py): no region of
            # it leaves the log before a persist of the dirty bitmap that started after the mark.
            self.activity.enter(offset, length)
            return _DONE
        try:
            self.activity.hold(offset, length)
        except BaseException:
            self.window.shipped(length, [ticket])
            raise
        future: Future[None] | None = Future() if self.ack is AckMode.KAFKA else None
        self._ship().queue.put(WriteItem(ticket, op, offset, length, data, now_micros(), future))
        return future if future is not None else _DONE

    def _marker(self, offset: int, length: int) -> Callable[[], None]:
        """What `ShipWindow.admit` runs for a write it does not admit (ahead): its blocks marked
        dirty, when there is an image to drain them from."""
        return lambda: self._mark_dirty(offset, length)

    def _mark_dirty(self, offset: int, length: int) -> None:
        if self._image_fd is not None:
            block = self.block_size
            self.dirty.add_range(offset // block, (offset + length) // block)
            self._ship().pace.client_wrote(length)

    def _check_range(self, offset: int, length: int) -> None:
        if not is_aligned(offset, length, self.block_size) or length <= 0:
            raise TrackerError(
                f"volume {self.volume.name}: extent offset {offset} length {length} is not aligned "
                f"to the block size {self.block_size}; widen it with tidemark.core.blocks.align_out"
            )
        if offset + length > self.volume.size:
            raise TrackerError(
                f"volume {self.volume.name}: extent offset {offset} length {length} ends past the "
                f"volume size {self.volume.size}"
            )

    # -- durability and housekeeping -----------------------------------------------------------
    def _make_durable(self) -> None:
        """Before regions leave the activity log: the dirty bitmap and the image durable."""
        self.dirty.persist()
        if self._image_fd is not None:
            os.fdatasync(self._image_fd)

    def _keep(self) -> None:
        """Every second: retire idle regions, keep the dirty bitmap's file close to the truth (at
        most one fsync a second, none when unchanged), and show the RPO at risk."""
        while not self._stopping.wait(KEEPER_INTERVAL_SECONDS):
            self.activity.retire_idle()
            self.dirty.persist()
            risk = self.at_risk()
            self.metrics.at_risk(risk.bytes, risk.oldest_age)

    def _ship(self) -> Shipper:
        if self._shipper is None:
            raise TrackerError(f"volume {self.volume.name}: the tracker is not started; call start() first")
        return self._shipper


def open_tracker(
    settings: Settings,
    clients: KafkaClients,
    topics: Topics,
    volume_name: str,
    image_path: Path | None,
    compression: Compression | str = Compression.NONE,
    delivery_timeout_ms: int | None = None,
    ack: AckMode | str = AckMode.LOCAL,
    unshipped_max_bytes: int | None = None,
    site: str | None = None,
    drain_min_bytes_per_s: int | None = None,
    offline_start: bool = False,
) -> Tracker:
    """A started tracker for a registered volume, with `clients` and `topics` of `settings`' cluster.

    Refuses an unknown volume, and an image whose size differs from the registered size.
    `delivery_timeout_ms` (default `TrackerOptions.delivery_timeout_ms`) bounds how long events
    sent to Kafka may go without a confirmation before the link counts as lost and their blocks
    are recorded as dirty instead. `unshipped_max_bytes`
    (default `TrackerOptions.unshipped_max_bytes`) is the pull-ahead bound, and
    `drain_min_bytes_per_s` (default `TrackerOptions.drain_min_bytes_per_s`) the drain's rate while
    a client writes faster than that. `site` (default: the
    registry's current primary) must be the volume's primary site, else it refuses to start
    (`NotPrimaryError`); the tracker writes the registry's current generation. When Kafka does
    not answer it refuses to start, unless `offline_start`: then the registry record the last
    start kept (`registry_copy`) stands in for the registry until Kafka answers.
    """
    from tidemark.core.names import validate_name

    validate_name(volume_name)
    if site is not None:
        validate_name(site, "site")
    options = TrackerOptions(
        compression=Compression(compression) if isinstance(compression, str) else compression,
        extent_bytes=settings.extent_bytes,
        delivery_timeout_ms=delivery_timeout_ms or TrackerOptions.delivery_timeout_ms,
        ack=AckMode(ack),
        unshipped_max_bytes=unshipped_max_bytes or TrackerOptions.unshipped_max_bytes,
        drain_min_bytes_per_s=drain_min_bytes_per_s or TrackerOptions.drain_min_bytes_per_s,
    )
    folder = settings.volume_state_dir("trackers", volume_name)
    watch = PrimaryWatch(clients, topics, volume_name)
    try:
        spec, current = _registry_at_start(clients, topics, folder, volume_name, watch, offline_start)
        refusal = start_refusal(volume_name, site, current)
        if refusal is not None:
            raise NotPrimaryError(refusal)
        primary = Primary(current.generation, site or current.site)
        log.info("volume %s: writing as %s", volume_name, primary.describe())
        return Tracker(spec, clients, topics, folder, image_path, options, primary, watch).start()
    except BaseException:
        watch.stop()
        raise


def _registry_at_start(
    clients: KafkaClients, topics: Topics, folder: Path, volume: str, watch: PrimaryWatch, offline_start: bool
) -> tuple[VolumeSpec, Primary]:
    """The volume's registry record and primary: read from the registry (and kept, see
    `registry_copy`), or, when Kafka does not answer and `offline_start` allows it, the copy the
    last start kept; then `watch` reads the registry once Kafka answers.

    Without `offline_start` an unanswered Kafka refuses the start: the registry is what says this
    host is still the primary, and a host cut off from a cluster that failed over meanwhile would
    otherwise serve its old disk beside the promoted copy (split brain). Only the operator knows
    whether the cluster is down or this host is cut off, as with DRBD's forced promotion."""
    from tidemark.core import kafka_io
    from tidemark.core.volumes import lookup_volume

    try:
        kafka_io.topic_partitions(clients.admin(), topics.volumes, REGISTRY_PROBE_S)
    except KafkaError as exc:
        if kafka_io.refused(exc):
            raise KafkaAuthenticationError(f"volume {volume}: Kafka refused the credentials: {exc}") from exc
        return _kept_record(folder, volume, exc, offline_start)
    spec = lookup_volume(clients, topics, volume)
    current = watch.current()
    try:
        registry_copy.keep(folder, dataclasses.replace(spec, generation=current.generation, primary_site=current.site))
    except OSError as exc:
        log.warning("volume %s: cannot keep the registry record (%s); --offline-start needs it", volume, exc)
    return spec, current


def _kept_record(folder: Path, volume: str, exc: KafkaError, offline_start: bool) -> tuple[VolumeSpec, Primary]:
    kept = registry_copy.load(folder, volume)
    if not offline_start:
        known = (
            f"the record the last start kept says {Primary(kept.generation, kept.primary_site).describe()}"
            if kept is not None
            else "and this host keeps no copy of its registry record"
        )
        raise TrackerError(
            f"volume {volume}: Kafka does not answer ({exc}), so the registry cannot confirm that this host is "
            f"still the volume's primary ({known}). Start once Kafka answers; or, if you know no failover "
            "happened (the cluster is down, not this host cut off from it), start with --offline-start"
        ) from exc
    if kept is None:
        raise TrackerError(
            f"volume {volume}: Kafka does not answer ({exc}) and this host keeps no copy of the volume's "
            f"registry record ({registry_copy.copy_path(folder)}: a tracker keeps one at every start that "
            "reaches Kafka); start the tracker once while Kafka is reachable"
        ) from exc
    primary = Primary(kept.generation, kept.primary_site)
    log.warning(
        "volume %s: Kafka does not answer at start (%s); --offline-start: writing as %s, from the registry "
        "record the last start kept; writes are recorded as dirty and shipped once Kafka answers, and this "
        "tracker refuses writes from then on if a failover moved the primary meanwhile",
        volume, exc, primary.describe(),
    )  # fmt: skip
    return kept, primary
