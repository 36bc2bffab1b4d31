"""The dashboard in a real browser: Debian's chromium, headless, against the live pipeline of
scenario.py plus a mirror. It finds both volume cards, drawn chart paths, the mirror's site and
the clean-point marker; the screenshot is kept (TIDEMARK_ARTIFACTS, default the test's tmp dir)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ...conftest import CliRunner, TidemarkTest
from ..pipeline_harness import Pipeline
from .scenario import run

pytestmark = [pytest.mark.integration]

BROWSER_TIMEOUT_S = 120
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    made: list[Pipeline] = []
    yield made
    for pipe in made:
        pipe.close()


def _chromium(profile: Path, *args: str) -> str:
    assert BROWSER, "chromium is not installed: apt-get install -y chromium (.ci/run installs it)"
    command = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--window-size=1400,2000", "--virtual-time-budget=8000", *args,
    ]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def test_the_dashboard_shows_volumes_charts_sites_and_the_clean_point(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    scene = run(tm, cli, tmp_path, pipelines, mirror=True)
    scene.crypt.wait_held(scene.after)
    url = scene.analytics.url + "/"
    marked = scene.analytics.get("/api/volumes/crypt/points")  # what the page draws the marker from
    assert [c["rp_id"] for c in marked["clean_points"]] == [scene.before], marked

    dom = _chromium(tmp_path / "profile-dom", "--dump-dom", url)
    assert 'data-drawn="yes"' in dom, dom[-3000:]
    assert 'data-volume="crypt"' in dom and 'data-volume="plain"' in dom
    throughput = re.search(r'<svg id="chart-throughput".*?</svg>', dom, re.DOTALL)
    assert throughput and re.search(r'<path d="M[\d.]+,[\d.]+L', throughput.group(0)), "no line drawn"
    assert 'class="clean-point"' in dom and f"clean point: rp {scene.before} (before)" in dom
    assert "REPLICATING" in dom or "SEEDING" in dom, "the mirror's site is missing"
    assert "ENCRYPTION_SUSPECTED" in dom

    artifacts = Path(os.environ.get("TIDEMARK_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "analytics-dashboard.png"
    _chromium(tmp_path / "profile-shot", f"--screenshot={shot}", url)
    assert shot.stat().st_size > 20_000, "the screenshot is (nearly) empty"
