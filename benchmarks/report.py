"""BENCHMARKS.md: the machine, the command, the date, the table, and what holds back each miss."""

from __future__ import annotations

import datetime

from . import machine
from .results import Failure, Figure, failure_row, markdown_table, row

# Filled from profiling the misses (see the module of each figure for how it is measured).
HOLDS_BACK: dict[str, str] = {
    "1": (
        "Per 4 KiB event the tracker core still does Python work (one enqueue, xxh3, the hand-rolled "
        "BlockWrite encoding, one delivery report) on top of librdkafka, so the smaller the write, the "
        "more that per-event cost weighs; 64 KiB writes run above the anchor. The ratio swings with the "
        "load of the shared 2-core machine."
    ),
    "2": (
        "nbdcopy's 1 GiB of writes go through the tracker's write path, which is limited the same way "
        "as figure 8's writes (see there): the NBD core itself serves reads at the anchor's rate."
    ),
    "3": (
        "The processor no longer copies block data into its state (changelog 0.4% of the bytes, figure "
        "9), which lifted the sustained rate from 0.15 to 0.43 of the anchor. RPO lag p99 is still "
        "dominated by the sub-interval and by commit and fsync stalls on the shared disk (p50 0.73 s). "
        "Not profiled yet in this run."
    ),
    "5": (
        "Cut and verify follow the change (milliseconds; the ratio is millisecond noise on a shared "
        "machine). Revert got slower since the undo store is streamed in key order (0.5 s -> 3.7 s on 1 GiB) "
        "and the 64 GiB run pays more: not profiled yet."
    ),
    "8": (
        "Reads through the same server run at 1.0x nbdkit, so the NBD core is not the limit; local-ack "
        "writes are. py-spy on the tracker at QD32 (pyinstrument samples one thread only) put about 40% of "
        "the event loop's samples in the reply send waiting to take the interpreter lock back from the "
        "shipper and poll threads, which encode, hash and produce every write in the same process. What "
        "would move it: the shipper in its own process, fed through a file-backed spool ring that also "
        "keeps the unshipped window out of the tracker's RSS. The 1 MiB job is held near Kafka's rate."
    ),
    "9": (
        "The processor's peak RSS includes its 128 MiB cache of recent writes and the fetch buffers of two "
        "consumers (its input and the journal reader); `--write-cache-mib 64` and smaller fetch queues are "
        "the levers (not measured yet)."
    ),
    "10": (
        "CPU on a loaded machine. The journal reader costs about 160 µs of CPU per 64 KiB write "
        "(librdkafka's fetch, the Avro decode, the windows; the detector samples a bounded number "
        "per window); faust's own consumer cost about 800 µs, which is why the journal is no longer "
        "a faust agent. The ratio also counts the time to the next /metrics scrape."
    ),
    "6": (
        "A seeding pass publishes every block of a random image to Kafka, so it runs at the Kafka ingest "
        "ceiling (figure 1), while warm `cat` runs at memory speed (GB/s). The re-scan row (nothing "
        "changed, nothing published) shows the read + xxh3 cost alone."
    ),
}

METHOD = """\
Every figure is a ratio against an anchor measured in the same run, on the same broker, with the
same data; the machine is shared and noisy, so compare ratios, not absolute numbers. MB = 10^6 bytes.
Page cache: dropping caches is not possible here; images are read once before the scan and `cat`
are timed, so both run warm."""


def render(
    results: list[Figure | Failure], kafka: str, command: str, started: datetime.datetime, quick: bool
) -> str:
    lines = ["# Benchmarks", "", f"Command: `{command}`" + (" (quick pass: smaller sizes)" if quick else ""), ""]
    lines.append(f"Date: {started.strftime('%Y-%m-%d %H:%M UTC')}")
    lines += ["", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine.describe(kafka)]
    lines += [
        "",
        "## Results",
        "",
        markdown_table([row(r) if isinstance(r, Figure) else failure_row(r) for r in results]),
    ]
    notes = [(r.number, r.name, n) for r in results if isinstance(r, Figure) for n in r.notes]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {num} {name}: {note}" for num, name, note in notes]
    failures = [r for r in results if isinstance(r, Failure)]
    if failures:
        lines += ["", "Failed to measure:", ""] + [f"- {f.number} {f.name}: {f.error}" for f in failures]
    missed = sorted({r.number for r in results if isinstance(r, Figure) and r.met is False})
    if missed:
        lines += ["", "## What holds back the missed goals", ""]
        for number in missed:
            lines += [f"### Figure {number}", "", HOLDS_BACK.get(number, "Not analysed yet."), ""]
    lines += ["", "## Method", "", METHOD, ""]
    return "\n".join(lines)
