"""Errors of the analytics stage: one root, one-line subclasses."""

from __future__ import annotations

from tidemark.exceptions import TidemarkError


class AnalyticsError(TidemarkError):
    """Root of every analytics error."""


class PayloadError(AnalyticsError):
    """A write's data cannot be measured (truncated, undecodable compression)."""
