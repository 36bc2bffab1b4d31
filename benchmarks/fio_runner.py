"""fio with its nbd engine: one job against one NBD URI, parsed into IOPS, MB/s and latency.

fio prints "fio: connected to NBD server" (and similar lines) before its JSON; everything before
the first `{` is dropped before parsing.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class FioJob:
    """One fio workload; `name` is how the figure calls it."""

    name: str
    rw: str  # randwrite, write, randread, ...
    bs: str
    iodepth: int

    @property
    def writes(self) -> bool:
        return "write" in self.rw


@dataclass(frozen=True)
class FioResult:
    iops: float
    mb_s: float
    p50_us: float
    p99_us: float
    io_bytes: int


JOBS = (
    FioJob("4 KiB random write QD1", "randwrite", "4k", 1),
    FioJob("4 KiB random write QD32", "randwrite", "4k", 32),
    FioJob("4 KiB random read QD32", "randread", "4k", 32),
    FioJob("1 MiB sequential write QD8", "write", "1m", 8),
)


def run_fio(job: FioJob, uri: str, size: int, seconds: float, *, verify: bool = False) -> FioResult:
    """Run `job` for `seconds` against `uri` over the first `size` bytes (fio must be installed)."""
    command = [
        "fio", "--name=bench", "--ioengine=nbd", f"--uri={uri}", f"--rw={job.rw}", f"--bs={job.bs}",
        f"--iodepth={job.iodepth}", f"--size={size}", "--output-format=json", "--randrepeat=0",
    ]  # fmt: skip
    if verify:
        command += ["--verify=crc32c", "--do_verify=1"]
    else:
        command += ["--time_based", f"--runtime={seconds:g}"]
    if job.writes:
        command.append("--end_fsync=1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 600, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"fio {job.name} against {uri} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return parse(done.stdout, "write" if job.writes else "read")


def parse(output: str, direction: str) -> FioResult:
    """The figures of fio's JSON output (`direction`: read or write) for its first job."""
    start = output.find("{")
    if start < 0:
        raise RuntimeError(f"fio printed no JSON: {output[-400:]}")
    stats = json.loads(output[start:])["jobs"][0][direction]
    percentiles = stats.get("clat_ns", {}).get("percentile", {})
    return FioResult(
        iops=float(stats["iops"]),
        mb_s=float(stats["bw_bytes"]) / 1e6,
        p50_us=float(percentiles.get("50.000000", 0.0)) / 1e3,
        p99_us=float(percentiles.get("99.000000", 0.0)) / 1e3,
        io_bytes=int(stats["io_bytes"]),
    )
