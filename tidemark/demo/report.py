"""What the demo found: each check passed or failed, plus the facts of the run, as a rich report."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def check(self, name: str, passed: bool, detail: str) -> bool:
        self.checks.append(Check(name, passed, detail))
        return passed

    def fact(self, name: str, value: str) -> None:
        self.facts[name] = value

    def render(self, console: Console, seconds: float) -> None:
        facts = Table("what", "value", title="tidemark demo", show_header=False, title_justify="left")
        for name, value in self.facts.items():
            facts.add_row(name, value)
        facts.add_row("wall time", f"{seconds:.0f} s")
        console.print(facts)
        checks = Table("check", "result", "detail", title="checks", title_justify="left")
        for check in self.checks:
            checks.add_row(check.name, "[green]passed[/]" if check.passed else "[bold red]FAILED[/]", check.detail)
        console.print(checks)
        failed = sum(not check.passed for check in self.checks)
        if failed:
            console.print(f"[bold red]{failed} of {len(self.checks)} checks failed[/]")
        else:
            console.print(f"[bold green]all {len(self.checks)} checks passed[/]")
