"""A mirror holding three recovery points (plus an open change set), and NBD client helpers."""

from __future__ import annotations

import hashlib
import random
import subprocess
from pathlib import Path

from .harness import Harness
from .stream_model import StreamModel

BS = 4096
SIZE = 256 * BS


def three_points(make_harness, seed: int = 5) -> Harness:
    """Points 1..3 cut after random block writes; then one more set applied after point 3."""
    rng = random.Random(seed)
    model = StreamModel("vol", SIZE, BS)
    harness = make_harness(model)
    for rp in range(1, 5):
        for _ in range(40):
            block, count = rng.randrange(SIZE // BS - 4), rng.randint(1, 4)
            model.write(block * BS, rng.randbytes(count * BS))
        if rp == 2:
            model.zero(8 * BS, 4 * BS)
        events = model.seal(cut=rp <= 3)
        harness.feed(events)
    return harness


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def nbdcopy(url: str, out: Path) -> bytes:
    done = run("nbdcopy", url, str(out))
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def qemu_io(url: str, *commands: str) -> subprocess.CompletedProcess[str]:
    return run("qemu-io", "-f", "raw", url, *(arg for c in commands for arg in ("-c", c)))


def qemu_io_failed(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode != 0 or "failed" in (done.stdout + done.stderr).lower()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
