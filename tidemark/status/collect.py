"""Build each volume's status from the topics: registry, writes tail, recovery points, mirror
status, metrics and dead letters. Reads only; joins no consumer group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Message

from tidemark.core.kafka import KafkaClients
from tidemark.core.partitioning import volume_partition
from tidemark.core.topics import Topics
from tidemark.core.volumes import read_volumes
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.storage.pins import pinned_points

from .model import PointInfo, SiteInfo, Throughput, TrackerInfo, VolumeStatus
from .reader import partition_count, read_all, read_tail


def collect(
    clients: KafkaClients, topics: Topics, only: str | None = None, state_dir: Path | None = None
) -> list[VolumeStatus]:
    """The status of every registered volume (or of `only`), sorted by name; with `state_dir`, the
    pins of the mirrors kept there too."""
    specs = read_volumes(clients, topics)
    statuses = {
        name: VolumeStatus(spec.name, spec.size, spec.block_size, spec.group)
        for name, spec in sorted(specs.items())
        if only is None or name == only
    }
    if not statuses:
        return []
    _trackers(clients, topics, statuses)
    _recovery_points(clients, topics, statuses)
    _sites(clients, topics, statuses)
    if state_dir is not None:
        _pins(state_dir, statuses)
    _throughput(clients, topics, statuses)
    _dead_letters(clients, topics, statuses)
    return list(statuses.values())


def _records(messages: Iterator[Message], *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    codec = default_codec()
    for msg in messages:
        value = msg.value()
        if not value:
            continue
        try:
            if codec.record_type_of(value) not in types:
                continue  # e.g. a recovery point's chunks: their bodies are never decoded here
            record_type, record = codec.decode(value)
        except DecodeError:
            continue
        yield record_type, record


def _trackers(clients: KafkaClients, topics: Topics, statuses: dict[str, VolumeStatus]) -> None:
    count = partition_count(clients, topics.writes)
    by_partition: dict[int, set[str]] = {}
    for name in statuses:
        by_partition.setdefault(volume_partition(name, count), set()).add(name)
    for partition, names in by_partition.items():
        for name, info in _newest_trackers(clients, topics, partition, names).items():
            statuses[name].tracker = info


def _newest_trackers(clients: KafkaClients, topics: Topics, partition: int, names: set[str]) -> dict[str, TrackerInfo]:
    """The newest tracker event of each named volume in one writes partition, read from its tail."""
    newest: dict[str, TrackerInfo] = {}
    window: dict[str, TrackerInfo] = {}

    def satisfied() -> bool:
        for name, info in window.items():
            newest.setdefault(name, info)  # a later window is older: keep the first found
        window.clear()
        return names <= newest.keys()

    messages = read_tail(clients, topics.writes, partition, satisfied)
    for record_type, record in _records(messages, "BlockWrite", "Marker"):
        # markers without an epoch come from `rp create`, not from the volume's tracker
        if record["volume"] in names and record.get("epoch") is not None:
            window[record["volume"]] = _tracker_info(record_type, record)
    return newest


def _tracker_info(record_type: str, record: dict[str, Any]) -> TrackerInfo:
    if record_type == "BlockWrite":
        return TrackerInfo(record["epoch"], record["seq"], "BlockWrite", record["timestamp"])
    return TrackerInfo(record.get("epoch"), record.get("after_seq"), f"Marker:{record['kind']}", record["timestamp"])


def _recovery_points(clients: KafkaClients, topics: Topics, statuses: dict[str, VolumeStatus]) -> None:
    seen: dict[str, set[int]] = {}
    for _, record in _records(read_all(clients, topics.recovery_points), "RecoveryPoint"):
        status = statuses.get(record["volume"])
        if status is None:
            continue
        seen.setdefault(status.volume, set()).add(record["rp_id"])
        last = status.last_recovery_point
        if last is None or record["rp_id"] >= last.rp_id:
            status.last_recovery_point = PointInfo(
                record["rp_id"], record["kind"], record["label"], record["seq"],
                record["created_at"], record["changed_bytes"],
            )  # fmt: skip
    for name, ids in seen.items():
        statuses[name].recovery_points = len(ids)


def _sites(clients: KafkaClients, topics: Topics, statuses: dict[str, VolumeStatus]) -> None:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for _, record in _records(read_all(clients, topics.mirror_status), "MirrorStatus"):
        if record["volume"] in statuses:
            latest[(record["volume"], record["site"])] = record
    for (volume, site), r in sorted(latest.items()):
        statuses[volume].sites.append(
            SiteInfo(
                site,
                r["state"],
                r["rp_id"],
                r["changeset_id"],
                r["applied_seq"],
                r["lag_events"],
                r["lag_seconds"],
                r["timestamp"],
                r["message"],
            )  # fmt: skip
        )


def _pins(state_dir: Path, statuses: dict[str, VolumeStatus]) -> None:
    for status in statuses.values():
        for site in status.sites:
            site.pinned = sorted(pinned_points(MirrorLayout.of(state_dir, site.site, status.volume).root))


def _throughput(clients: KafkaClients, topics: Topics, statuses: dict[str, VolumeStatus]) -> None:
    newest: dict[str, dict[str, Any]] = {}
    written: dict[str, int] = {}
    shipped: dict[str, int] = {}
    for _, r in _records(read_all(clients, topics.metrics), "VolumeMetrics"):
        name = r["volume"]
        if name not in statuses:
            continue
        written[name] = written.get(name, 0) + r["bytes_written"]
        shipped[name] = shipped.get(name, 0) + r["bytes_shipped"]
        if name not in newest or r["window_end"] >= newest[name]["window_end"]:
            newest[name] = r
    for name, r in newest.items():
        statuses[name].throughput = Throughput(
            r["window_end"], r["writes_per_second"], r["bytes_per_second"], r["rpo_lag_seconds"],
            written[name], shipped[name],
        )  # fmt: skip


def _dead_letters(clients: KafkaClients, topics: Topics, statuses: dict[str, VolumeStatus]) -> None:
    for _, record in _records(read_all(clients, topics.dead_letters), "DeadLetter"):
        status = statuses.get(record["volume"] or "")
        if status is not None:
            status.dead_letters += 1
