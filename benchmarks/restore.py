"""Figure 11: instant restore (`tidemark restore`) of a recovery point, against `tidemark mount` and nbdcopy.

A real mirror (`sinks.Mirror`: sparse image, RocksDB undo store) holds point 1 of a volume of
`TIDEMARK_BENCH_RESTORE_GIB` GiB (default 1; quick 0.25) whose data is a fifth of it, in 1 MiB
pieces spread over the volume; point 2 then overwrites 4 MiB, so point 1 is read partly from the
undo data. The data goes into the mirror image directly and the points are cut by the processor's
folding logic and applied by `StreamApplier` in process (no Kafka). Both servers run in process
with the core NBD server; the clients are real (qemu-io, fio, nbdcopy).

- time to the first served read: from opening the restore (plan, destination) until `qemu-io
  read 0 4k` through it returns; anchor: the same for a read-only `mount` of the point.
- 4 KiB random reads QD1 (fio, p50) during the relocation (a second restore into another file, so
  the first one's rate is measured with no client); anchor: the same job on the mount alone.
- a replayed boot: 1,000 4 KiB reads in a tenth of the data (qemu-io, one connection) starting BOOT_DELAY_S
  after the restore opened, with the relocation capped at BOOT_RATE (a link to production storage);
  value: the time for the reads when the restore copies the volume's read profile (those blocks)
  first; anchor: the same without a profile (block order).
- time until the destination is standalone (the whole relocation), as a rate over the volume;
  anchor: nbdcopy of the same point from the mount into a file (it reads the holes too: the mount
  does not report block status), in the same run.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyroaring import BitMap

from tidemark.core.nbd.export import Export, ThreadedExport
from tidemark.core.nbd.server import new_event_loop, run_export
from tidemark.processors.fold_volume import FoldOptions, VolumeFolder
from tidemark.processors.memory_journal import MemoryJournal
from tidemark.processors.volume_state import VolumeState
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.mirror import Mirror
from tidemark.sinks.mount.serve import MountRequest, mounted
from tidemark.sinks.restore.copier import CopyOptions
from tidemark.sinks.restore.session import RestoreRequest, restoring
from tidemark.sinks.stream_applier import StreamApplier

from .cost import Buffered, fold_write
from .env import GIB, MIB, BenchEnv
from .fio_runner import FioJob, run_fio
from .results import INFO, Figure, ratio_at_least, value_at_most

BLOCK = 4096
VOLUME = "restore"
SITE = "bench"
READS = FioJob("4 KiB random read QD1", "randread", "4k", 1)
FIO_SECONDS = 2
BOOT_READS = 1000
BOOT_DELAY_S = 0.5
BOOT_RATE = 64 * MIB
BOOT_RUNS = 3


def volume_size(quick: bool) -> int:
    gib = float(os.environ.get("TIDEMARK_BENCH_RESTORE_GIB", "0.25" if quick else "1"))
    return int(gib * GIB) // MIB * MIB


def build_mirror(root: Path, size: int) -> None:
    """Point 1: a fifth of the volume in 1 MiB pieces; point 2: 4 MiB of it overwritten."""
    layout = MirrorLayout.of(root / "state", SITE, VOLUME)
    pieces = size // 5 // MIB
    stride = size // MIB // pieces
    with Mirror.create_or_open(layout, root / "mirror.img", size, BLOCK) as mirror:
        fd = os.open(root / "mirror.img", os.O_WRONLY)
        try:
            rng = random.Random(11)
            for piece in range(pieces):
                os.pwrite(fd, rng.randbytes(MIB), piece * stride * MIB)
            os.fsync(fd)
        finally:
            os.close(fd)
        stream = StreamApplier(mirror, VOLUME, layout.spool)
        emitter, journal = Buffered(), MemoryJournal()
        folder = VolumeFolder({}, emitter, FoldOptions(), journal)
        state = VolumeState(VOLUME, BLOCK, size)
        now, seq = 1000.0, 0
        for blocks in ([0], range(0, 4 * MIB // BLOCK)):  # point 1 (one block), point 2 (4 MiB over data)
            for block in blocks:
                fold_write(folder, state, journal, block, seq, now)
                seq += 1
            now += 1.0
            folder.cut(state, now, "REQUESTED", None, None, None)
            for offset, (record_type, record) in enumerate(emitter.events):
                stream.handle(record_type, record, 0, offset + seq * 10)
            emitter.events.clear()
        stream.close()


@contextmanager
def served(export: Export) -> Iterator[str]:
    """The export on 127.0.0.1 (a free port) in a thread while the block runs; yields its URL."""
    ready: list[int] = []
    started = threading.Event()
    loop = new_event_loop()
    stop = asyncio.Event()

    def main() -> None:
        def on_ready(_host: str, port: int) -> None:
            ready.append(port)
            started.set()

        loop.run_until_complete(run_export(export, "127.0.0.1", 0, stop=stop, ready=on_ready))

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the NBD server of the benchmark did not start")
    try:
        yield f"nbd://127.0.0.1:{ready[0]}/{export.name}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()


def first_read(url: str) -> None:
    command = ["qemu-io", "-r", "-f", "raw", url, "-c", "read 0 4k"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or "failed" in done.stdout:
        raise RuntimeError(f"qemu-io read through {url}: {done.stdout}{done.stderr}")


def measure(root: Path, size: int) -> dict[str, float]:
    state = root / "state"
    found: dict[str, float] = {}
    started = time.perf_counter()
    with mounted(state, MountRequest(VOLUME, 1, SITE)) as backend, served(ThreadedExport(backend)) as url:
        first_read(url)
        found["mount_first_read_s"] = time.perf_counter() - started
        found["mount_p50_us"] = run_fio(READS, url, size, FIO_SECONDS).p50_us
        started = time.perf_counter()
        copy = root / "nbdcopy.img"
        subprocess.run(["nbdcopy", url, str(copy)], check=True, timeout=3600)
        found["nbdcopy_s"] = time.perf_counter() - started
    destination = root / "restored.img"
    started = time.perf_counter()
    with restoring(state, RestoreRequest(VOLUME, 1, destination, SITE)) as session:
        with served(ThreadedExport(session.export)) as url:
            session.start()
            first_read(url)
            found["restore_first_read_s"] = time.perf_counter() - started
            session.done.wait()
            found["restore_s"] = time.perf_counter() - started
        if session.error is not None:
            raise RuntimeError(f"the relocation failed: {session.error}")
    again = RestoreRequest(VOLUME, 1, root / "again.img", SITE)
    with restoring(state, again) as session, served(ThreadedExport(session.export)) as url:
        session.start()
        found["restore_p50_us"] = run_fio(READS, url, size, FIO_SECONDS).p50_us
        found["relocating_during_fio"] = 0.0 if session.done.is_set() else 1.0
        session.done.wait()
    boots: dict[bool, list[float]] = {True: [], False: []}
    for attempt in range(BOOT_RUNS):  # alternate the modes; medians (the machine is shared)
        for with_profile in (True, False) if attempt % 2 == 0 else (False, True):
            boots[with_profile].append(replayed_boot(root / f"boot-{attempt}", size, with_profile))
    found["boot_profile_s"] = statistics.median(boots[True])
    found["boot_plain_s"] = statistics.median(boots[False])
    if not _same(destination, copy):
        raise RuntimeError("the relocated destination differs from nbdcopy of the same point")
    return found


def boot_pattern(size: int) -> list[int]:
    """Offsets of BOOT_READS 4 KiB reads (seeded) in a tenth of the data pieces, as a boot reads its
    kernel, libraries and configuration: a small part of the data, scattered over the volume."""
    pieces = size // 5 // MIB
    stride = size // MIB // pieces
    rng = random.Random(23)
    hot = rng.sample(range(pieces), max(1, pieces // 10))
    return [rng.choice(hot) * stride * MIB + rng.randrange(MIB // BLOCK) * BLOCK for _ in range(BOOT_READS)]


def replayed_boot(folder: Path, size: int, with_profile: bool) -> float:
    """Seconds for the boot's reads through a restore (into `folder`) started BOOT_DELAY_S before them."""
    offsets = boot_pattern(size)
    profile = BitMap(offset // BLOCK for offset in offsets)
    name = "boot-profile.img" if with_profile else "boot-plain.img"
    folder.mkdir(exist_ok=True)
    request = RestoreRequest(VOLUME, 1, folder / name, SITE)
    options = CopyOptions(max_bytes_per_second=BOOT_RATE)
    first = (lambda: profile) if with_profile else None
    commands = [arg for offset in offsets for arg in ("-c", f"read {offset} 4k")]
    with restoring(folder.parent / "state", request, options, first=first) as session:
        with served(ThreadedExport(session.export)) as url:
            session.start()
            time.sleep(BOOT_DELAY_S)
            started = time.perf_counter()
            done = subprocess.run(["qemu-io", "-r", "-f", "raw", url, *commands], capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if done.returncode != 0 or "failed" in done.stdout:
                raise RuntimeError(f"the replayed boot through {url} failed: {done.stderr[-400:]}")
        session.stop()
    return elapsed


def _same(a: Path, b: Path) -> bool:
    return subprocess.run(["cmp", "-s", str(a), str(b)], check=False).returncode == 0


def figures(found: dict[str, float], size: int) -> list[Figure]:
    mb = size / 1e6
    during = "during the relocation" if found["relocating_during_fio"] else "(the relocation ended first)"
    return [
        Figure("11", "restore: time to the first served read", found["restore_first_read_s"], "s",
               "mount of the same point", found["mount_first_read_s"], value_at_most(1.0, "s"),
               [f"{size / GIB:g} GiB volume, {size // 5 / GIB:g} GiB of data; qemu-io start included"]),
        Figure("11", f"restore: 4 KiB random read QD1 p50 {during}", found["restore_p50_us"], "us",
               "mount alone", found["mount_p50_us"], INFO, [f"fio nbd engine, {FIO_SECONDS} s, a second restore"]),
        Figure("11", f"restore: {BOOT_READS} reads of a replayed boot, read profile copied first",
               found["boot_profile_s"], "s", "same restore in block order", found["boot_plain_s"], INFO,
               [f"reads start {BOOT_DELAY_S} s after the restore opened; relocation capped at "
                f"{BOOT_RATE // MIB} MiB/s; qemu-io start included; median of {BOOT_RUNS} runs each"]),
        Figure("11", "restore: until the destination is standalone", mb / found["restore_s"], "MB/s of volume",
               "nbdcopy of the point from a mount", mb / found["nbdcopy_s"], ratio_at_least(0.5),
               [f"restore {found['restore_s']:.1f} s ({size // 5 / 1e6 / found['restore_s']:.0f} MB/s of data, holes "
                f"skipped), nbdcopy {found['nbdcopy_s']:.1f} s; the destination equals nbdcopy's copy (cmp)"]),
    ]  # fmt: skip


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    root = env.root / "restore"
    root.mkdir(exist_ok=True)
    size = volume_size(quick)
    build_mirror(root, size)
    return figures(measure(root, size), size)
