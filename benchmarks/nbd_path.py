"""Figure 2: `nbdcopy` of a random image into `tidemark track nbd` vs into `nbdkit file`.

Both servers listen on loopback TCP and receive the same `nbdcopy SRC nbd://...` (no --flush):
the only difference is that the tracker publishes every write to Kafka (acks=all) before it
acknowledges it. Server start-up is not timed.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .env import MIB, BenchEnv, Stage, free_port, random_image, sparse_file, stop_process, wait_for_port
from .results import Figure, ratio_at_least


def _copy_into(server: subprocess.Popen[bytes], port: int, source: Path, uri: str, target: Path) -> float:
    """MB/s of `nbdcopy SOURCE URI` once `server` listens on `port`; stops it and removes `target` after."""
    try:
        wait_for_port(port, server)
        started = time.perf_counter()
        subprocess.run(["nbdcopy", str(source), uri], check=True, stdin=subprocess.DEVNULL, timeout=900)
        return source.stat().st_size / (time.perf_counter() - started) / 1e6
    finally:
        stop_process(server)
        target.unlink()


def into_nbdkit(stage: Stage, source: Path) -> float:
    target = sparse_file(stage.root / "nbdkit-target.img", source.stat().st_size)
    port = free_port()
    server = subprocess.Popen(
        ["nbdkit", "-f", "-i", "127.0.0.1", "-p", str(port), "file", str(target)], stdin=subprocess.DEVNULL
    )
    return _copy_into(server, port, source, f"nbd://127.0.0.1:{port}", target)


def into_tracker(stage: Stage, source: Path) -> float:
    size = source.stat().st_size
    stage.register("nbdpath", size)
    target = sparse_file(stage.root / "tracker-target.img", size)
    port = free_port()
    server = stage.cli("track", "nbd", "--volume", "nbdpath", "--image", str(target),
                       "--listen", f"127.0.0.1:{port}", log=stage.root / "track-nbd.log")  # fmt: skip
    return _copy_into(server, port, source, f"nbd://127.0.0.1:{port}/nbdpath", target)


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    size_mib = 128 if quick else 1024
    with env.stage("nbd") as stage:
        source = random_image(stage.root / "source.img", size_mib * MIB)
        anchor = into_nbdkit(stage, source)
        ours = into_tracker(stage, source)
        source.unlink()
    return [
        Figure(
            "2",
            f"NBD path, nbdcopy of {size_mib} MiB into track nbd",
            ours,
            "MB/s",
            "nbdcopy into nbdkit file",
            anchor,
            ratio_at_least(0.5),
            ["same nbdcopy command (defaults, no --flush), loopback TCP"],
        )  # fmt: skip
    ]
