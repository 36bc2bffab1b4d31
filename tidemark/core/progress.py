"""The one progress callback type of long operations (seeding, verify, resync, revert, relocation)."""

from __future__ import annotations

from collections.abc import Callable

OnProgress = Callable[[int, int], None]
"""Called as `(done, total)`, in the unit the operation names (blocks or bytes); `total` may grow."""
