"""`tidemark demo` end to end against the session broker: every check passes, nothing is left running."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import CliRunner, TidemarkTest

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

TRACE = (
    Path(__file__).resolve().parents[3]
    / ".."
    / "shared"
    / "traces"
    / "msr-cambridge-hm0-sample"
    / "msr-cambridge1-sample.csv"
)


def _processes_mentioning(text: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if text in line]


def test_demo_passes_every_check_and_stops_its_processes(cli: CliRunner, tm: TidemarkTest) -> None:
    args = ["demo"] + (["--trace", str(TRACE)] if TRACE.is_file() else [])
    result = cli(*args, check=False, env={"COLUMNS": "200"}, timeout=420)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "FAILED" not in output
    assert "checks passed" in output
    for check in ("e2fsck -fn: mounted point", "files of mirror reverted to point", "status shows every stage",
                  "fs mirror caught up after the revert", "test failover accepts writes"):  # fmt: skip
        assert check in output, f"{check!r} missing from the report:\n{output}"
    assert _processes_mentioning(str(tm.settings.state_dir)) == []


def test_demo_fails_without_its_tools(cli: CliRunner, tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    result = cli("demo", check=False, env={"PATH": str(bare)})
    assert result.returncode == 2
    assert "qemu-utils" in result.stderr
