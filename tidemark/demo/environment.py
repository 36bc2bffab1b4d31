"""Where a demo run lives: its broker, its topics (a fresh prefix), its folder and child env.

A run never meets an earlier one: topics get a random prefix and stages a fresh state folder
under `<state dir>/demo-<time>`. The local broker is started only when no cluster is configured
and none runs; a broker the demo started is stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topics import Topics
from tidemark.localkafka import LocalCluster as LocalBroker

from .exceptions import DemoError

CLI_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DemoOptions:
    size_mib: int = 64
    trace: Path | None = None
    trace_format: str = "msr"
    keep: bool = False
    wait_s: float = 120.0
    """how long a step waits for the pipeline (a recovery point on the mirror, a port to open)"""


class DemoEnvironment:
    def __init__(self, settings: Settings, kafka: KafkaSettings, options: DemoOptions) -> None:
        self.options = options
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.workdir = (settings.state_dir / f"demo-{stamp}-{uuid.uuid4().hex[:4]}").resolve()
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True)
        self.prefix = f"demo{uuid.uuid4().hex[:10]}"
        self.stage_settings = Settings(
            state_dir=self.workdir / "state", topic_prefix=self.prefix, kafka_cache=settings.kafka_cache
        )
        self._broker: LocalBroker | None = None
        self.bootstrap = kafka.bootstrap or self._local_broker(settings)
        self.clients = KafkaClients(self.stage_settings, kafka, self.bootstrap)
        self.topics = Topics(self.prefix)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")} | {
            "TIDEMARK_BOOTSTRAP": self.bootstrap,
            "TIDEMARK_TOPIC_PREFIX": self.prefix,
            "TIDEMARK_STATE_DIR": str(self.stage_settings.state_dir),
            "TIDEMARK_KAFKA_CACHE": str(settings.kafka_cache),
            **{
                k: v
                for k, v in os.environ.items()
                if k.startswith(("TIDEMARK_SECURITY", "TIDEMARK_SASL", "TIDEMARK_SSL"))
            },
        }

    @property
    def started_broker(self) -> bool:
        return self._broker is not None

    def _local_broker(self, settings: Settings) -> str:
        broker = LocalBroker(settings)
        status = broker.status()
        if not status.running:
            status = broker.start()
            self._broker = broker
        if status.bootstrap is None:
            raise DemoError(f"the local broker under {settings.state_dir} runs but recorded no address")
        return status.bootstrap

    def tidemark(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one `tidemark` command against the demo's broker, prefix and state folder."""
        command = [sys.executable, "-m", "tidemark.cli", *args]
        result = subprocess.run(
            command, env=self.env, cwd=self.workdir, capture_output=True, text=True,
            timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise DemoError(
                f"`tidemark {' '.join(args)}` exited {result.returncode}:\n{result.stdout}{result.stderr}".strip()
            )
        return result

    def close(self, succeeded: bool) -> list[str]:
        """Delete the run's topics (unless kept or failed), stop a broker we started; returns notes."""
        notes: list[str] = []
        if succeeded and not self.options.keep:
            self._delete_topics()
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            notes.append(f"kept topics {self.prefix}.* and the folder {self.workdir}")
        if self._broker is not None:
            self._broker.stop()
            notes.append("stopped the local Kafka broker the demo started")
        return notes

    def _delete_topics(self) -> None:
        with contextlib.suppress(Exception):  # best effort: a leftover topic harms nothing
            admin = self.clients.admin()
            names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(self.prefix)]
            for future in admin.delete_topics(names, operation_timeout=10).values() if names else []:
                future.result(timeout=15)
