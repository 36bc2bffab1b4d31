"""`python -m benchmarks [--quick] [--only 1,4] [--profile 3]`: run the figures, print, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import (
    analytics_keepup,
    cost,
    end_to_end,
    fio_path,
    folding,
    ingest,
    nbd_path,
    periodic_points,
    report,
    restore,
    scan,
    seed,
)
from .env import BenchEnv
from .results import HEADERS, Failure, Figure, failure_row, row

Runner = Callable[[BenchEnv, bool], list[Figure]]
# Figure 7 (memory) is measured during figure 3's load, so one runner yields both.
RUNNERS: dict[str, tuple[str, Runner]] = {
    "1": ("ingest", ingest.run),
    "2": ("NBD path", nbd_path.run),
    "3": ("end to end + memory (7)", end_to_end.run),
    "4": ("folding", folding.run),
    "5": ("cost follows change", cost.run),
    "6": ("scan tracker", scan.run),
    "8": ("fio through the NBD tracker", fio_path.run),
    "9": ("seeding a disk", seed.run),
    "10": ("analytics keeps up", analytics_keepup.run),
    "11": ("instant restore", restore.run),
    "12": ("periodic points under a sustained seed", periodic_points.run),
}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a pass of a few minutes")
    parser.add_argument("--only", default="", help="comma-separated figure numbers (7 comes with 3)")
    parser.add_argument("--profile", default="", help="figure numbers to run under pyinstrument (bench extra)")
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"), help="report file")
    parser.add_argument("--workdir", type=Path, default=None, help="temp folder (default: system temp)")
    return parser.parse_args(argv)


def _run_one(number: str, env: BenchEnv, quick: bool, profile: bool, console: Console) -> list[Figure | Failure]:
    name, runner = RUNNERS[number]
    console.print(f"[bold]figure {number}[/]: {name} ...", highlight=False)
    started = time.monotonic()
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    try:
        found: list[Figure | Failure] = list(runner(env, quick))
    except Exception as exc:  # noqa: BLE001  (one figure failing must not lose the others)
        traceback.print_exc()
        found = [Failure(number, name, f"{type(exc).__name__}: {exc}")]
    finally:
        if profiler is not None:
            profiler.stop()
            out = Path(f"profile-figure-{number}.txt")
            out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
            console.print(f"  profile written to {out}")
    console.print(f"  done in {time.monotonic() - started:.0f} s", highlight=False)
    return found


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True, highlight=False)
    wanted = [n for n in args.only.split(",") if n] or list(RUNNERS)
    wanted = ["3" if n == "7" else n for n in wanted]
    unknown = [n for n in wanted if n not in RUNNERS]
    if unknown:
        console.print(f"unknown figure(s) {', '.join(unknown)}: choose from 1-12")
        return 2
    profiled = set(args.profile.split(",")) - {""}
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    started = datetime.datetime.now(datetime.UTC)
    results: list[Figure | Failure] = []
    with tempfile.TemporaryDirectory(prefix="tidemark-bench-", dir=args.workdir) as work:
        env = BenchEnv(Path(work))
        try:
            for number in dict.fromkeys(wanted):
                results += _run_one(number, env, args.quick, number in profiled, console)
        finally:
            env.close()
    results.sort(key=lambda r: int(r.number))
    table = Table(*HEADERS, title="tidemark benchmarks" + (" (quick)" if args.quick else ""))
    for result in results:
        table.add_row(*(row(result) if isinstance(result, Figure) else failure_row(result)))
    Console(width=200).print(table)
    args.output.write_text(report.render(results, env.kafka_label, command.strip(), started, args.quick))
    console.print(f"wrote {args.output}")
    return 1 if any(isinstance(r, Failure) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
