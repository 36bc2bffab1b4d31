"""The demo's pure parts: image diffs, file-set comparison, metric-page parsing, the report."""

from __future__ import annotations

import random
from pathlib import Path

from tidemark.demo.files import changed_extents, checksums, compare, generate
from tidemark.demo.pipeline import METRIC_NAMES, lag_mean, missing_metrics
from tidemark.demo.report import Report
from tidemark.producers.traces import read_trace
from tidemark.producers.traces.synthetic import msr_trace


def test_changed_extents_merges_adjacent_granules_and_finds_the_last(tmp_path: Path) -> None:
    before, after = tmp_path / "a", tmp_path / "b"
    data = bytearray(1 << 20)
    before.write_bytes(data)
    data[10] = 1
    data[70_000] = 1
    data[-1] = 1
    after.write_bytes(data)
    assert changed_extents(before, after, granule=65536) == [(0, 131072), ((1 << 20) - 65536, 65536)]
    assert changed_extents(before, before) == []


def test_generated_files_round_trip_and_a_change_is_named(tmp_path: Path) -> None:
    made = generate(tmp_path / "f", seed=1, count=5, max_bytes=1000)
    assert checksums(tmp_path / "f") == made
    first = sorted(made)[0]
    (tmp_path / "f" / first).write_bytes(b"other")
    result = compare(made, checksums(tmp_path / "f"))
    assert (result.different, result.missing, result.unexpected) == ([first], [], [])
    assert not result.identical and first in result.describe(len(made))


def test_metric_page_parsing() -> None:
    page = "\n".join(f'{name}{{component="mirror",volume="v"}} 1.0' for name in METRIC_NAMES)
    page = (
        "# HELP x\n"
        + page
        + '\ntidemark_rpo_lag_seconds_sum{volume="v"} 3.0\ntidemark_rpo_lag_seconds_count{volume="v"} 2.0\n'
    )
    assert missing_metrics(page) == []
    assert missing_metrics("# HELP tidemark_events_total x\n") == list(METRIC_NAMES)
    assert lag_mean(page) == 1.5
    assert lag_mean("") is None


def test_report_fails_on_any_failed_check_and_on_no_checks() -> None:
    report = Report()
    assert not report.passed
    report.check("a", True, "")
    assert report.passed
    report.check("b", False, "broken")
    assert not report.passed


def test_synthetic_trace_parses_as_msr(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(msr_trace(random.Random(1), 50).text)
    records = list(read_trace(path, "msr"))
    assert len(records) == 50 and any(r.is_write for r in records)
