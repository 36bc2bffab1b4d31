"""The detector and a volume's fold on generated journals (no Kafka): one raise per episode,
dated by seq, cleared after calm windows; nothing on zero, compressible or its own baseline."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from tidemark.analytics.detector import Transition
from tidemark.analytics.encryption_alerts import on_transitions
from tidemark.analytics.settings import AnalyticsSettings
from tidemark.analytics.volume import VolumeAnalytics, VolumeFold

from .generated import BS, encrypted, text, write

SETTINGS = AnalyticsSettings(window_s=5.0, sample_budget=64, min_samples=8, clear_windows=2)
T0 = 1_700_000_000_000
Data = Callable[[random.Random], bytes]


def journal(volume: str, phases: list[tuple[Data, int]], per_window: int = 20, first_seq: int = 1,
            compression: str = "NONE") -> Iterator[tuple[dict[str, Any], int]]:  # fmt: skip
    """(BlockWrite, message time ms) for each phase of (data maker, windows), 16 KiB writes."""
    rng = random.Random(7)
    seq, window = first_seq, 0
    for make, windows in phases:
        for _ in range(windows):
            for i in range(per_window):
                offset = rng.randrange(0, 1024) * BS
                yield write(volume, seq, offset, make(rng), compression), T0 + window * 5000 + i * (5000 // per_window)
                seq += 1
            window += 1


def plain(rng: random.Random) -> bytes:
    return text(4 * BS, rng)


def crypt(rng: random.Random) -> bytes:
    return encrypted(text(4 * BS, rng), key=rng.randbytes(32))


def zeros(rng: random.Random) -> bytes:
    return bytes(4 * BS)


def compressible(rng: random.Random) -> bytes:
    return rng.randbytes(64) * (4 * BS // 64)


def media(rng: random.Random) -> bytes:
    """Already compressed content (photos, archives): as random-looking as ciphertext."""
    return rng.randbytes(4 * BS)


def run(volume: str, events: Iterator[tuple[dict[str, Any], int]], settings: AnalyticsSettings = SETTINGS,
        end_ms: int | None = None) -> tuple[VolumeAnalytics, list[Transition]]:  # fmt: skip
    fold, state = VolumeFold(settings), VolumeAnalytics(volume, size=4 << 20)
    transitions: list[Transition] = []
    last = T0
    for record, now in events:
        transitions += fold.on_write(state, record, now).transitions
        last = now
    transitions += fold.advance(state, end_ms or last + 60_000).transitions
    return state, transitions


def test_encryption_after_normal_writes_raises_once_then_clears() -> None:
    phases: list[tuple[Data, int]] = [(plain, 3), (crypt, 3), (plain, 3)]
    state, transitions = run("vol", journal("vol", phases))
    assert [t.state for t in transitions] == ["RAISED", "CLEARED"]
    raised = transitions[0]
    assert raised.start_ms == T0 + 3 * 5000
    assert raised.change_seq == 61 and raised.last_normal_seq == 60
    assert raised.evidence["high_entropy_fraction"] == 1.0 and raised.evidence["baseline_fraction"] == 0.0
    assert not state.detector.active


def test_a_long_attack_is_one_episode() -> None:
    _, transitions = run("vol", journal("vol", [(plain, 2), (crypt, 12)]), end_ms=T0 + 14 * 5000 + 1)
    assert [t.state for t in transitions] == ["RAISED"]


def test_idle_time_after_the_attack_ends_the_episode() -> None:
    _, transitions = run("vol", journal("vol", [(plain, 2), (crypt, 2)]))
    assert [t.state for t in transitions] == ["RAISED", "CLEARED"]


def test_zero_and_compressible_data_raise_nothing() -> None:
    _, transitions = run("vol", journal("vol", [(zeros, 3), (compressible, 3), (plain, 2), (zeros, 2)]))
    assert transitions == []


def test_a_volume_that_always_held_random_data_is_its_own_baseline() -> None:
    _, transitions = run("media", journal("media", [(media, 3), (crypt, 3)]))
    assert transitions == []


def test_no_raise_before_a_baseline_exists() -> None:
    _, transitions = run("vol", journal("vol", [(crypt, 3)]))
    assert transitions == []


def test_compressed_payloads_are_measured_after_decompression() -> None:
    state, transitions = run("vol", journal("vol", [(plain, 2), (crypt, 2)], compression="LZ4"))
    assert [t.state for t in transitions] == ["RAISED", "CLEARED"] and state.unmeasured == 0


def test_sampling_stays_within_budget_on_a_busy_volume() -> None:
    settings = AnalyticsSettings(sample_budget=16, min_samples=8)
    fold, state = VolumeFold(settings), VolumeAnalytics("busy")
    samples = []
    for record, now in journal("busy", [(plain, 4)], per_window=500):
        closed = fold.on_write(state, record, now)
        samples += [s["samples"] for s in closed.summaries]
    assert samples and max(samples) <= 16
    assert min(samples[1:]) >= 8  # the stride spreads the budget over the busy windows


def test_state_survives_a_json_round_trip_mid_window() -> None:
    events = list(journal("vol", [(plain, 3), (crypt, 3), (plain, 3)]))
    fold, state = VolumeFold(SETTINGS), VolumeAnalytics("vol", size=4 << 20)
    transitions: list[Transition] = []
    for record, now in events:
        transitions += fold.on_write(state, record, now).transitions
        state = VolumeAnalytics.from_json(json.loads(json.dumps(state.to_json())))
    transitions += fold.advance(state, events[-1][1] + 60_000).transitions
    _, straight = run("vol", iter(events))
    assert transitions == straight
    assert state.window is None and VolumeAnalytics.from_json(json.loads(json.dumps(state.to_json()))) == state


POINTS = [
    {"rp_id": 1, "seq": 20, "created_at": T0 + 4000, "label": "a"},
    {"rp_id": 2, "seq": 60, "created_at": T0 + 15000, "label": "before"},
]


def test_the_raise_waits_for_the_points_to_settle_and_names_the_last_clean_one() -> None:
    state, transitions = run("vol", journal("vol", [(plain, 3), (crypt, 3)]), end_ms=T0 + 30_000)
    alerts = on_transitions(state, transitions, POINTS, T0 + 30_000, SETTINGS)
    assert alerts == [] and state.pending is not None  # no point after the change seen yet
    after = {"rp_id": 3, "seq": 90, "created_at": T0 + 28000, "label": "after"}
    alerts = on_transitions(state, [], [*POINTS, after], T0 + 31_000, SETTINGS)
    assert [(a["kind"], a["state"], a["clean_rp_id"], a["clean_rp_label"]) for a in alerts] == [
        ("ENCRYPTION_SUSPECTED", "RAISED", 2, "before")
    ]
    assert "recovery point 2 (before)" in alerts[0]["message"] and "seq 61" in alerts[0]["message"]
    assert on_transitions(state, [], [*POINTS, after], T0 + 32_000, SETTINGS) == []


def test_after_the_grace_period_the_raise_goes_out_with_what_is_known() -> None:
    state, transitions = run("vol", journal("vol", [(plain, 3), (crypt, 3)]), end_ms=T0 + 30_000)
    assert on_transitions(state, transitions, POINTS[:1], T0 + 30_000, SETTINGS) == []
    alerts = on_transitions(state, [], POINTS[:1], T0 + 30_000 + int(SETTINGS.clean_point_grace_s * 1000), SETTINGS)
    assert [a["clean_rp_id"] for a in alerts] == [1]


def test_raise_and_clear_share_one_alert_id() -> None:
    state, transitions = run("vol", journal("vol", [(plain, 3), (crypt, 3), (plain, 3)]))
    alerts = on_transitions(state, transitions, POINTS, T0 + 60_000, SETTINGS)
    assert [a["state"] for a in alerts] == ["RAISED", "CLEARED"]
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"]


def test_ticks_alone_end_the_episode_of_an_idle_volume() -> None:
    events = list(journal("vol", [(plain, 2), (crypt, 2)]))
    fold, state = VolumeFold(SETTINGS), VolumeAnalytics("vol")
    transitions: list[Transition] = []
    for record, now in events:
        transitions += fold.on_write(state, record, now).transitions
    tick = events[-1][1]
    while tick < events[-1][1] + 30_000:
        tick += 250
        transitions += fold.advance(state, tick).transitions
    assert [t.state for t in transitions] == ["RAISED", "CLEARED"]
    assert transitions[1].end_ms == T0 + (4 + SETTINGS.clear_windows) * 5000  # two calm windows after the attack


def test_the_clean_point_counts_the_normal_writes_of_a_window_too_small_to_judge() -> None:
    """The seed's last writes fall into a window with fewer than `min_samples` samples, all normal;
    the point cut after them (seq 63) is still the suggestion."""
    rng = random.Random(3)
    events = list(journal("vol", [(plain, 3)]))  # seqs 1-60, windows 0-2
    events += [(write("vol", 60 + i, i * BS, plain(rng)), T0 + 3 * 5000 + i * 100) for i in range(1, 4)]
    events += [(record, now + 20_000) for record, now in journal("vol", [(crypt, 2)], first_seq=64)]
    state, transitions = run("vol", iter(events), end_ms=T0 + 40_000)
    assert [t.state for t in transitions][:1] == ["RAISED"] and transitions[0].last_normal_seq == 63
    before = {"rp_id": 3, "seq": 63, "created_at": T0 + 15_400, "label": "before"}
    after = {"rp_id": 4, "seq": 103, "created_at": T0 + 30_000, "label": "after"}
    alerts = on_transitions(state, transitions[:1], [*POINTS, before, after], T0 + 40_000, SETTINGS)
    assert [(a["state"], a["clean_rp_id"]) for a in alerts] == [("RAISED", 3)]


def test_a_small_window_with_a_high_sample_does_not_move_the_clean_point() -> None:
    rng = random.Random(4)
    events = list(journal("vol", [(plain, 3)]))
    events += [(write("vol", 61, 0, plain(rng)), T0 + 15_000), (write("vol", 62, BS, crypt(rng)), T0 + 15_100)]
    events += [(record, now + 20_000) for record, now in journal("vol", [(crypt, 2)], first_seq=63)]
    _, transitions = run("vol", iter(events), end_ms=T0 + 40_000)
    assert transitions[0].state == "RAISED" and transitions[0].last_normal_seq == 60


def test_a_high_sample_in_one_small_window_is_not_passed_by_a_low_one_in_the_next() -> None:
    rng = random.Random(5)
    events = list(journal("vol", [(plain, 3)]))
    events += [(write("vol", 61, 0, crypt(rng)), T0 + 15_000), (write("vol", 62, BS, plain(rng)), T0 + 20_000)]
    events += [(record, now + 25_000) for record, now in journal("vol", [(crypt, 2)], first_seq=63)]
    _, transitions = run("vol", iter(events), end_ms=T0 + 45_000)
    assert transitions[0].state == "RAISED" and transitions[0].last_normal_seq == 60


def test_after_an_episode_a_small_window_does_not_move_the_clean_point_past_it() -> None:
    rng = random.Random(6)
    events = list(journal("vol", [(plain, 3), (crypt, 2)]))  # seqs 1-100; the episode starts at 61
    quiet_from = T0 + 5 * 5000
    events += [(write("vol", 101 + i, i * BS, plain(rng)), quiet_from + i * 5000) for i in range(4)]  # clears it
    events += [(record, now + 50_000) for record, now in journal("vol", [(crypt, 2)], first_seq=105)]
    _, transitions = run("vol", iter(events), end_ms=T0 + 80_000)
    assert [t.state for t in transitions] == ["RAISED", "CLEARED", "RAISED", "CLEARED"]
    assert transitions[2].last_normal_seq == 60, transitions[2]
