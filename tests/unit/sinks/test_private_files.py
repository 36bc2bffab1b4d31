"""A mirror's state is private to its owner; a writable overlay never lands in a file in use."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tidemark.sinks.exceptions import FileInUseError, OverlayError
from tidemark.sinks.mount.serve import MountRequest, mounted
from tidemark.sinks.storage.mirror_file import MirrorFile

from .mount_fixtures import SIZE, three_points


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_and_overlays_are_private(make_harness) -> None:  # noqa: ANN001
    harness = three_points(make_harness)
    layout = harness.layout
    with mounted(harness.root / "state", MountRequest("vol", 2, writable=True)) as backend:
        backend.write(0, b"w" * 4096)
        backend.flush()
    overlay = layout.overlays / "rp-2.img"
    for folder in (layout.root, layout.spool, layout.undo, layout.overlays):
        assert _mode(folder) == 0o700, folder
    for path in (layout.progress, layout.readers, overlay, Path(f"{overlay}.json"), Path(f"{overlay}.bitmap")):
        assert _mode(path) == 0o600, path


def test_the_overlay_is_never_the_mirror_image_nor_a_file_in_use(make_harness, tmp_path: Path) -> None:  # noqa: ANN001
    harness = three_points(make_harness)
    state = harness.root / "state"
    with (
        pytest.raises(OverlayError, match="is the mirror image of volume 'vol' itself"),
        mounted(state, MountRequest("vol", 2, writable=True, overlay=harness.path)),
    ):
        pass
    held = tmp_path / "held.img"
    with (
        MirrorFile(held, SIZE),
        pytest.raises(FileInUseError, match="held by another tidemark process"),
        mounted(state, MountRequest("vol", 2, writable=True, overlay=held)),
    ):
        pass
    shared = tmp_path / "shared.img"
    with (
        mounted(state, MountRequest("vol", 2, writable=True, overlay=shared)),
        pytest.raises(FileInUseError),
        mounted(state, MountRequest("vol", 2, writable=True, overlay=shared)),
    ):
        pass
