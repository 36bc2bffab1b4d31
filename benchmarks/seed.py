"""Figure 9: seeding a real-sized disk through the NBD tracker, end to end, with default settings.

`nbdcopy --flush` copies SEED_GIB of random data (nbdkit's random plugin, so no source file
takes disk space) into a volume twice that size served by `tidemark track nbd`; a processor and a
mirror run with their defaults. Then `tidemark rp create` cuts a point. Reported:
- the time from the start of the copy until the mirror is identical to the image (verify
  --source, polled) and holds a listed recovery point, against the copy alone (the anchor);
- the bytes produced to each topic per byte seeded (the broker's log directories, when the run
  started the broker; the goals are <= 2.1 in all and <= 0.02 for the processor's changelog);
- the peak RSS of the tracker, the processor and the mirror (goal <= 500 MB each).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from . import memory
from .env import GIB, BenchEnv, Stage, free_port, sparse_file, stop_process, wait_for_port
from .mirror_check import until_identical
from .results import INFO, Figure, ratio_at_most, value_at_most

SEED_GIB = float(os.environ.get("TIDEMARK_BENCH_SEED_GIB", "16"))
QUICK_SEED_GIB = 1.0


def topic_bytes(data_dir: Path, prefix: str) -> dict[str, int]:
    """Bytes on the broker's disk per topic of `prefix` (all partitions, every segment and index)."""
    sizes: dict[str, int] = {}
    for entry in data_dir.iterdir():
        topic = entry.name.rsplit("-", 1)[0]
        if entry.is_dir() and topic.startswith(prefix):
            sizes[topic] = sizes.get(topic, 0) + sum(f.stat().st_size for f in entry.iterdir() if f.suffix == ".log")
    return sizes


def _cli(stage: Stage, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tidemark.cli", *args], env=stage.cli_env(), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600, check=True)  # fmt: skip


def seed(env: BenchEnv, stage: Stage, seed_bytes: int) -> list[Figure]:
    volume = "seed"
    stage.register(volume, 2 * seed_bytes)
    image = sparse_file(stage.root / "seed.img", 2 * seed_bytes)
    mirror = stage.root / "seed-mirror.img"
    port = free_port()
    tracker = stage.cli("track", "nbd", "--volume", volume, "--image", str(image),
                        "--listen", f"127.0.0.1:{port}", log=stage.root / "track.log")  # fmt: skip
    processor = stage.cli("process", log=stage.root / "process.log")
    applier = stage.cli("mirror", "--volume", volume, "--path", str(mirror), log=stage.root / "mirror.log")
    processes = {"track nbd": tracker, "process": processor, "mirror": applier}
    try:
        wait_for_port(port, tracker)
        started = time.monotonic()
        source = ["[", "nbdkit", "random", str(seed_bytes), "]"]  # a captive nbdkit, ended by nbdcopy
        subprocess.run(["nbdcopy", "--flush", "--", *source, f"nbd://127.0.0.1:{port}/{volume}"],
                       check=True, stdin=subprocess.DEVNULL, timeout=7200)  # fmt: skip
        copied = time.monotonic() - started
        _cli(stage, "rp", "create", "--volume", volume, "--label", "seeded")
        until_identical(stage, volume, mirror, image)
        total = time.monotonic() - started
        listed = _cli(stage, "rp", "list", "--volume", volume).stdout
        if "seeded" not in listed:
            raise RuntimeError(f"the seeded point is not listed by `rp list`:\n{listed}")
        peaks = {name: memory.peak_rss_mb(p.pid) for name, p in processes.items() if p.poll() is None}
        if len(peaks) != len(processes):
            raise RuntimeError(f"a pipeline process exited early; see the logs under {stage.root}")
    finally:
        for process in processes.values():
            stop_process(process)
        image.unlink()
        mirror.unlink(missing_ok=True)
    gib = seed_bytes / GIB
    figures = [
        Figure("9", f"seed {gib:g} GiB via nbdcopy: start -> mirror identical with a listed point", total, "s",
               "the nbdcopy into the tracker alone", copied, INFO,
               [f"{seed_bytes / total / 1e6:.0f} MB/s end to end; copy alone {seed_bytes / copied / 1e6:.0f} MB/s"]),
        *[Figure("9", f"seed: peak RSS of {name}", peak, "MB", "goal", memory.LIMIT_MB,
                 value_at_most(memory.LIMIT_MB, "MB")) for name, peak in peaks.items()],
    ]  # fmt: skip
    if env.data_dir is not None:
        sizes = topic_bytes(env.data_dir, stage.settings.topic_prefix)
        changelog = sum(b for t, b in sizes.items() if "changelog" in t)
        detail = [", ".join(f"{t.removeprefix(stage.settings.topic_prefix)}: {b / seed_bytes:.4f}"
                            for t, b in sorted(sizes.items()))]  # fmt: skip
        figures += [
            Figure("9", "seed: bytes produced to all topics", sum(sizes.values()), "B", "bytes seeded",
                   seed_bytes, ratio_at_most(2.1), detail),
            Figure("9", "seed: bytes produced to the processor's changelog", changelog, "B", "bytes seeded",
                   seed_bytes, ratio_at_most(0.02)),
        ]  # fmt: skip
    return figures


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    with env.stage("seed") as stage:
        return seed(env, stage, int((QUICK_SEED_GIB if quick else SEED_GIB) * GIB))
