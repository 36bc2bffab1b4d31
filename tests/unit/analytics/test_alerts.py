"""Mirror and dead-letter alerts: raised once per episode, cleared once, with one alert_id."""

from __future__ import annotations

from typing import Any

from tidemark.analytics.alerts import Episode
from tidemark.analytics.deadletters import DeadLetterWatch, advance, on_dead_letter
from tidemark.analytics.mirrors import MirrorView, on_status
from tidemark.analytics.settings import AnalyticsSettings
from tidemark.schemas.codec import default_codec

SETTINGS = AnalyticsSettings(rpo_lag_s=10.0, window_s=5.0, clear_windows=2, dead_letters=2)
T0 = 1_700_000_000_000


def status(t: int, lag: float, state: str = "REPLICATING") -> dict[str, Any]:
    return {"site": "dr", "volume": "vol", "state": state, "changeset_id": 3, "applied_seq": 9, "rp_id": 1,
            "lag_events": 4, "lag_seconds": lag, "timestamp": T0 + t, "message": None}  # fmt: skip


def test_episode_raises_once_and_clears_after_calm() -> None:
    episode = Episode()
    seen = [
        episode.update(bad, n, calm_needed=2)
        for n, bad in enumerate([False, True, True, False, True, False, False, False])
    ]
    assert seen == [None, ("RAISED", 1), None, None, None, None, ("CLEARED", 1), None]


def test_rpo_lag_and_resync_episodes() -> None:
    view = MirrorView("dr", "vol")
    alerts = []
    for t, lag, state in [(0, 1, "REPLICATING"), (1000, 12, "REPLICATING"), (2000, 15, "REPLICATING"),
                          (3000, 2, "RESYNC_NEEDED"), (4000, 2, "RESYNC_NEEDED"),
                          (5000, 1, "REPLICATING")]:  # fmt: skip
        alerts += on_status(view, status(t, lag, state), SETTINGS, history_kept=3)
    assert [(a["kind"], a["state"], a["timestamp"] - T0) for a in alerts] == [
        ("RPO_LAG_HIGH", "RAISED", 1000),
        ("RPO_LAG_HIGH", "CLEARED", 3000),
        ("MIRROR_RESYNC_NEEDED", "RAISED", 3000),
        ("MIRROR_RESYNC_NEEDED", "CLEARED", 5000),
    ]
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"] and alerts[0]["site"] == "dr"
    assert "tidemark resync --volume vol" in alerts[2]["message"]
    assert [h[1] for h in view.history] == [2, 2, 1]
    assert MirrorView.from_json(view.to_json()) == view
    for alert in alerts:
        assert default_codec().decode(default_codec().encode("Alert", alert)) == ("Alert", alert)


def test_dead_letters_raise_at_the_threshold_and_clear_after_quiet_windows() -> None:
    watch = DeadLetterWatch("vol")
    assert on_dead_letter(watch, T0 + 100, "bad checksum", SETTINGS) == []
    raised = on_dead_letter(watch, T0 + 200, "bad checksum", SETTINGS)
    assert [(a["kind"], a["state"], a["volume"]) for a in raised] == [("DEAD_LETTERS", "RAISED", "vol")]
    assert on_dead_letter(watch, T0 + 300, "bad checksum", SETTINGS) == []
    assert advance(watch, T0 + 5_100, SETTINGS) == []  # the bad window closed
    assert advance(watch, T0 + 10_100, SETTINGS) == []  # one calm window
    cleared = advance(watch, T0 + 15_100, SETTINGS)
    assert [a["state"] for a in cleared] == ["CLEARED"] and cleared[0]["alert_id"] == raised[0]["alert_id"]
    assert advance(watch, T0 + 60_000, SETTINGS) == []
    assert DeadLetterWatch.from_json(watch.to_json()) == watch


def test_one_dead_letter_below_threshold_never_raises() -> None:
    watch = DeadLetterWatch("*")
    assert on_dead_letter(watch, T0, "not avro", SETTINGS) == []
    assert advance(watch, T0 + 50_000, SETTINGS) == []
    assert on_dead_letter(watch, T0 + 50_001, "not avro", SETTINGS) == []
