"""One primary at the mirror: a change set of an older generation than one applied is refused.

The processor seals each change set under the volume's generation (`ChangeSetSealed.generation`).
Once a mirror applied a set of generation N, a set of an older generation was written by a fenced
primary: it is refused (FencedChangeSetError, a dead letter for the caller), not applied, not
recorded, and the mirror goes on with the current generation. A revert goes back to its point's
generation, so the older sets that precede the newer ones in the stream apply again.
"""

from __future__ import annotations

import pytest

from tidemark.sinks.exceptions import FencedChangeSetError
from tidemark.sinks.storage.progress import REPLICATING

from .conftest import MakeHarness
from .stream_model import StreamModel

BS = 512


def _stale_set(model: StreamModel, generation: int, fill: bytes) -> list[tuple[str, dict[str, object]]]:
    """The next change set id of `model`, sealed by a writer of `generation` with other content."""
    stale = StreamModel(model.volume, model.size, block_size=BS)
    stale.changeset_id, stale.seq, stale.generation = model.changeset_id, model.seq, generation
    stale.write(0, fill * 4 * BS)
    return stale.seal()


def test_a_set_of_an_older_generation_is_refused_and_the_current_one_applies(make_harness: MakeHarness) -> None:
    model = StreamModel("vol", 32 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, b"a" * 4 * BS)
    h.feed(model.seal(cut=True))
    model.generation = 1  # a failover: the processor adopted generation 1
    model.write(8 * BS, b"b" * 2 * BS)
    h.feed(model.seal(cut=True))

    fenced = _stale_set(model, 0, b"z")
    with pytest.raises(FencedChangeSetError, match="generation 0, but the mirror already follows generation 1"):
        h.feed(fenced)
    progress = h.mirror.progress
    assert (progress.changeset_id, progress.state, progress.generation) == (2, REPLICATING, 1)
    assert h.image() == model.points[2], "no block of the fenced generation on the mirror"

    h.close()
    h.open()  # the mirror's generation is durable
    with pytest.raises(FencedChangeSetError):
        h.feed(fenced)
    model.write(16 * BS, b"c" * BS)
    assert [a.changeset_id for a in h.feed(model.seal(cut=True))] == [3]
    assert h.image() == model.points[3]
    assert h.mirror.point(3).generation == 1


def test_older_sets_before_the_newer_ones_apply_again_after_a_revert(make_harness: MakeHarness) -> None:
    model = StreamModel("vol", 32 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, b"a" * 4 * BS)
    h.feed(model.seal(cut=True))
    model.write(2 * BS, b"b" * 4 * BS)
    before_fence = model.seal()  # generation 0, written before the failover
    model.generation = 1
    model.write(4 * BS, b"c" * 4 * BS)
    after_fence = model.seal(cut=True)
    assert len(h.feed(before_fence + after_fence)) == 2 and h.mirror.progress.generation == 1

    h.mirror.revert(1)
    assert h.mirror.progress.generation == 0, "the mirror is back where the stream showed generation 0"
    assert [a.changeset_id for a in h.feed(before_fence + after_fence)] == [2, 3]
    assert h.image() == model.points[2]
