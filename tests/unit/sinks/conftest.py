"""Fixtures of the sink unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import Harness
from .stream_model import StreamModel

MakeHarness = Callable[..., Harness]


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[MakeHarness]:
    """Builds harnesses in tmp_path and closes them (files, spool, rocksdict) after the test."""
    made: list[Harness] = []

    def make(model: StreamModel, site: str = "default", root: Path | None = None) -> Harness:
        made.append(Harness(root or tmp_path, model, site))
        return made[-1]

    yield make
    for harness in made:
        harness.close()
