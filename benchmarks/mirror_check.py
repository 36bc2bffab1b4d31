"""When is a mirror identical to its source image? `tidemark verify --source`, polled."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from .env import Stage

POLL_S = 1.0
TIMEOUT_S = 900.0


def verify_passes(stage: Stage, volume: str, mirror: Path, image: Path) -> bool:
    """`tidemark verify --source` of the mirror file as it is now (needs no lock on the mirror)."""
    done = subprocess.run(
        [sys.executable, "-m", "tidemark.cli", "verify", "--volume", volume, "--mirror", str(mirror),
         "--source", str(image)],
        env=stage.cli_env(), capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT_S,
    )  # fmt: skip
    return done.returncode == 0


def until_identical(stage: Stage, volume: str, mirror: Path, image: Path) -> float:
    """Seconds from now until the mirror is identical to the image (RuntimeError past TIMEOUT_S)."""
    started = time.monotonic()
    while not (mirror.exists() and verify_passes(stage, volume, mirror, image)):
        if time.monotonic() - started > TIMEOUT_S:
            raise RuntimeError(f"mirror of {volume} not identical to {image} after {TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)
    return time.monotonic() - started
