"""`tidemark status --json` and the Prometheus endpoints of every stage, against real processes."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliRunner, TidemarkTest
from tidemark.demo.pipeline import METRIC_NAMES, missing_metrics
from tidemark.producers.traces.synthetic import msr_trace

pytestmark = pytest.mark.integration

SIZE = 8 << 20
Start = Callable[..., subprocess.Popen[bytes]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def start(tm: TidemarkTest, tmp_path: Path) -> Iterator[Start]:
    """Start `tidemark ARGS` in the background; every process is stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{args[0]}-{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tidemark.cli", *args], env=tm.env, cwd=tmp_path,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(msr_trace(random.Random(5), 300).text)
    return path


def test_status_json_shows_tracker_point_site_metrics_and_dead_letters(
    cli: CliRunner, tm: TidemarkTest, start: Start, tmp_path: Path
) -> None:
    cli("volume", "add", "vol", "--size", str(SIZE))
    cli("volume", "add", "idle", "--size", str(SIZE))
    start("process", "--subinterval", "0.3", "--metrics-interval", "0.5", "--rp-interval", "3600")
    cli("replay", str(_trace(tmp_path)), "--format", "msr", "--volume", "vol")
    cli("rp", "create", "--volume", "vol", "--label", "first")
    producer = tm.clients.producer()
    producer.produce(tm.topics.writes, key=b"vol", value=b"not an avro event")
    assert producer.flush(15) == 0
    cli("mirror", "--volume", "vol", "--path", str(tmp_path / "mirror.img"), "--until-rp", "1", timeout=120)

    def status() -> dict:
        return {v["volume"]: v for v in json.loads(cli("status", "--json").stdout)["volumes"]}

    _wait(lambda: status()["vol"]["dead_letters"] == 1 and status()["vol"]["throughput"] is not None, "metrics")
    found = status()
    vol = found["vol"]
    assert vol["size"] == SIZE
    assert vol["tracker"]["epoch"] >= 1 and vol["tracker"]["last_seq"] >= 0
    assert vol["last_recovery_point"]["rp_id"] == 1 and vol["last_recovery_point"]["label"] == "first"
    assert [(s["site"], s["rp_id"]) for s in vol["sites"]] == [("default", 1)]
    assert vol["throughput"]["bytes_written_total"] > 0
    assert vol["throughput"]["bytes_shipped_total"] > 0
    assert vol["dead_letters"] == 1
    assert vol["rpo_lag_seconds"] is not None
    assert found["idle"]["tracker"] is None and found["idle"]["sites"] == [] and found["idle"]["recovery_points"] == 0
    assert "vol" in cli("status").stdout
    assert json.loads(cli("status", "--json", "--volume", "idle").stdout)["volumes"][0]["volume"] == "idle"


def test_every_stage_serves_the_named_metrics(cli: CliRunner, tm: TidemarkTest, start: Start, tmp_path: Path) -> None:
    cli("volume", "add", "vol", "--size", str(SIZE))
    cli("volume", "add", "scanned", "--size", str(SIZE))
    cli("volume", "add", "traced", "--size", str(SIZE))
    source, scanned = tmp_path / "source.img", tmp_path / "scanned.img"
    for image in (source, scanned):
        with image.open("wb") as f:
            f.truncate(SIZE)
    scanned.write_bytes(os.urandom(1 << 20) + bytes(SIZE - (1 << 20)))
    ports = {name: _free_port() for name in ("tracker", "scan", "replay", "processor", "mirror")}
    nbd_port = _free_port()
    start("track", "nbd", "--volume", "vol", "--image", str(source), "--listen", f"127.0.0.1:{nbd_port}",
          "--metrics-port", str(ports["tracker"]))  # fmt: skip
    start("track", "scan", "--volume", "scanned", "--image", str(scanned), "--interval", "30",
          "--metrics-port", str(ports["scan"]))  # fmt: skip
    start("replay", str(_trace(tmp_path)), "--format", "msr", "--volume", "traced", "--speed", "0.05",
          "--metrics-port", str(ports["replay"]))  # fmt: skip
    start("process", "--subinterval", "0.3", "--metrics-port", str(ports["processor"]))
    start("mirror", "--volume", "vol", "--path", str(tmp_path / "mirror.img"), "--metrics-port", str(ports["mirror"]))
    _wait(lambda: all(_scrape(port) for port in ports.values()), "every metrics endpoint")
    # The tracker serves NBD once it has read the registry (its generation and site), after its metrics.
    _wait(lambda: _listening(nbd_port), "the tracker to serve NBD")
    subprocess.run(
        ["qemu-io", "-f", "raw", "-c", "write -P 0x11 0 64k", f"nbd://127.0.0.1:{nbd_port}/vol"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    cli("rp", "create", "--volume", "vol")
    # qemu-io's flush at exit cuts a FLUSH point before the requested one: count at least one.
    held = re.compile(r'^tidemark_recovery_points_total\{component="mirror",volume="vol"\} ([0-9.]+)$', re.M)
    _wait(lambda: any(float(v) >= 1 for v in held.findall(_scrape(ports["mirror"]))),
          "the mirror to count a recovery point")  # fmt: skip
    # The scan reports its throttled time at the end of its first pass, which a loaded machine can
    # finish after the mirror's point (a CI run scraped the scan before it).
    throttled = 'tidemark_throttled_seconds_total{component="scan",volume="scanned"}'
    _wait(lambda: throttled in _scrape(ports["scan"]), "the scan to finish its first pass")
    for name, port in ports.items():
        page = _scrape(port)
        assert missing_metrics(page) == [], f"{name}: {page}"
        for metric in METRIC_NAMES:
            assert f"{metric}" in page
    assert 'tidemark_bytes_total{component="tracker",volume="vol"} 65536.0' in _scrape(ports["tracker"])
    assert 'component="processor",volume="vol"' in _scrape(ports["processor"])
    assert 'tidemark_events_total{component="tracker",volume="traced"}' in _scrape(ports["replay"])
    assert throttled in _scrape(ports["scan"])
