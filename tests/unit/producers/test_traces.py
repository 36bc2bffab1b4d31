from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.producers.exceptions import TraceFormatError
from tidemark.producers.traces import FORMATS, read_trace
from tidemark.producers.traces.synthetic import synthetic_trace

from .traces_dir import expected, sample


@pytest.mark.parametrize("fmt", ["msr", "systor", "disksim"])
def test_sample_parses_with_expected_counts(fmt: str) -> None:
    parsed = list(read_trace(sample(fmt), fmt))
    facts = expected(fmt)
    assert len(parsed) == facts.records
    assert sum(r.is_write for r in parsed) == facts.writes
    assert parsed[0].time == 0.0
    assert all(r.size > 0 and r.offset >= 0 for r in parsed)
    assert [r.time for r in parsed] == sorted(r.time for r in parsed)
    assert len({r.number for r in parsed}) == facts.records


@pytest.mark.parametrize("fmt", ["msr", "systor", "disksim"])
def test_first_record_in_bytes_and_seconds(fmt: str) -> None:
    """MSR: bytes as given; SYSTOR: the earliest row, not the first; DiskSim: sectors times 512."""
    assert next(iter(read_trace(sample(fmt), fmt))) == expected(fmt).first


@pytest.mark.parametrize("fmt", ["msr", "systor", "disksim"])
def test_duration_is_in_seconds(fmt: str) -> None:
    low, high = expected(fmt).last_time
    assert low <= list(read_trace(sample(fmt), fmt))[-1].time <= high


def test_systor_is_sorted_and_keeps_line_numbers() -> None:
    parsed = list(read_trace(sample("systor"), "systor"))
    assert parsed[0].number != 2, "the file's first row is not its earliest"
    assert min(r.number for r in parsed) == 2, "line 1 is the header"


@settings(max_examples=30)
@given(st.sampled_from(sorted(FORMATS)), st.integers(0, 2**32), st.integers(0, 300))
def test_a_generated_trace_parses_back_to_its_records(fmt: str, seed: int, records: int) -> None:
    trace = synthetic_trace(fmt, seed, records)
    with tempfile.TemporaryDirectory() as folder:
        assert list(read_trace(trace.write(Path(folder) / "trace"), fmt)) == trace.records


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.txt"
    path.write_text(text)
    return path


MSR_OK = "128166385295514663,hm,0,Write,9056014336,2048,2833\n"
SYSTOR_OK = "Timestamp,Response,IOType,LUN,Offset,Size\n1.5,0.1,W,0,4096,512\n"
DISKSIM_OK = "938513000 4 8 16 0\n"


@pytest.mark.parametrize(
    ("fmt", "text", "line", "why"),
    [
        ("msr", MSR_OK + "128166385295514700,hm,0,Write,9056014336\n", 2, "expected 7"),
        ("msr", MSR_OK * 2 + "x,hm,0,Write,1,2,3\n", 3, "Timestamp is not an integer"),
        ("msr", MSR_OK + "128166385295514700,hm,0,Erase,0,512,1\n", 2, "Type must be Read or Write"),
        ("msr", MSR_OK + "128166385295514700,hm,0,Read,-512,512,1\n", 2, "Offset is negative"),
        ("systor", "time,what\n", 1, "expected the header"),
        ("systor", SYSTOR_OK + "\n1.6,0.1,X,0,0,512\n", 4, "IOType must be R or W"),
        ("systor", SYSTOR_OK + "nan,0.1,R,0,0,512\n", 3, "finite non-negative"),
        ("systor", SYSTOR_OK + "1.7,0.1,R,0,0\n", 3, "expected 6"),
        ("disksim", DISKSIM_OK + "938513001 4 8 16 2\n", 2, "type must be 0"),
        ("disksim", DISKSIM_OK + "938513001 4 8 sixteen 0\n", 2, "size is not an integer"),
        ("disksim", DISKSIM_OK + "938513001,4,8,16,0\n", 2, "expected 5"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, fmt: str, text: str, line: int, why: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TraceFormatError) as caught:
        list(read_trace(path, fmt))
    assert f"{path}:{line}:" in str(caught.value)
    assert why in str(caught.value)


def test_binary_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "trace.bin"
    path.write_bytes(b"\x00\xff\xfe garbage")
    for fmt in FORMATS:
        with pytest.raises(TraceFormatError, match="not an ASCII text trace"):
            list(read_trace(path, fmt))


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="unknown trace format 'blk'"):
        read_trace(_write(tmp_path, MSR_OK), "blk")
    with pytest.raises(TraceFormatError, match="does not exist"):
        read_trace(tmp_path / "missing.csv", "msr")


def test_blank_lines_are_skipped_and_numbering_kept(tmp_path: Path) -> None:
    parsed = list(read_trace(_write(tmp_path, "\n" + DISKSIM_OK + "\n938514000 4 8 16 1\n"), "disksim"))
    assert [(r.number, r.is_write) for r in parsed] == [(2, True), (4, False)]
    assert parsed[1].time == pytest.approx(1e-6)
