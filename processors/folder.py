"""Moved to fold_volume.py (issue 15); this re-export stays until benchmarks/ and the CLI import it there."""

from .fold_volume import FoldOptions, VolumeFolder

__all__ = ["FoldOptions", "VolumeFolder"]
