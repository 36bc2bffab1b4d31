"""`tidemark analytics` as a real process for integration tests: started with the test's env,
ready once its web server answers; its JSON endpoints and the alerts topic read back."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

from tidemark.sinks.reading.topic_reader import read_records

from ...conftest import TidemarkTest
from ..pipeline_harness import Pipeline, Service

READY_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Analytics:
    """The app of one test, started through `pipe.service` (so the pipeline stops it)."""

    def __init__(self, pipe: Pipeline, env: dict[str, str]) -> None:
        self.port = free_port()
        pipe.tm.env.update(env | {"TIDEMARK_ANALYTICS_WEB_PORT": str(self.port)})
        self.service: Service = pipe.service("analytics", ["analytics", "--loglevel", "warning"])
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.try_get("/api/overview") is None:
            assert self.service.alive(), f"analytics exited\n{self.service.output()}"
            assert time.monotonic() < deadline, (
                f"analytics not answering in {READY_TIMEOUT_S} s\n{self.service.output()}"
            )
            time.sleep(0.25)

    def try_get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def get(self, path: str) -> Any:
        found = self.try_get(path)
        assert found is not None, f"GET {path} failed\n{self.service.output()}"
        return found


def alerts(tm: TidemarkTest) -> list[dict[str, Any]]:
    """Every Alert on the test's alerts topic, in partition order."""
    return list(read_records(tm.clients, tm.topics.alerts, "Alert"))
