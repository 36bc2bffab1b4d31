"""The repeat filter: a repeated line once per window with its count, bounded memory."""

from __future__ import annotations

import logging
import re

import pytest

from tidemark.core.log_repeats import LIBRDKAFKA_FORMAT, RepeatFilter


def _record(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("tidemark.librdkafka", level, __file__, 1, msg, args, None)


def test_the_same_failure_of_several_clients_passes_once_then_with_its_count(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("tidemark.core.log_repeats.time.monotonic", lambda: now[0])
    repeats = RepeatFilter(window_s=60.0)
    refused = "127.0.0.1:9/bootstrap: Connect failed: Connection refused (after 0ms in state CONNECT)"
    passed = [
        repeats.filter(_record(LIBRDKAFKA_FORMAT, "FAIL", f"rdkafka#consumer-{n}", refused.replace("0ms", f"{n}ms")))
        for n in range(50)
    ]
    assert passed == [True] + [False] * 49
    assert repeats.filter(_record(LIBRDKAFKA_FORMAT, "FAIL", "rdkafka#producer-1", "another text"))
    assert repeats.filter(_record(LIBRDKAFKA_FORMAT, "FAIL", "rdkafka#consumer-1", refused, level=logging.WARNING))
    now[0] += 61
    later = _record(
        LIBRDKAFKA_FORMAT, "FAIL", "rdkafka#consumer-9", refused.replace(")", ", 3 identical error(s) suppressed)")
    )
    assert repeats.filter(later)
    assert later.getMessage().startswith(
        f"FAIL [rdkafka#consumer-9] {refused[:-1]}, 3 identical error(s) suppressed) (49 more"
    )
    assert re.search(r"\(49 more like it in the 60 s after the one at \d\d:\d\d:\d\d\)$", later.getMessage())
    assert not repeats.filter(_record(LIBRDKAFKA_FORMAT, "FAIL", "rdkafka#consumer-2", refused))


def test_a_literal_percent_survives_and_memory_stays_bounded() -> None:
    repeats = RepeatFilter(window_s=0.0, kinds=8)
    first, again = _record("100% of 5"), _record("100% of 5")
    assert repeats.filter(first) and repeats.filter(again) and again.getMessage() == "100% of 5"
    for n in range(1000):
        repeats.filter(_record("line %d", n))
    assert len(repeats._seen) == 8


def test_the_client_name_inside_the_text_does_not_make_a_new_kind() -> None:
    repeats = RepeatFilter()
    texts = [f"[thrd:app]: rdkafka#producer-{n}: broker down" for n in (1, 2, 3)]
    assert [repeats.filter(_record(LIBRDKAFKA_FORMAT, "ERROR", "rdkafka#producer-1", t)) for t in texts] == [
        True, False, False,
    ]  # fmt: skip
