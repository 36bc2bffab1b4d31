"""Errors of `tidemark demo`."""

from tidemark.exceptions import TidemarkError


class DemoError(TidemarkError):
    """A demo step could not run (a tool failed, a stage did not answer in time)."""


class ToolMissingError(DemoError):
    """A system tool the demo drives is not installed."""

    exit_code = 2
