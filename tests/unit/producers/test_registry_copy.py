"""The tracker's copy of its registry record: what a start keeps is what an offline start reads."""

from __future__ import annotations

from pathlib import Path

from tidemark.core.volumes import VolumeSpec
from tidemark.producers import registry_copy


def test_the_kept_record_is_read_back(tmp_path: Path) -> None:
    spec = VolumeSpec("vol", 1 << 20, block_size=512, group="g1", generation=3, primary_site="dr1")
    registry_copy.keep(tmp_path, spec)
    assert registry_copy.load(tmp_path, "vol") == spec
    registry_copy.keep(tmp_path, VolumeSpec("vol", 1 << 20))
    assert registry_copy.load(tmp_path, "vol") == VolumeSpec("vol", 1 << 20)


def test_none_kept_another_volumes_or_an_unreadable_copy_is_no_copy(tmp_path: Path) -> None:
    assert registry_copy.load(tmp_path, "vol") is None
    registry_copy.keep(tmp_path, VolumeSpec("other", 1 << 20))
    assert registry_copy.load(tmp_path, "vol") is None
    for text in (b"{", b"[]", b'{"name": "vol"}', b'{"name": "vol", "size": -1, "block_size": 4096}'):
        registry_copy.copy_path(tmp_path).write_bytes(text)
        assert registry_copy.load(tmp_path, "vol") is None, text
