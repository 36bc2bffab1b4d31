"""The tracker's copy of its volume's registry record, so that it can start while Kafka is down.

A protected host that boots during a Kafka outage must still serve its disk: with `--ack local`
the tracker records writes as dirty and ships them once Kafka answers, and it needs only the
volume's size, block size, generation and primary site to start. Every start that reads the
registry keeps that record here; a start that cannot reach Kafka uses it (`open_tracker`), and the
registry watch reads the registry as soon as Kafka answers and fences the tracker if a failover
moved the primary meanwhile (`primary_watch`). A running tracker is in the same position during an
outage: what the registry says is known only once Kafka answers.

File `<tracker state folder>/registry.json`: UTF-8 JSON object
`{"name", "size", "block_size", "group", "generation", "primary_site"}` (the fields of
`VolumeSpec`), replaced atomically and durably at every start that read the registry.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tidemark.core.durable import write_durably
from tidemark.core.volumes import VolumeSpec
from tidemark.exceptions import TidemarkError

log = logging.getLogger(__name__)
FILE_NAME = "registry.json"


def copy_path(folder: Path) -> Path:
    return folder / FILE_NAME


def keep(folder: Path, spec: VolumeSpec) -> None:
    """Replace the copy with `spec`, the record the registry holds now."""
    record = {
        "name": spec.name, "size": spec.size, "block_size": spec.block_size, "group": spec.group,
        "generation": spec.generation, "primary_site": spec.primary_site,
    }  # fmt: skip
    write_durably(copy_path(folder), json.dumps(record, sort_keys=True).encode())


def load(folder: Path, volume: str) -> VolumeSpec | None:
    """The record the last start kept; None when there is none, or it is unreadable or of another volume."""
    path = copy_path(folder)
    try:
        record = json.loads(path.read_bytes())
        spec = VolumeSpec.from_record(record)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError, TidemarkError) as exc:
        log.warning("volume %s: ignoring the registry copy %s: %s", volume, path, exc)
        return None
    if spec.name != volume:
        log.warning("volume %s: ignoring the registry copy %s: it is volume %s's", volume, path, spec.name)
        return None
    return spec
