"""One measured figure, its anchor and goal, and the table that shows them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Goal:
    """`ratio >= bound` (at_least) or `value <= bound` / `ratio <= bound` (at_most)."""

    text: str
    check: Callable[[float, float], bool]  # (value, ratio) -> met


def ratio_at_least(bound: float) -> Goal:
    return Goal(f"ratio >= {bound:g}", lambda _v, r: r >= bound)


def ratio_at_most(bound: float) -> Goal:
    return Goal(f"ratio <= {bound:g}", lambda _v, r: r <= bound)


def value_at_most(bound: float, unit: str) -> Goal:
    return Goal(f"value <= {bound:g} {unit}", lambda v, _r: v <= bound)


INFO = Goal("(context)", lambda _v, _r: True)


@dataclass
class Figure:
    """A measured value next to the anchor it is judged against (ratio = value / anchor)."""

    number: str
    name: str
    value: float
    unit: str
    anchor: str
    anchor_value: float
    goal: Goal
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.value / self.anchor_value if self.anchor_value else float("nan")

    @property
    def met(self) -> bool | None:
        if self.goal is INFO:
            return None
        return self.goal.check(self.value, self.ratio)


@dataclass
class Failure:
    """A figure that could not be measured (the tool missing, the pipeline stuck)."""

    number: str
    name: str
    error: str


HEADERS = ("#", "figure", "value", "anchor", "anchor value", "ratio", "goal", "met?")


def _num(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def row(figure: Figure) -> tuple[str, ...]:
    met = {True: "yes", False: "NO", None: "-"}[figure.met]
    return (
        figure.number,
        figure.name,
        f"{_num(figure.value)} {figure.unit}",
        figure.anchor,
        f"{_num(figure.anchor_value)} {figure.unit}",
        _num(figure.ratio),
        figure.goal.text,
        met,
    )


def failure_row(failure: Failure) -> tuple[str, ...]:
    return (failure.number, failure.name, "failed", failure.error[:60], "", "", "", "NO")


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in r) + " |" for r in rows]
    return "\n".join(lines)
