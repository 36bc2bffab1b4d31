"""Figure 8: fio (ioengine=nbd) through `tidemark track nbd` vs `nbdkit file`, both ack modes.

Three servers get the same fio jobs (fio_runner.JOBS) on their own sparse image of the same size,
one after the other in the same run: nbdkit's file plugin (the anchor), the tracker with
`--ack local` (the default: acknowledged from the image and the activity log, shipped
asynchronously) and with `--ack kafka` (acknowledged once Kafka has each event).

The jobs measure the protected host: there the tracker is all that runs (its events go to the
broker; the processor and the mirror run on other hosts, the mirror at another site), so no
processor or mirror runs during them. The broker, which would be elsewhere too, shares the cores.

The 4 KiB write jobs run once more with `--no-native-writes` (context, not a goal): every request
served in Python, against the same jobs with the C write path (the `--ack local` tracker above),
which shows what `tidemark/core/nbd/_inline_writes.c` gives.

The 1 MiB job runs once more with a pull-ahead bound of 32 MiB (context, not a goal): with a
small bound the tracker goes ahead within a fraction of a second, and the drain then yields to
the client (producers/drain_pace.py); with the default bound it takes the client longer to fill
the window.

Then, with local acknowledgement, the whole pipeline: a tracker of a volume of its own, on topics
of their own (so the processor has no other volume's journal to fold first), with a processor and
a mirror running, the last job again (1 MiB sequential writes, ended by a flush),
and how long after its end the mirror is identical to the image (`tidemark verify --source`,
polled), against the time figure 1's 64 KiB ingest rate needs for the bytes written plus 10 s.
"""

from __future__ import annotations

import subprocess

from tidemark.producers.tracker import TrackerOptions

from . import ingest
from .env import MIB, BenchEnv, Stage, free_port, sparse_file, stop_process, wait_for_port
from .fio_runner import JOBS, FioJob, FioResult, run_fio
from .mirror_check import until_identical
from .results import INFO, Figure, ratio_at_least, ratio_at_most, value_at_most

PROCESSOR_ARGS = ("--rp-interval", "2")
SMALL_BOUND_MIB = 32


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


class _Tracker:
    """`tidemark track nbd` of a new volume of `size` on a sparse image, while in the `with`."""

    def __init__(self, stage: Stage, volume: str, ack: str, size: int, *extra: str) -> None:
        self.stage, self.volume, self.ack, self.extra = stage, volume, ack, extra
        stage.register(volume, size)
        self.image = sparse_file(stage.root / f"{volume}.img", size)
        self.port = free_port()
        self.uri = f"nbd://127.0.0.1:{self.port}/{volume}"
        self.server: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Tracker:
        self.server = self.stage.cli("track", "nbd", "--volume", self.volume, "--image", str(self.image),
                                     "--ack", self.ack, "--listen", f"127.0.0.1:{self.port}", *self.extra,
                                     log=self.stage.root / f"track-{self.volume}.log")  # fmt: skip
        wait_for_port(self.port, self.server)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            stop_process(self.server)
        self.image.unlink()


def tracker_results(stage: Stage, ack: str, size: int, seconds: float) -> dict[str, FioResult]:
    """The jobs through the tracker alone, as on the protected host."""
    with _Tracker(stage, f"fio-{ack}", ack, size) as tracker:
        return _run_jobs(tracker.uri, size, seconds)


def python_path_results(stage: Stage, size: int, seconds: float) -> dict[str, FioResult]:
    """The 4 KiB write jobs with every request served in Python (`--no-native-writes`)."""
    with _Tracker(stage, "fio-python-writes", "local", size, "--no-native-writes") as tracker:
        return {job.name: run_fio(job, tracker.uri, size, seconds) for job in JOBS if job.writes and job.bs == "4k"}


def small_bound_result(stage: Stage, size: int, seconds: float) -> FioResult:
    """The 1 MiB job again with a pull-ahead bound of `SMALL_BOUND_MIB`: the tracker goes ahead
    sooner, and the drain then yields to the client (producers/drain_pace.py)."""
    with _Tracker(stage, "fio-small-bound", "local", size, "--unshipped-max-mib", str(SMALL_BOUND_MIB)) as tracker:
        return run_fio(JOBS[-1], tracker.uri, size, seconds)


def settle_seconds(stage: Stage, size: int, seconds: float) -> tuple[FioResult, float]:
    """The last job through the whole pipeline (local ack); seconds from its end until the mirror
    is identical to the image."""
    job = JOBS[-1]
    with _Tracker(stage, "fio-settle", "local", size) as tracker:
        mirror = stage.root / "fio-settle-mirror.img"
        helpers = [
            stage.cli("process", *PROCESSOR_ARGS, log=stage.root / "process.log"),
            stage.cli("mirror", "--volume", tracker.volume, "--path", str(mirror), log=stage.root / "mirror.log"),
        ]
        try:
            result = run_fio(job, tracker.uri, size, seconds)
            return result, until_identical(stage, tracker.volume, mirror, tracker.image)
        finally:
            for process in helpers:
                stop_process(process)
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
        ingest_mb_s = ingest.kafka_mb_s(env, stage, 65536, quick)
        anchor = nbdkit_results(stage, size, seconds)
        results = {ack: tracker_results(stage, ack, size, seconds) for ack in ("local", "kafka")}
        for ack, ours in results.items():
            for job in JOBS:
                figures += _job_figures(job, ours[job.name], anchor[job.name], ack)
        native = results["local"]
        for name, python in python_path_results(stage, size, seconds).items():
            figures.append(
                Figure("8", f"fio {name}, track nbd --ack local --no-native-writes (IOPS)", python.iops, "IOPS",
                       "the same with the C write path", native[name].iops, INFO,
                       [f"p50 {python.p50_us:.0f} us (C path {native[name].p50_us:.0f} us), p99 "
                        f"{python.p99_us:.0f} us (C path {native[name].p99_us:.0f} us)"])
            )  # fmt: skip
        small, last = small_bound_result(stage, size, seconds), anchor[JOBS[-1].name]
        figures.append(
            Figure("8", f"fio {JOBS[-1].name}, track nbd --ack local --unshipped-max-mib {SMALL_BOUND_MIB} (MB/s)",
                   small.mb_s, "MB/s", "nbdkit file, same job", last.mb_s, INFO,
                   [f"the default bound is {TrackerOptions.unshipped_max_bytes // MIB} MiB; "
                    f"p99 {small.p99_us:.0f} us (nbdkit {last.p99_us:.0f} us)"])
        )  # fmt: skip
    with env.stage("fio-settle") as stage:  # topics of its own: the processor folds only this volume
        written, settle = settle_seconds(stage, size, seconds)
        budget = written.io_bytes / (ingest_mb_s * 1e6) + 10.0
        figures.append(
            Figure("8", "fio: last job's end -> mirror identical (verify --source)", settle, "s",
                   "bytes written / figure 1's 64 KiB rate + 10 s", budget, ratio_at_most(1.0),
                   [f"{JOBS[-1].name} for {seconds:g} s through tracker, processor and mirror, all running: "
                    f"{written.io_bytes / 1e6:.0f} MB at {written.mb_s:.0f} MB/s; figure 1 64 KiB: "
                    f"{ingest_mb_s:.0f} MB/s"])
        )  # fmt: skip
    return figures
