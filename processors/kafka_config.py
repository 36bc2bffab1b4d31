"""The processor's librdkafka settings: what bounds its memory and how soon its outputs commit.

The processor's resident memory is its Python heap (~70 MB), the cache of recent writes
(`recent_writes.py`) and what librdkafka buffers for it. librdkafka's defaults are sized for
throughput on large machines: a consumer pre-fetches up to 64 MiB (`queued.max.messages.kbytes`)
and a producer queues up to 1 GiB (`queue.buffering.max.kbytes`). Here every byte of block data
passes the input consumer once and the transactional producer once (a seal's extents), so the
bounds below hold it to a few MiB each, plus one fetch response of at most
`fetch.message.max.bytes` per partition (which may overshoot the queue bound). A producer that
reaches its bound makes `produce` raise BufferError; the runner then serves deliveries and
retries, so a large seal streams through the queue instead of piling up in it.

Budget with these defaults, for one worker: input queue 16 MiB + the batch in Python
(`batch_sizer.DEFAULT_BATCH_BYTES`) + producer queue 32 MiB + journal reader 8 MiB + the cache
(`recent_writes.DEFAULT_CACHE_BYTES`) + RocksDB memtables (`state_store.py`).
"""

from __future__ import annotations

from typing import Any

KIB = 1024

INPUT_QUEUE_KIB = 16 * KIB
"""Pre-fetched writes the input consumer keeps (librdkafka default 64 MiB). 16 MiB is about a
quarter second of the bus's rate here; a fetch round trip on a loaded machine is far shorter."""

QUEUE_BACKOFF_MS = 5
"""How soon a consumer whose queue was full fetches again (librdkafka's `fetch.queue.backoff.ms`,
default 1000 ms). With a small queue the default idles the fetcher for a second each time the
queue fills: a 4 GiB backlog was folded at 31 MB/s instead of 91."""

OUTPUT_QUEUE_KIB = 32 * KIB
"""Produced but unacknowledged outputs (librdkafka default 1 GiB)."""

READBACK_QUEUE_KIB = 8 * KIB
"""Pre-fetched journal messages of the read-back consumer (journal_reader.py). It reads a bounded
offset range; a larger queue only reads further past the last offset a seal needs."""

OUTPUT_LINGER_MS = 5
"""The transactional producer waits this long to fill a batch; a commit flushes at once anyway."""

TRANSACTION_TIMEOUT_MS = 60_000


def input_consumer(group_instance_id: str) -> dict[str, Any]:
    """Overrides for the worker's input consumer (group member, read committed, manual offsets)."""
    return {
        "max.poll.interval.ms": 600_000,
        # Static membership: a worker restarted after a crash takes its partitions back at once
        # instead of waiting for the dead member's session to expire (45 s by default).
        "group.instance.id": group_instance_id,
        "queued.max.messages.kbytes": INPUT_QUEUE_KIB,
        "fetch.queue.backoff.ms": QUEUE_BACKOFF_MS,
    }


def output_producer(transactional_id: str) -> dict[str, Any]:
    """Overrides for the worker's transactional producer (outputs, changelog, offsets)."""
    return {
        "transactional.id": transactional_id,
        "linger.ms": OUTPUT_LINGER_MS,
        "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
        "queue.buffering.max.kbytes": OUTPUT_QUEUE_KIB,
    }


def readback_consumer() -> dict[str, Any]:
    """Overrides for the journal reader (assigned, never subscribed; reports partition ends)."""
    return {
        "enable.partition.eof": True,
        "queued.max.messages.kbytes": READBACK_QUEUE_KIB,
        "fetch.queue.backoff.ms": QUEUE_BACKOFF_MS,
    }
