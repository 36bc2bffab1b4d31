"""Figure 8: fio (ioengine=nbd) through `tidemark track nbd` vs `nbdkit file`, both ack modes.

Three servers get the same fio jobs (fio_runner.JOBS) on their own sparse image of the same size,
one after the other in the same run: nbdkit's file plugin (the anchor), the tracker with
`--ack local` (the default: acknowledged from the image and the activity log, shipped
asynchronously) and with `--ack kafka` (acknowledged once Kafka has each event).

With local acknowledgement a processor and a mirror run too, and the figure also reports how long
after the last job (1 MiB sequential writes, ended by a flush) the mirror is identical to the
image (`tidemark verify --source`, polled), against the time figure 1's 64 KiB ingest rate needs
for the bytes written plus 10 s.
"""

from __future__ import annotations

import subprocess

from . import ingest
from .env import MIB, BenchEnv, Stage, free_port, sparse_file, stop_process, wait_for_port
from .fio_runner import JOBS, FioJob, FioResult, run_fio
from .mirror_check import until_identical
from .results import INFO, Figure, ratio_at_least, ratio_at_most, value_at_most

PROCESSOR_ARGS = ("--rp-interval", "2")


def _run_jobs(uri: str, size: int, seconds: float) -> dict[str, FioResult]:
    return {job.name: run_fio(job, uri, size, seconds) for job in JOBS}


def nbdkit_results(stage: Stage, size: int, seconds: float) -> dict[str, FioResult]:
    image = sparse_file(stage.root / "nbdkit.img", size)
    port = free_port()
    server = subprocess.Popen(
        ["nbdkit", "-f", "-i", "127.0.0.1", "-p", str(port), "file", str(image)], stdin=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, server)
        return _run_jobs(f"nbd://127.0.0.1:{port}", size, seconds)
    finally:
        stop_process(server)
        image.unlink()


def tracker_results(stage: Stage, ack: str, size: int, seconds: float) -> tuple[dict[str, FioResult], float | None]:
    """fio through the tracker; with local ack also the seconds until the mirror is identical."""
    volume = f"fio-{ack}"
    stage.register(volume, size)
    image = sparse_file(stage.root / f"{volume}.img", size)
    mirror = stage.root / f"{volume}-mirror.img"
    port = free_port()
    helpers: list[subprocess.Popen[bytes]] = []
    server = stage.cli("track", "nbd", "--volume", volume, "--image", str(image), "--ack", ack,
                       "--listen", f"127.0.0.1:{port}", log=stage.root / f"track-{ack}.log")  # fmt: skip
    try:
        if ack == "local":
            helpers.append(stage.cli("process", *PROCESSOR_ARGS, log=stage.root / "process.log"))
            helpers.append(stage.cli("mirror", "--volume", volume, "--path", str(mirror),
                                     log=stage.root / "mirror.log"))  # fmt: skip
        wait_for_port(port, server)
        results = _run_jobs(f"nbd://127.0.0.1:{port}/{volume}", size, seconds)
        settle = until_identical(stage, volume, mirror, image) if ack == "local" else None
        return results, settle
    finally:
        for process in (server, *helpers):
            stop_process(process)
        image.unlink()
        mirror.unlink(missing_ok=True)


def _job_figures(job: FioJob, ours: FioResult, anchor: FioResult, ack: str) -> list[Figure]:
    label = f"fio {job.name}, track nbd --ack {ack}"
    detail = [f"p50 {ours.p50_us:.0f} us (nbdkit {anchor.p50_us:.0f} us), p99 {ours.p99_us:.0f} us "
              f"(nbdkit {anchor.p99_us:.0f} us), {ours.mb_s:.1f} MB/s (nbdkit {anchor.mb_s:.1f} MB/s)"]  # fmt: skip
    gated = ack == "local" and job.writes
    if job.bs == "1m":
        return [Figure("8", label + " (MB/s)", ours.mb_s, "MB/s", "nbdkit file, same job", anchor.mb_s,
                       ratio_at_least(0.5) if gated else INFO, detail)]  # fmt: skip
    figures = [Figure("8", label + " (IOPS)", ours.iops, "IOPS", "nbdkit file, same job", anchor.iops,
                      ratio_at_least(0.5) if gated else INFO, detail)]  # fmt: skip
    if job.iodepth == 32 and job.writes:
        figures.append(Figure("8", label + " p99", ours.p99_us, "us", "nbdkit file p99", anchor.p99_us,
                              ratio_at_most(3.0) if gated else INFO))  # fmt: skip
    if job.iodepth == 1 and ack == "kafka":
        figures.append(Figure("8", label + " p50", ours.p50_us / 1e3, "ms", "goal", 2.0,
                              value_at_most(2.0, "ms")))  # fmt: skip
    return figures


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    size = (256 if quick else 1024) * MIB
    seconds = 5.0 if quick else 10.0
    figures: list[Figure] = []
    with env.stage("fio") as stage:
        ingest_mb_s = ingest.kafka_64k_mb_s(env, stage, quick)
        anchor = nbdkit_results(stage, size, seconds)
        for ack in ("local", "kafka"):
            ours, settle = tracker_results(stage, ack, size, seconds)
            for job in JOBS:
                figures += _job_figures(job, ours[job.name], anchor[job.name], ack)
            if settle is not None:
                written = sum(r.io_bytes for j, r in ours.items() if "write" in j)
                budget = written / (ingest_mb_s * 1e6) + 10.0
                figures.append(
                    Figure("8", "fio: last job's end -> mirror identical (verify --source)", settle, "s",
                           "bytes written / figure 1's 64 KiB rate + 10 s", budget, ratio_at_most(1.0),
                           [f"{written / 1e6:.0f} MB written by the jobs; figure 1 64 KiB: {ingest_mb_s:.0f} MB/s"])
                )  # fmt: skip
    return figures
