"""Show a job's statistics (a replay, a scan pass) as a two-column table."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table


def stats_table(title: str, stats: Mapping[str, object]) -> Table:
    table = Table("statistic", "value", title=title, title_justify="left")
    for name, value in stats.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        table.add_row(name.replace("_", " "), shown)
    return table
