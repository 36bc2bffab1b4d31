"""One `tidemark mirror` process serves several volumes from one consumer group."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tidemark.core.volumes import VolumeSpec, publish_volume
from tidemark.sinks.apply.applier import SiteApplier, SiteOptions
from tidemark.sinks.apply.applier_stop import stop_running_applier
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.ops.failover import failover

from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, publish_manifest, register

pytestmark = pytest.mark.integration

BS = 4096


def _history(tm, model: StreamModel, seed: int) -> None:  # noqa: ANN001
    for n in range(6):
        blocks = model.size // BS
        model.write(((n * 11 + seed) % (blocks - 8)) * BS, os.urandom(8 * BS))
        cut = n % 3 == 2
        publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=cut))
        if cut:
            publish_manifest(tm.clients, tm.topics, model.manifest())


def test_two_volumes_one_process_both_identical(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    models = [StreamModel(f"vol-m{i}", 64 * BS, block_size=BS, compression="ZSTD") for i in range(2)]
    for seed, model in enumerate(models):
        register(tm.clients, tm.topics, model)
        _history(tm, model, seed)
    folder = tmp_path / "mirrors"
    folder.mkdir()
    args = [arg for m in models for arg in ("--volume", m.volume)]
    out = cli("mirror", *args, "--dir", str(folder), "--site", "dr", "--exit-when-idle", "2").stdout
    for model in models:
        assert f"mirror of {model.volume} at site dr: applied 6 change sets" in out, out
        mirror = folder / f"{model.volume}.img"
        assert mirror.read_bytes() == bytes(model.image)
        for rp in (1, 2):
            verified = cli("verify", "--volume", model.volume, "--mirror", str(mirror), "--site", "dr", "--rp", str(rp))
            assert "identical" in verified.stdout

    # more change sets for one volume, and a volume registered later: --all serves both
    _history(tm, models[0], 5)
    late = StreamModel("vol-late", 32 * BS, block_size=BS)
    register(tm.clients, tm.topics, late)
    _history(tm, late, 1)
    out = cli("mirror", "--all", "--dir", str(folder), "--site", "dr", "--exit-when-idle", "2").stdout
    assert "mirror of vol-m0 at site dr: applied 6 change sets" in out, out
    assert "mirror of vol-m1 at site dr: applied 0 change sets" in out, out
    assert "mirror of vol-late at site dr: applied 6 change sets" in out, out
    for model in (*models, late):
        assert (folder / f"{model.volume}.img").read_bytes() == bytes(model.image)


def test_a_volume_that_cannot_be_served_is_left_out(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    good = StreamModel("vol-ok", 16 * BS, block_size=BS)
    register(tm.clients, tm.topics, good)
    _history(tm, good, 0)
    publish_volume(tm.clients, tm.topics, VolumeSpec("vol-other", 16 * BS, BS))
    (tmp_path / "vol-other.img").write_bytes(b"x")  # exists, unknown to the state dir
    out = cli("mirror", "--volume", "vol-ok", "--volume", "vol-other", "--dir", str(tmp_path), "--exit-when-idle", "2")
    assert "mirror of vol-ok at site default: applied 6 change sets" in out.stdout
    assert "mirror of vol-other" in out.stdout and "NOT MIRRORED" in out.stdout
    assert (tmp_path / "vol-ok.img").read_bytes() == bytes(good.image)
    alone = cli("mirror", "--volume", "vol-other", "--dir", str(tmp_path), "--exit-when-idle", "1", check=False)
    assert alone.returncode != 0 and "vol-other.img exists" in alone.stderr + alone.stdout


def test_all_picks_up_a_volume_registered_while_it_runs(tm, tmp_path: Path) -> None:  # noqa: ANN001
    first = StreamModel("vol-first", 16 * BS, block_size=BS)
    register(tm.clients, tm.topics, first)
    _history(tm, first, 0)
    options = SiteOptions({"vol-first": tmp_path / "vol-first.img"}, all_in=tmp_path, registry_refresh_s=0.5)
    applier = SiteApplier(tm.clients, tm.topics, tm.settings.state_dir, options)
    stop = threading.Event()
    runner = threading.Thread(target=applier.run, args=(stop,), daemon=True)
    runner.start()
    try:
        _wait(lambda: _applied(applier, "vol-first") == 6, "the first volume")
        later = StreamModel("vol-later", 16 * BS, block_size=BS)
        register(tm.clients, tm.topics, later)
        _history(tm, later, 3)
        _wait(lambda: _applied(applier, "vol-later") == 6, "the volume registered later")
    finally:
        stop.set()
        runner.join(60)
    assert not runner.is_alive() and not applier.errors
    for model in (first, later):
        assert (tmp_path / f"{model.volume}.img").read_bytes() == bytes(model.image)


def _applied(applier: SiteApplier, volume: str) -> int:
    summary = applier.summaries.get(volume)
    return 0 if summary is None else summary.changesets


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_failover_lets_go_of_one_volume_and_the_others_go_on(tm, tmp_path: Path) -> None:  # noqa: ANN001
    models = [StreamModel(f"vol-f{i}", 16 * BS, block_size=BS) for i in range(2)]
    for seed, model in enumerate(models):
        register(tm.clients, tm.topics, model)
        _history(tm, model, seed)
    targets = {m.volume: tmp_path / f"{m.volume}.img" for m in models}
    applier = SiteApplier(tm.clients, tm.topics, tm.settings.state_dir, SiteOptions(targets))
    stop = threading.Event()
    runner = threading.Thread(target=applier.run, args=(stop,), daemon=True)
    runner.start()
    try:
        _wait(lambda: all(_applied(applier, m.volume) == 6 for m in models), "both volumes")
        layout = MirrorLayout.of(tm.settings.state_dir, "default", models[0].volume)
        assert stop_running_applier(layout, timeout=30) == os.getpid()
        report = failover(tm.settings.state_dir, "default", models[0].volume, targets[models[0].volume])
        assert report.rp_id == 2
        _history(tm, models[1], 4)  # the other volume is still served by the same process
        _wait(lambda: _applied(applier, models[1].volume) == 12, "the other volume to go on")
        assert runner.is_alive()
    finally:
        stop.set()
        runner.join(60)
    assert targets[models[1].volume].read_bytes() == bytes(models[1].image)
