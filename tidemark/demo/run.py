"""Run the demo: set up, play the scenario, report; stop every child process whatever happens."""

from __future__ import annotations

import signal
import time
from types import FrameType

from rich.console import Console

from tidemark.core.settings import KafkaSettings, Settings

from . import tools
from .environment import DemoEnvironment, DemoOptions
from .exceptions import DemoError
from .pipeline import Pipeline
from .processes import Supervisor
from .report import Report
from .scenario import Scenario


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the demo like Ctrl-C: through the finally blocks


def run_demo(settings: Settings, kafka: KafkaSettings, options: DemoOptions, console: Console) -> Report:
    """Returns the report; `report.passed` says whether every check passed."""
    tools.require_tools()
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _terminate)
    report = Report()
    env: DemoEnvironment | None = None
    supervisor: Supervisor | None = None
    try:
        console.print("[bold]tidemark demo[/]: preparing the Kafka broker ...")
        env = DemoEnvironment(settings, kafka, options)
        console.print(f"    broker {env.bootstrap}{' (started for the demo)' if env.started_broker else ''}; "
                      f"work folder {env.workdir}")  # fmt: skip
        supervisor = Supervisor(env.logs, env.env)
        report.fact("broker", env.bootstrap + (" (local, started by the demo)" if env.started_broker else ""))
        report.fact("topics", f"{env.prefix}.*")
        try:
            Scenario(env, Pipeline(env, supervisor), report, console).run()
        except DemoError as exc:
            report.check("demo ran to the end", False, str(exc)[-600:])
    finally:
        if supervisor is not None:
            console.print("stopping every process the demo started ...")
            supervisor.stop_all()
        if env is not None:
            for note in env.close(report.passed):
                console.print(f"    {note}")
        signal.signal(signal.SIGTERM, previous)
    report.render(console, time.monotonic() - started)
    return report
