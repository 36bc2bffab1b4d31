"""fio in the fault tests: its JSON status reports, read while it runs, and its verify pass.

fio prints one JSON report a second (and a final one when it ends), with its own messages between
them; a SIGKILL can cut the last report short. `completed_write_bytes` takes the largest write byte
count any whole report holds: what fio saw acknowledged so far.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def completed_write_bytes(fio_output: str) -> int:
    decoder, position, completed = json.JSONDecoder(), 0, 0
    while (start := fio_output.find("{", position)) >= 0:
        try:
            report, position = decoder.raw_decode(fio_output, start)
        except json.JSONDecodeError:  # a report cut short by the SIGKILL, or a brace in a message
            position = start + 1
            continue
        if isinstance(report, dict) and report.get("jobs"):
            completed = max(completed, int(report["jobs"][0]["write"]["io_bytes"]))
    return completed


def verify_pass(command: list[str], workdir: Path, what: str, timeout: float) -> None:
    """Run fio's `--verify_only` pass (`command` includes it) in `workdir`, where the write run left
    its verify state; every block it reads back must carry the header the write run gave it."""
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
    )
    assert done.returncode == 0 and "err= 0" in done.stdout, (
        f"acknowledged writes lost on {what}:\n{done.stdout}\n{done.stderr}"
    )
    assert "READ:" in done.stdout, f"fio read nothing back from {what}:\n{done.stdout}"
