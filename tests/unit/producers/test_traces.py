from __future__ import annotations

from pathlib import Path

import pytest
from .traces_dir import sample

from tidemark.producers.exceptions import TraceFormatError
from tidemark.producers.traces import FORMATS, TraceRecord, read_trace


@pytest.mark.parametrize(
    ("fmt", "records", "writes"),
    [("msr", 1000, 492), ("systor", 999, 173), ("disksim", 6999, 2618)],
)
def test_sample_parses_with_expected_counts(fmt: str, records: int, writes: int) -> None:
    parsed = list(read_trace(sample(fmt), fmt))
    assert len(parsed) == records
    assert sum(r.is_write for r in parsed) == writes
    assert parsed[0].time == 0.0
    assert all(r.size > 0 and r.offset >= 0 for r in parsed)
    assert [r.time for r in parsed] == sorted(r.time for r in parsed)
    assert len({r.number for r in parsed}) == records


def test_msr_first_record_units() -> None:
    first = next(read_trace(sample("msr"), "msr"))
    assert first == TraceRecord(1, 0.0, True, 9056014336, 2048)


def test_msr_duration_is_in_seconds() -> None:
    last = list(read_trace(sample("msr"), "msr"))[-1]
    assert 120 < last.time < 135


def test_systor_is_sorted_and_keeps_line_numbers() -> None:
    parsed = list(read_trace(sample("systor"), "systor"))
    assert parsed[0].number != 2, "the file's first row is not its earliest"
    assert min(r.number for r in parsed) == 2, "line 1 is the header"


def test_disksim_converts_sectors() -> None:
    first = next(read_trace(sample("disksim"), "disksim"))
    assert first == TraceRecord(1, 0.0, True, 264719034 * 512, 16 * 512)


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
