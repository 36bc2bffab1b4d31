"""Which events of a volume the processor folds: one primary (generations), one tracker (seqs).

Pure logic over the volume's state; the folder acts on the verdict.

**Generations (fencing), in log order.** A volume's generation in the processor is the highest
generation its own log has shown so far (`VolumeState.generation`, in the changelog). A failover
writes a generation marker (an EPOCH_START Marker with the new generation and no epoch) into the
volume's writes partition, then publishes the new generation in the registry for the trackers
(`tidemark.core.volumes.bump_generation`). From the marker on, a BlockWrite or a tracker's Marker
(one with an epoch) of an older generation is refused. The registry is never read for this
decision: it depends only on the log and the committed state, so a replay after a crash decides
the same, and a failover takes effect at the marker's position, as soon as it is in the log.
A newer generation is adopted from any event that carries it; seqs restart there (the new primary
forked from a copy at some earlier point), so the first write of a generation is not checked
against the last seq of the previous one.

**Seqs within a generation.** A write with a new seq is folded (a jump is a gap: resync). A write
reusing a seq is either a real duplicate (same epoch, seq, extent, op and checksum as the write
folded with that seq: dropped silently) or another tracker's write (anything else: refused, and a
resync is requested). The state remembers the fingerprints of the last `RECENT_SEQS` seqs (`remember`);
a seq older than that cannot be told apart and is refused as a conflict.

**Epoch starts skip the seqs a tracker never saw confirmed.** A tracker that reconnects starts a new
epoch with an EPOCH_START marker whose `after_seq` is above every seq it assigned before, confirmed
or not: an event in doubt (in flight when its producer was retired) may still land after the
tracker read the partition's tail, and its seq must not be reused. The blocks of every event not
confirmed are in the tracker's dirty bitmap and are published again in the new epoch. So the seqs
from the last folded one up to `after_seq` are skipped, not a gap (`skip_to`), and a write of an
older epoch that arrives later with a seq never folded is stale: refused, with no resync, for its
blocks come again in the newer epoch (`admit_write`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import xxhash

from .volume_state import VolumeState

RECENT_SEQS = 64
"""How many folded seqs a volume remembers the fingerprint of, to tell duplicates from conflicts."""

_IDENTITY = struct.Struct(">qqqB")  # epoch, offset, length, op (0 WRITE, 1 ZERO, 2 TRIM); then the checksum
_FINGERPRINT = struct.Struct(">Q")
_OPS = {"WRITE": 0, "ZERO": 1, "TRIM": 2}

FOLD, DROP, REFUSE = "fold", "drop", "refuse"


@dataclass(frozen=True)
class Verdict:
    action: str
    """FOLD, DROP (a real duplicate) or REFUSE (dead letter)"""
    reason: str = ""
    resync: bool = False
    """FOLD: the seq jumped (a gap); REFUSE: another tracker reused a seq"""
    fenced: bool = False
    """REFUSE: the event's generation is older than the volume's"""
    restart: bool = False
    """FOLD: the first write of a new generation (no seq check)"""


RESTART = Verdict(FOLD, restart=True)
FOLD_NEXT = Verdict(FOLD)
FOLD_GAP = Verdict(FOLD, resync=True)
DUPLICATE = Verdict(DROP)


def fingerprint(record: dict[str, Any]) -> int:
    """xxh3-64 of what makes two writes with one seq the same write: epoch, extent, op, checksum."""
    head = _IDENTITY.pack(record["epoch"], record["offset"], record["length"], _OPS[record["op"]])
    return xxhash.xxh3_64_intdigest(head + record["checksum"])


def generation_of(record: dict[str, Any]) -> int:
    return int(record.get("generation") or 0)


def fenced(state: VolumeState, record: dict[str, Any], what: str) -> Verdict | None:
    """REFUSE when the event's generation is older than the volume's (None: not fenced)."""
    generation = generation_of(record)
    if generation >= state.generation:
        return None
    return Verdict(
        REFUSE,
        f"volume {state.volume} {what}: generation {generation} is older than the volume's generation "
        f"{state.generation} (a failover fenced it): the tracker that wrote it is no longer the primary; "
        "stop it, or re-protect its site as a mirror (`tidemark failover --reverse`)",
        fenced=True,
    )


def admit_write(state: VolumeState, record: dict[str, Any]) -> Verdict:
    """The verdict on a valid BlockWrite whose generation is not newer than the volume's."""
    seq = record["seq"]
    if generation_of(record) < state.generation:
        verdict = fenced(state, record, _describe(record))
        assert verdict is not None
        return verdict
    if state.seq_restart:
        return RESTART
    if seq > state.last_seq:
        return FOLD_NEXT if seq == state.last_seq + 1 else FOLD_GAP
    remembered = recent_fingerprint(state, seq)
    if remembered == fingerprint(record):
        return DUPLICATE
    if remembered is None and record["epoch"] < state.epoch:
        return Verdict(
            REFUSE,
            f"volume {state.volume} {_describe(record)}: stale: its epoch ended before it landed and epoch "
            f"{state.epoch} skipped its seq; the tracker published its blocks again in that epoch (nothing to do)",
        )
    return _conflict(state, record, remembered)


def skip_to(state: VolumeState, after_seq: int) -> int:
    """A tracker's EPOCH_START continues after `after_seq`: mark the seqs up to it as never folded
    and move `last_seq` there. Returns how many were skipped (0 when `after_seq` is not ahead)."""
    skipped = after_seq - state.last_seq
    if skipped <= 0:
        return 0
    if state.recent:
        for seq in range(max(state.last_seq + 1, after_seq - RECENT_SEQS + 1), after_seq + 1):
            _FINGERPRINT.pack_into(state.recent, _offset(seq), 0)
    state.last_seq = after_seq
    return skipped


def _conflict(state: VolumeState, record: dict[str, Any], remembered: int | None) -> Verdict:
    seq = record["seq"]
    if seq <= state.last_seq - RECENT_SEQS:
        why = f"is older than the last {RECENT_SEQS} seqs folded (up to {state.last_seq}), so it cannot be a retry"
    elif remembered is None:
        why = "falls in a gap of this generation's seqs (it was never folded)"
    elif record["epoch"] != state.epoch:
        why = f"was already folded from epoch {state.epoch}"
    else:
        why = "was already folded with other content or another extent"
    return Verdict(
        REFUSE,
        f"volume {state.volume} {_describe(record)}: seq {seq} {why}: two trackers write this volume at once; "
        "stop all but one (each volume has one primary tracker) and resync the mirrors (`tidemark resync`)",
        resync=True,
    )


def _describe(record: dict[str, Any]) -> str:
    return f"seq {record['seq']} (epoch {record['epoch']}, offset {record['offset']}, length {record['length']})"


def remember(state: VolumeState, record: dict[str, Any]) -> None:
    """Record the fingerprint of a folded write (before `state.last_seq` moves to its seq).

    `state.recent` is RECENT_SEQS slots of 8 bytes, slot `seq % RECENT_SEQS` holding
    the fingerprint of folded seq `seq` for the last RECENT_SEQS seqs, zeros for a seq never
    folded (a gap); so the state keeps one size whatever the seqs.
    """
    ring = state.recent
    if not ring:
        ring = state.recent = bytearray(8 * RECENT_SEQS)
    seq = record["seq"]
    if seq > state.last_seq + 1:  # the seqs in between were never folded
        for skipped in range(max(state.last_seq + 1, seq - RECENT_SEQS + 1), seq):
            _FINGERPRINT.pack_into(ring, _offset(skipped), 0)
    _FINGERPRINT.pack_into(ring, _offset(seq), fingerprint(record))


def recent_fingerprint(state: VolumeState, seq: int) -> int | None:
    """The fingerprint folded under `seq` (None: never folded, or too old to remember)."""
    if not state.recent or seq <= state.last_seq - RECENT_SEQS:
        return None
    (value,) = _FINGERPRINT.unpack_from(state.recent, _offset(seq))
    return int(value) or None


def _offset(seq: int) -> int:
    return (seq % RECENT_SEQS) * _FINGERPRINT.size
