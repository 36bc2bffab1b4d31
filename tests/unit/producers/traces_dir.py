"""Where the shared sample traces are: TIDEMARK_TRACES_DIR, else <repo>/../shared/traces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

SAMPLES = {
    "msr": "msr-cambridge-hm0-sample/msr-cambridge1-sample.csv",
    "systor": "snia-systor17-vdi-sample/systor17-traces-sample.csv",
    "disksim": "mqsim-tpcc-small/tpcc-small.trace",
}


def sample(fmt: str) -> Path:
    root = Path(os.environ.get("TIDEMARK_TRACES_DIR") or REPO.parent / "shared" / "traces")
    path = root / SAMPLES[fmt]
    if not path.is_file():
        pytest.skip(f"trace sample {path} not found (set TIDEMARK_TRACES_DIR)")
    return path
