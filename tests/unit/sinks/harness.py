"""A mirror in a tmp folder fed with StreamModel events, without Kafka."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tidemark.schemas.codec import default_codec
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.mirror import Mirror
from tidemark.sinks.stream_applier import Applied, StreamApplier

from .stream_model import Event, StreamModel


def wire(events: Iterable[Event]) -> list[tuple[str, dict[str, Any]]]:
    """Through the codec and back, as a consumer would see them."""
    codec = default_codec()
    return [codec.decode(codec.encode(kind, record)) for kind, record in events]


class Harness:
    def __init__(self, root: Path, model: StreamModel, site: str = "default") -> None:
        self.root = root
        self.model = model
        self.layout = MirrorLayout.of(root / "state", site, model.volume)
        self.path = root / f"{site}.img"
        self.offset = 0
        self.open()

    def open(self) -> None:
        self.mirror = Mirror.create_or_open(self.layout, self.path, self.model.size, self.model.block_size)
        self.stream = StreamApplier(self.mirror, self.model.volume, self.layout.spool)
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self.stream.close()
            self.mirror.close()

    def feed(self, events: Iterable[Event]) -> list[Applied]:
        applied = []
        for kind, record in wire(events):
            result = self.stream.handle(kind, record, 0, self.offset)
            self.offset += 1
            if result is not None:
                applied.append(result)
        return applied

    def image(self) -> bytes:
        return self.path.read_bytes()
