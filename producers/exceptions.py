"""Errors of the producers stage (trackers)."""

from tidemark.exceptions import TidemarkError


class TrackerError(TidemarkError):
    """A tracker cannot publish or cannot start."""


class ImageSizeError(TrackerError):
    """The image's size differs from the registered volume size."""


class EventTooLargeError(TrackerError):
    """A write cannot be split under the message size limit (check extent_bytes vs message_max_bytes)."""


class TraceFormatError(TrackerError):
    """A trace file line does not match its declared format."""
