"""Figure 6: a full seeding scan (`producers.scan.Scanner`) vs `cat image > /dev/null`.

The image is random (every block is data, every block is published to Kafka). Caches cannot be
dropped here, so the image is read once first and both measurements run warm; the scan's MB/s
is therefore hashing + publishing, not the disk.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tidemark.producers.scan import Scanner, ScanOptions
from tidemark.producers.tracker import Tracker, TrackerOptions

from .env import MIB, BenchEnv, Stage, random_image
from .results import INFO, Figure, ratio_at_least


def cat_mb_s(image: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cat", str(image)], stdout=subprocess.DEVNULL, check=True)
    return image.stat().st_size / (time.perf_counter() - started) / 1e6


def scan_mb_s(stage: Stage, image: Path) -> tuple[float, float]:
    """A seeding pass then an unchanged re-scan, with the CLI's defaults (20 ms threshold, 4 MiB chunks)."""
    size = image.stat().st_size
    spec = stage.register("scanned", size)
    options = TrackerOptions(extent_bytes=stage.settings.extent_bytes)
    folder = stage.settings.volume_state_dir("trackers", spec.name)
    with Tracker(spec, stage.clients, stage.topics, folder, image, options).start() as tracker:
        scan_state = stage.settings.volume_state_dir("scan", spec.name)
        with Scanner(tracker, image, scan_state, ScanOptions(max_extent_bytes=stage.settings.extent_bytes)) as scanner:
            stats = scanner.run_pass(progress=False)
            again = scanner.run_pass(progress=False)
    if not stats.completed or stats.blocks_scanned * spec.block_size != size:
        raise RuntimeError(f"the scan stopped early: {stats.as_dict()}")
    if again.changed_blocks:
        raise RuntimeError(f"the re-scan of an unchanged image found {again.changed_blocks} changed blocks")
    return stats.mb_per_s, again.mb_per_s


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    with env.stage("scan") as stage:
        image = random_image(stage.root / "scan.img", (512 if quick else 4096) * MIB)
        cat_mb_s(image)  # warm the page cache
        anchor = cat_mb_s(image)
        ours, rescan = scan_mb_s(stage, image)
        image.unlink()
    return [
        Figure("6", f"scan tracker, seeding a {512 if quick else 4096} MiB random image", ours, "MB/s",
               "cat image > /dev/null (warm)", anchor, ratio_at_least(0.5),
               ["page cache warm for both (read once first); the scan publishes every block to Kafka"]),
        Figure("6", "scan tracker, re-scan of the unchanged image (context)", rescan, "MB/s",
               "cat image > /dev/null (warm)", anchor, INFO, ["reads and hashes every block, publishes nothing"]),
    ]  # fmt: skip
