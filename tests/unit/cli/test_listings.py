"""`rp list`'s rows (what --json prints and the table shows), without Kafka."""

from __future__ import annotations

from typing import Any

from tidemark.cli.rp_cmd import point_rows


def _header(rp_id: int, label: str | None = None) -> dict[str, Any]:
    return {"rp_id": rp_id, "created_at": 1_700_000_000_000 + rp_id, "kind": "PERIODIC", "label": label,
            "changed_bytes": 4096 * rp_id}  # fmt: skip


def test_a_site_holds_every_point_up_to_the_one_it_applied() -> None:
    points = {1: _header(1, "before upgrade"), 2: _header(2), 3: _header(3)}
    rows = point_rows(points, {"dr2": 3, "dr1": 2, "late": None})
    assert [row["sites"] for row in rows] == [["dr1", "dr2"], ["dr1", "dr2"], ["dr2"]]
    assert rows[0] == {
        "rp_id": 1, "created_at_ms": 1_700_000_000_001, "kind": "PERIODIC", "label": "before upgrade",
        "changed_bytes": 4096, "sites": ["dr1", "dr2"],
    }  # fmt: skip


def test_no_points_no_rows() -> None:
    assert point_rows({}, {"dr1": 4}) == []
