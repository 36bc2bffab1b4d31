"""failover --reverse, then rejoin: the old primary becomes a mirror after a delta resync."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyroaring import BitMap

from tidemark.sinks.exceptions import MirrorStateError
from tidemark.sinks.ops.failback import StreamPosition
from tidemark.sinks.ops.failover import failover
from tidemark.sinks.ops.rejoin import rejoin
from tidemark.sinks.storage import progress as progress_file

from .mount_fixtures import BS, three_points


def test_the_old_primary_rejoins_with_only_the_changed_blocks_copied(
    make_harness,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    harness = three_points(make_harness)
    model, state_dir = harness.model, harness.root / "state"
    model.write(200 * BS, b"\x11" * 8 * BS)  # the old primary's last set: never applied at the mirror
    model.seal()
    old = tmp_path / "east.img"
    old.write_bytes(bytes(model.image))
    harness.close()
    with pytest.raises(MirrorStateError, match="was not failed over"):
        rejoin(state_dir, "vol", "east", old, "default", BitMap(), None)
    failover(state_dir, "default", "vol", harness.path, fence=lambda: 1)
    with harness.path.open("r+b") as new_primary:  # the tracker of the promoted copy writes blocks 10, 11
        new_primary.seek(10 * BS)
        new_primary.write(b"\x22" * 2 * BS)
    changed = BitMap(range(200, 208)) | BitMap([10, 11])  # the seals after the common point
    resume = StreamPosition(0, 5_000, model.changeset_id + 1, model.seq + 2, None)

    report = rejoin(state_dir, "vol", "east", old, "default", changed, resume)
    promoted = harness.image()
    assert old.read_bytes() == promoted
    assert report.candidates < 256 and report.copied >= 10 and report.still_differing == 0
    assert report.saved_kept is None and not list((state_dir / "mirrors" / "east" / "vol").glob("rejoin-saved*"))
    state = progress_file.load(state_dir / "mirrors" / "east" / "vol" / "progress.json")
    assert state is not None and (state.state, state.generation, state.changeset_id) == (
        "PAUSED",
        1,
        resume.changeset_id,
    )
    with pytest.raises(MirrorStateError, match="already keeps a mirror"):
        rejoin(state_dir, "vol", "east", old, "default", changed, resume)

    model.image[:] = promoted  # the new primary's next set applies at the rejoined mirror
    model.changeset_id, model.generation = resume.changeset_id, 1  # sealed under the failover's generation
    east = make_harness(model, site="east")
    model.write(0, b"\x33" * 4 * BS)
    assert [a.rp_id for a in east.feed(model.seal(cut=True))] == [4]
    assert old.read_bytes() == bytes(model.image)
