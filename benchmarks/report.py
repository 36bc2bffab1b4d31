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
        "The sustained rate now meets its context goal (0.62 of the anchor, was 0.43) with the processor "
        "at 213 MB. RPO lag p99 (4.8 s in this run, 0.69-1.79 s in quieter helper runs) is held back by "
        'stalls, not by the sub-interval: the per-stage split in the notes puts the p99 in "sealed -> '
        "produced\" (1.8 s, the processor's transaction while the CI run competed for the disk and CPU) "
        "and \"visible -> applied\" (4.4 s, the mirror's apply and fsync), while every stage's p50 is "
        "under 0.15 s. Next: profile the mirror's apply loop under load and let it apply a set's extents "
        "without waiting for the previous fsync."
    ),
    "5": (
        "Cut and verify follow the change (milliseconds; the ratio is millisecond noise on a shared "
        "machine). Revert got slower since the undo store is streamed in key order (0.5 s -> 3.7 s on 1 GiB) "
        "and the 64 GiB run pays more: not profiled yet."
    ),
    "8": (
        "Reads through the same server run near nbdkit, so the NBD core is not the limit; local-ack "
        "writes are. This session's profile (py-spy `--gil`) found the interpreter lock mostly free: the "
        "event loop waits for a CPU, and shipping (hash, encode, produce, delivery reports) is 55-75% of "
        "the tracker's CPU per write. With shipping removed entirely the same server reached about 0.2x "
        "nbdkit at QD1 and 0.45x at QD32, so a shipper process alone would not reach 0.5x on 2 cores. A "
        "5 ms batch pause cut context switches per write 2-4x and the QD32 p99 (7.6x -> 3.1x in "
        "back-to-back runs; 4.8x here under CI load). Next: less CPU per write (recycled payload "
        "buffers, one copy), then the process split on a machine with spare cores."
    ),
    "9": (
        "The 553 MB peak is from the previous session's run. The processor's buffers are now all "
        "fixed-size (input queue 16 MiB, producer queue 32 MiB, read-back 8 MiB, write cache 48 MiB, "
        "memtables 8 MiB per partition, transactions of about 16 MiB): a 4 GiB seed peaked at 204 MB and "
        "stayed flat from minute 4 to 12; the 16 GiB seed was not rerun."
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


def render(results: list[Figure | Failure], kafka: str, command: str, started: datetime.datetime, quick: bool) -> str:
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
