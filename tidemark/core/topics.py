"""Topic names of the design. A prefix other than `tidemark` keeps test runs apart."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str = "tidemark"

    @property
    def volumes(self) -> str:
        return f"{self.prefix}.volumes"

    @property
    def writes(self) -> str:
        return f"{self.prefix}.writes"

    @property
    def changesets(self) -> str:
        return f"{self.prefix}.changesets"

    @property
    def recovery_points(self) -> str:
        return f"{self.prefix}.recovery-points"

    @property
    def mirror_status(self) -> str:
        return f"{self.prefix}.mirror-status"

    @property
    def metrics(self) -> str:
        return f"{self.prefix}.metrics"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dead-letters"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def tracker_checkpoints(self) -> str:
        """Trackers' own state (the last seq per volume), compacted; not an event between stages."""
        return f"{self.prefix}.tracker-checkpoints"

    @property
    def read_profiles(self) -> str:
        """The first blocks read after a client connects, per volume (compacted): a restore copies them first."""
        return f"{self.prefix}.read-profiles"

    def all(self) -> list[str]:
        return [
            self.volumes,
            self.writes,
            self.changesets,
            self.recovery_points,
            self.mirror_status,
            self.metrics,
            self.dead_letters,
            self.alerts,
            self.tracker_checkpoints,
            self.read_profiles,
        ]
