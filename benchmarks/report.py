"""BENCHMARKS.md: the machine, the command, the date, the table, and what holds back each miss."""

from __future__ import annotations

import datetime

from . import machine
from .results import Failure, Figure, failure_row, markdown_table, row

# Filled from profiling the misses (see the module of each figure for how it is measured).
HOLDS_BACK: dict[str, str] = {
    "1": (
        "Per event the tracker does Python work (Avro encoding, xxh3 of the data, one future and "
        "two callbacks, the seq lock) on top of librdkafka, so the smaller the write, the more that "
        "per-event cost weighs; the ratios also swing with the load of the shared machine (across "
        "three runs here: 4 KiB 3.59 / 0.93 / 0.57, 64 KiB 2.81 / 0.80 / 1.37). What would move it: "
        "encoding BlockWrite with a precompiled writer (fastavro schemaless with a parsed schema, "
        "or a hand-packed header), computing xxh3 once (the processor recomputes it), and "
        "batching futures per submit instead of per event."
    ),
    "5": (
        "All three costs are milliseconds to a few hundred milliseconds and follow the changed "
        "blocks; which of them misses changes from run to run (one run: cut 1.32, verify 0.53, "
        "revert 1.05; the next: cut 0.98, verify 1.48, revert 1.08), i.e. it is millisecond-level "
        "noise on a shared 2-core machine (runs alternate the sizes; medians of 3). Longer runs "
        "(more changed blocks) would tighten it. Nothing in the cut reads per-volume-size state: "
        "it merges the per-change-set checksums and serialises the bitmap of changed blocks."
    ),
    "2": (
        "The anchor writes into the page cache; every write through the tracker waits for Kafka's "
        "acks=all confirmation before the NBD reply, and the whole path is Python (NBD framing, "
        "Avro encoding, xxh3, one future per event). The tracker core alone ingests 64 KiB writes "
        "at figure 1's rate, so the ceiling is Kafka on this 2-core machine (the broker JVM, the "
        "tracker and nbdkit/nbdcopy share the cores), well under the page cache's GB/s. What would "
        "move it: a higher ceiling (more partitions per volume / a faster broker disk), replies "
        "pipelined per connection so more writes are in flight, and a compiled NBD front end; the "
        "ratio against a page-cache server will stay far below 0.5 while the anchor is RAM-bound."
    ),
    "3": (
        "RPO lag is dominated by the sub-interval: a write waits for its sub-interval to seal "
        "(default 1 s, checked on 0.25 s ticks), then for the processor's transaction commit and the "
        "mirror's undo save + fsync + progress save. p50 is therefore about 0.5 s of waiting plus "
        "the pipeline, and p99 adds commit and fsync stalls on a shared disk. What would move it: "
        "`tidemark process --subinterval 0.25 --tick-interval 0.1` (the knob exists; more, smaller "
        "change sets), committing transactions per seal rather than per batch, and a mirror that "
        "fsyncs per group of change sets. Sustained end-to-end throughput is below the producer "
        "anchor because the processor copies every block into its state store and changelog "
        "(double Kafka traffic, see design: 'where block data lives')."
    ),
    "4": (
        "MSR hm_0 is bursty: about 490 writes in 127 s arriving in bursts, so the open sub-interval "
        "at a periodic cut often holds a burst and the cut ships it. The fold logic cuts a periodic "
        "point on the first tick after the interval, whatever the age of the open sub-interval. What "
        "would move it: a shorter sub-interval (0.25 s halves it, see the note), or aligning "
        "periodic (not requested) cuts to sub-interval seals, so a periodic cut waits at most one "
        "sub-interval and ships nothing extra. Not changed here: it moves recovery-point times, "
        "which the processor's owners and tests decide."
    ),
    "6": (
        "A seeding pass publishes every block of a random image to Kafka, so it runs at the Kafka "
        "ingest ceiling (figure 1), while warm `cat` runs at memory speed (GB/s). The re-scan row "
        "(nothing changed, nothing published) shows the read + xxh3 cost alone. What would move "
        "it: a seeding path that bypasses per-event Python work (larger extents, compression of "
        "compressible data), more partitions per volume, or a compiled hashing loop; against a "
        "warm page cache the seeding ratio cannot reach 0.5 on this machine."
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
    lines += ["", "## Results", "", markdown_table([row(r) if isinstance(r, Figure) else failure_row(r) for r in results])]
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
