"""Figure 7: peak resident memory (VmHWM) of `tidemark process` and `tidemark mirror`.

Measured on the processes of figure 3 (a 1 TiB sparse volume under the end-to-end load), read
from /proc/<pid>/status just before they are stopped.
"""

from __future__ import annotations

from pathlib import Path

from .results import Figure, value_at_most

LIMIT_MB = 500.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


def figures(peaks: dict[str, float], volume_bytes: int, written_bytes: int) -> list[Figure]:
    return [
        Figure(
            "7",
            f"memory: peak RSS of tidemark {name}",
            peak,
            "MB",
            "goal",
            LIMIT_MB,
            value_at_most(LIMIT_MB, "MB"),
            [f"{volume_bytes >> 40} TiB sparse volume, {written_bytes / 1e6:.0f} MB written during figure 3"],
        )  # fmt: skip
        for name, peak in peaks.items()
    ]
