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


class MirrorInUseError(SinkError):
    """A mount holds the mirror while a revert or failover wants to change it (or the reverse)."""


class PromotedMirrorError(SinkError):
    """The mirror was failed over to: it is the production disk and no longer applies the stream."""


class FileInUseError(SinkError):
    """Another tidemark process holds the file (flock) that an exclusive open asked for."""


class OverlayError(SinkError):
    """A copy-on-write overlay that belongs to another volume or point, or is unreadable."""


class FailbackError(SinkError):
    """Failback cannot run: no failover recorded, or the old primary does not fit the volume."""


class FailbackConflictError(FailbackError):
    """Both sides changed blocks since the failover point and no `--discard` side was named."""

    exit_code = 6


class UnknownRecoveryPointError(SinkError):
    """The recovery point is not retained by this mirror, or has no manifest."""


class InvalidChangeSetError(SinkError):
    """A change set or one of its events breaks the stream contract (goes to dead letters)."""


class RetentionError(ConfigurationError):
    """A `--retain` value that is neither a count nor a duration."""


class VerifyMismatchError(SinkError):
    """verify found blocks whose content differs from the reference."""

    exit_code = 3


class FencedChangeSetError(InvalidChangeSetError):
    """A change set of an older primary generation than one the mirror already applied: a failover
    fenced its writer. It goes to dead letters, unapplied; the mirror goes on with the next set."""


class ChangeSetGapError(InvalidChangeSetError):
    """A gap in the stream (change sets gone, or a ResyncRequest): the mirror stops there, resync needed."""


class ResyncNeededError(SinkError):
    """The mirror cannot catch up from the stream any more; `tidemark resync` must run first."""

    exit_code = 4


class MirrorDiskFullError(SinkError):
    """The mirror's or its state directory's filesystem is full; nothing of the set was recorded."""

    exit_code = 5


class ManifestError(SinkError):
    """A recovery point's manifest breaks its contract: chunks missing, out of order or inconsistent."""
