"""`tidemark volume list --json` and `tidemark rp list --json` against a real broker: JSON for scripts."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_volume_list_json_names_every_registered_volume(cli) -> None:  # noqa: ANN001
    cli("volume", "add", "vj-b", "--size", str(1 << 20), "--block-size", "512", "--group", "g1")
    cli("volume", "add", "vj-a", "--size", str(4 << 20))
    listed = json.loads(cli("volume", "list", "--json").stdout)
    assert listed == {
        "volumes": [
            {"name": "vj-a", "size": 4 << 20, "block_size": 4096, "group": None, "generation": 0,
             "primary_site": None},
            {"name": "vj-b", "size": 1 << 20, "block_size": 512, "group": "g1", "generation": 0,
             "primary_site": None},
        ]
    }  # fmt: skip
    assert "vj-a" in cli("volume", "list").stdout


def test_rp_list_json_of_a_volume_without_points(cli) -> None:  # noqa: ANN001
    cli("volume", "add", "vj-c", "--size", str(1 << 20))
    assert json.loads(cli("rp", "list", "--volume", "vj-c", "--json").stdout) == {"volume": "vj-c", "points": []}
