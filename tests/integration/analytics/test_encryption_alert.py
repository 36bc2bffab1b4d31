"""Issue 16's detector end to end on the real broker (see scenario.py for the pipeline): exactly
one ENCRYPTION_SUSPECTED, for `crypt`, naming "before" as the clean point; nothing for `plain`
(ordinary edits, zero and compressible data); the dashboard's JSON agrees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ...conftest import CliRunner, TidemarkTest
from ..pipeline_harness import Pipeline
from .harness import Analytics, alerts
from .scenario import ANALYTICS_ENV, SIZE, run

pytestmark = [pytest.mark.integration]


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    made: list[Pipeline] = []
    yield made
    for pipe in made:
        pipe.close()


def test_encrypted_overwrite_raises_one_alert_naming_the_last_clean_point(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    scene = run(tm, cli, tmp_path, pipelines)
    before, after, analytics = scene.before, scene.after, scene.analytics

    found = alerts(tm)
    encryption = [a for a in found if a["kind"] == "ENCRYPTION_SUSPECTED"]
    assert [(a["volume"], a["state"]) for a in encryption] == [("crypt", "RAISED"), ("crypt", "CLEARED")], found
    alert = encryption[0]
    assert alert["alert_id"] == encryption[1]["alert_id"]
    assert (alert["clean_rp_id"], alert["clean_rp_label"]) == (before, "before"), alert
    assert after > before and alert["change_seq"] > alert["clean_rp_seq"]
    assert alert["evidence"]["high_entropy_fraction"] >= 0.9 and alert["evidence"]["baseline_fraction"] <= 0.1
    assert f"--to {before}" in alert["message"]
    assert not [a for a in found if a["volume"] == "plain"], found

    marked = analytics.get("/api/volumes/crypt/points")
    assert [c["rp_id"] for c in marked["clean_points"]] == [before]
    assert {p["label"] for p in marked["points"]} >= {"before", "after"}
    overview = analytics.get("/api/overview")
    assert {v["volume"] for v in overview["volumes"]} == {"crypt", "plain"}
    assert all(v["size"] == SIZE for v in overview["volumes"]), overview
    heat = analytics.get("/api/volumes/plain/heatmap")
    assert heat["size"] == SIZE and sum(sum(row) for _, row in heat["rows"]) > 0, heat

    # a restarted app reads its tables back, and its recent alerts: the clean point stays marked
    analytics.service.stop()
    again = Analytics(scene.crypt, ANALYTICS_ENV)
    assert [c["rp_id"] for c in again.get("/api/volumes/crypt/points")["clean_points"]] == [before]
    restarted = again.get("/api/overview")["volumes"]
    assert {v["volume"]: v["writes"] for v in restarted} == {v["volume"]: v["writes"] for v in overview["volumes"]}
    assert len(again.get("/api/volumes/crypt/windows")["windows"]) >= 2
