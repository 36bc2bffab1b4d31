"""One typed constructor per record of `schemas/*.avsc`: a TypedDict of the record and a function.

Every stage builds the events it publishes with these functions, never a dict by hand, and hands
the result to the codec (`Codec.encode(record_type, record)`). The constructors are plain dict
builders (keyword-only, the schema's defaults as defaults, no clock read), so they cost what a
dict literal costs; each checks only what its schema cannot state and is cheap to check.
`CONSTRUCTORS` names the constructor of each record type; a test fails when a `.avsc` has none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .changesets import ChangeSetSealed, Extent, ResyncRequest, change_set_sealed, extent, resync_request
from .journal import BlockWrite, Marker, block_write, marker, new_marker_id
from .points import RecoveryPoint, RecoveryPointChunk, recovery_point, recovery_point_chunk
from .registry import ReadProfile, Volume, read_profile, volume
from .reports import (
    MAX_VALUE_BYTES,
    Alert,
    DeadLetter,
    HotExtent,
    MirrorStatus,
    VolumeMetrics,
    alert,
    dead_letter,
    hot_extent,
    mirror_status,
    volume_metrics,
)

CONSTRUCTORS: Mapping[str, Callable[..., Mapping[str, Any]]] = {
    "Alert": alert,
    "BlockWrite": block_write,
    "ChangeSetSealed": change_set_sealed,
    "DeadLetter": dead_letter,
    "Extent": extent,
    "Marker": marker,
    "MirrorStatus": mirror_status,
    "ReadProfile": read_profile,
    "RecoveryPoint": recovery_point,
    "RecoveryPointChunk": recovery_point_chunk,
    "ResyncRequest": resync_request,
    "Volume": volume,
    "VolumeMetrics": volume_metrics,
}
"""Record type name (the .avsc's `name`) -> its constructor."""

RECORDS: Mapping[str, type] = {
    "Alert": Alert,
    "BlockWrite": BlockWrite,
    "ChangeSetSealed": ChangeSetSealed,
    "DeadLetter": DeadLetter,
    "Extent": Extent,
    "Marker": Marker,
    "MirrorStatus": MirrorStatus,
    "ReadProfile": ReadProfile,
    "RecoveryPoint": RecoveryPoint,
    "RecoveryPointChunk": RecoveryPointChunk,
    "ResyncRequest": ResyncRequest,
    "Volume": Volume,
    "VolumeMetrics": VolumeMetrics,
}
"""Record type name -> its TypedDict (the keys are the schema's fields, in its order)."""

__all__ = [
    "CONSTRUCTORS",
    "MAX_VALUE_BYTES",
    "RECORDS",
    "Alert",
    "BlockWrite",
    "ChangeSetSealed",
    "DeadLetter",
    "Extent",
    "HotExtent",
    "Marker",
    "MirrorStatus",
    "ReadProfile",
    "RecoveryPoint",
    "RecoveryPointChunk",
    "ResyncRequest",
    "Volume",
    "VolumeMetrics",
    "alert",
    "block_write",
    "change_set_sealed",
    "dead_letter",
    "extent",
    "hot_extent",
    "marker",
    "mirror_status",
    "new_marker_id",
    "read_profile",
    "recovery_point",
    "recovery_point_chunk",
    "resync_request",
    "volume",
    "volume_metrics",
]
