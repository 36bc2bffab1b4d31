"""The running pipeline of a demo: tracker, processor and mirrors as `tidemark` child processes,
and what the demo asks of it (recovery points, waiting until a mirror holds one)."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tidemark.sinks.layout import DEFAULT_SITE
from tidemark.sinks.manifests import recovery_points
from tidemark.sinks.status import latest_statuses

from .environment import DemoEnvironment
from .exceptions import DemoError
from .processes import Supervisor, free_port, port_open, wait_until

SITE = DEFAULT_SITE
METRIC_NAMES = (
    "tidemark_events_total",
    "tidemark_bytes_total",
    "tidemark_rpo_lag_seconds",
    "tidemark_recovery_points_total",
    "tidemark_throttled_seconds_total",
    "tidemark_dead_letters_total",
    "tidemark_resync_requests_total",
)


@dataclass
class Pipeline:
    env: DemoEnvironment
    supervisor: Supervisor
    metrics_ports: dict[str, int] = field(default_factory=dict)
    analytics_port: int = 0

    def start_tracker(self, volume: str, image: Path) -> int:
        port = free_port()
        self._start(
            f"tracker-{volume}", "track", "nbd", "--volume", volume, "--image", str(image),
            "--listen", f"127.0.0.1:{port}",
        )  # fmt: skip
        self._wait_port(f"tracker-{volume}", port)
        return port

    def start_processor(self) -> None:
        self._start("processor", "process", "--subinterval", "0.5", "--rp-interval", "60", "--metrics-interval", "1")

    def start_analytics(self) -> int:
        """`tidemark analytics` (its own consumer group); returns the dashboard's port."""
        port = free_port()
        self.supervisor.start("analytics", self.supervisor.tidemark_command("analytics", "--web-port", str(port)))
        self.analytics_port = port
        return port

    def dashboard(self, path: str) -> str:
        """GET a page of the analytics dashboard (text)."""
        self.supervisor.require_running("analytics")
        url = f"http://127.0.0.1:{self.analytics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())
        except OSError as exc:
            raise DemoError(f"the analytics dashboard does not answer {url}: {exc}") from exc

    def dashboard_json(self, path: str) -> dict[str, object]:
        found = json.loads(self.dashboard(path))
        return found if isinstance(found, dict) else {}

    def start_mirror(self, volume: str, path: Path) -> None:
        self._start(f"mirror-{volume}", "mirror", "--volume", volume, "--path", str(path), "--site", SITE)

    def stop(self, name: str) -> None:
        self.supervisor.stop(name)
        self.metrics_ports.pop(name, None)

    def serve(self, name: str, *args: str) -> int:
        """Start an NBD-serving command (`mount`, `failover --test`) and return its port."""
        port = free_port()
        self.supervisor.start(name, self.supervisor.tidemark_command(*args, "--listen", f"127.0.0.1:{port}"))
        self._wait_port(name, port)
        return port

    def _start(self, name: str, *args: str) -> None:
        port = free_port()
        self.supervisor.start(name, self.supervisor.tidemark_command(*args, "--metrics-port", str(port)))
        self.metrics_ports[name] = port

    def _wait_port(self, name: str, port: int) -> None:
        def up() -> bool:
            self.supervisor.require_running(name)
            return port_open(port)

        wait_until(up, self.env.options.wait_s, f"{name} to listen on 127.0.0.1:{port}")

    # -- recovery points -----------------------------------------------------------------------
    def cut(self, volume: str, label: str) -> int:
        """Request a recovery point and wait for the processor's manifest; returns its id."""
        self.env.tidemark("rp", "create", "--volume", volume, "--label", label)
        found: list[int] = []

        def manifest() -> bool:
            self.supervisor.require_running("processor")
            points = recovery_points(self.env.clients, self.env.topics, volume)
            found[:] = [rp for rp, m in points.items() if m["label"] == label]
            return bool(found)

        wait_until(manifest, self.env.options.wait_s, f"recovery point {label!r} of {volume}", interval=1.0)
        return found[-1]

    def wait_held(self, volume: str, rp_id: int, since_ms: int = 0) -> None:
        """Wait until the volume's mirror reports (MirrorStatus) that it holds `rp_id` or later,
        in a status published after `since_ms` (a restarted applier: older statuses are stale)."""

        def held() -> bool:
            self.supervisor.require_running(f"mirror-{volume}")
            status = latest_statuses(self.env.clients, self.env.topics, volume).get(SITE)
            return (
                status is not None
                and status["timestamp"] > since_ms
                and status["rp_id"] is not None
                and status["rp_id"] >= rp_id
            )

        wait_until(held, self.env.options.wait_s, f"the mirror of {volume} to hold recovery point {rp_id}", 1.0)

    # -- metrics -------------------------------------------------------------------------------
    def scrape(self, name: str) -> str:
        """The component's /metrics page (Prometheus text format)."""
        port = self.metrics_ports[name]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                return str(response.read().decode())
        except OSError as exc:
            raise DemoError(f"cannot scrape the metrics of {name} on port {port}: {exc}") from exc


def missing_metrics(page: str) -> list[str]:
    """The names of METRIC_NAMES that have no sample on a /metrics page."""
    return [metric for metric in METRIC_NAMES if f"\n{metric}" not in page]


def lag_mean(page: str) -> float | None:
    """Mean of the tidemark_rpo_lag_seconds histogram on a /metrics page (None: no samples)."""
    total = count = 0.0
    for line in page.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("tidemark_rpo_lag_seconds_sum"):
            total += float(value)
        elif name.startswith("tidemark_rpo_lag_seconds_count"):
            count += float(value)
    return total / count if count else None
