"""Errors of the sinks stage (mirror appliers, revert, verify)."""

from tidemark.exceptions import ConfigurationError, TidemarkError


class SinkError(TidemarkError):
    """A mirror cannot be applied, reverted or verified."""


class MirrorSizeError(ConfigurationError):
    """The mirror file's size differs from the volume's size."""


class MirrorLockedError(SinkError):
    """Another process (usually `tidemark mirror`) holds the mirror's lock."""


class MirrorStateError(SinkError):
    """The mirror's state directory does not match the mirror file or is unreadable."""



class UnknownRecoveryPointError(SinkError):
    """The recovery point is not retained by this mirror, or has no manifest."""


class InvalidChangeSetError(SinkError):
    """A change set or one of its events breaks the stream contract (goes to dead letters)."""


class RetentionError(ConfigurationError):
    """A `--retain` value that is neither a count nor a duration."""


class VerifyMismatchError(SinkError):
    """verify found blocks whose content differs from the reference."""

    exit_code = 3
