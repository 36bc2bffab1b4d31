"""Errors of `tidemark restore`."""

from ..exceptions import SinkError


class RestoreError(SinkError):
    """The destination does not belong to this restore, or its relocation state is unusable."""
