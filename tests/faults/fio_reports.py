"""fio's JSON status reports (`--output-format=json --status-interval=1`), read while it runs.

fio prints one JSON report a second (and a final one when it ends), with its own messages between
them; a SIGKILL can cut the last report short. `completed_write_bytes` takes the largest write byte
count any whole report holds: what fio saw acknowledged so far.
"""

from __future__ import annotations

import json


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
