"""Issue 16's detector end to end on the real broker: two ext4 volumes written through the scan
tracker, folded by `tidemark process`, watched by `tidemark analytics`.

Volume `crypt`: text files (the seed), recovery point "before", then the same files overwritten
in place with their AES-CTR encryption, then point "after". Volume `plain`: text files, then
ordinary edits, zero-filled and compressible regions. Exactly one ENCRYPTION_SUSPECTED is raised,
for `crypt`, naming "before" as the clean point; nothing for `plain`; the dashboard's JSON agrees.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ...conftest import CliRunner, TidemarkTest
from ..pipeline_harness import Pipeline
from .ext4 import BS, make_image, overwrite_files, text
from .harness import Analytics, alerts

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
SIZE = 32 * MIB
WINDOW_S = 2.0
ANALYTICS_ENV = {
    "TIDEMARK_ANALYTICS_WINDOW_S": str(WINDOW_S),
    "TIDEMARK_ANALYTICS_SAMPLE_BUDGET": "4096",  # every write of these small volumes is measured
}


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    made: list[Pipeline] = []
    yield made
    for pipe in made:
        pipe.close()


def _volume(
    pipelines: list[Pipeline], tm: TidemarkTest, cli: CliRunner, root: Path, name: str
) -> tuple[Pipeline, list[str]]:
    (root / name).mkdir()
    pipe = Pipeline(tm, cli, root / name, name, SIZE)
    pipelines.append(pipe)
    names = make_image(pipe.image, root / name / "files", SIZE, files=30, seed=len(name))
    return pipe, names


def _scan(cli: CliRunner, pipe: Pipeline) -> None:
    cli("track", "scan", "--volume", pipe.volume, "--image", str(pipe.image))


def _aes_ctr(data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(b"ransom-key-0123456789abcdef-0123"), modes.CTR(b"\x07" * 16)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _judged_windows(analytics: Analytics, volume: str) -> int:
    windows = analytics.get(f"/api/volumes/{volume}/windows")["windows"]
    return sum(1 for w in windows if w["samples"] >= 8)


def test_encrypted_overwrite_raises_one_alert_naming_the_last_clean_point(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    crypt, crypt_files = _volume(pipelines, tm, cli, tmp_path, "crypt")
    plain, plain_files = _volume(pipelines, tm, cli, tmp_path, "plain")
    crypt.start_processor()
    analytics = Analytics(crypt, ANALYTICS_ENV)

    _scan(cli, crypt)
    _scan(cli, plain)
    before = crypt.cut("before")
    crypt.wait(lambda: _judged_windows(analytics, "crypt") >= 1 and _judged_windows(analytics, "plain") >= 1,
               "a baseline window of both volumes")  # fmt: skip

    # plain: ordinary edits, a zero-filled region and a compressible one, all through the scan
    rng = random.Random(5)
    overwrite_files(plain.image, tmp_path / "plain" / "files", plain_files[:10], lambda d: text(len(d), rng))
    with plain.image.open("r+b") as disk:
        disk.seek(24 * MIB)
        disk.write(b"\xab" * (2 * MIB))
        disk.seek(28 * MIB)
        disk.write((b"log line: all good\n" * 120_000)[: 2 * MIB])
    _scan(cli, plain)

    # crypt: every file overwritten in place with its encryption
    written = overwrite_files(crypt.image, tmp_path / "crypt" / "files", crypt_files, _aes_ctr)
    assert written >= MIB
    _scan(cli, crypt)
    after = crypt.cut("after")

    def raised() -> bool:
        return any(a["kind"] == "ENCRYPTION_SUSPECTED" and a["state"] == "RAISED" for a in alerts(tm))

    crypt.wait(raised, "an ENCRYPTION_SUSPECTED alert")
    # a few more windows: nothing else may be raised, and the idle volume's episode ends
    crypt.wait(lambda: any(a["state"] == "CLEARED" for a in alerts(tm)), "the episode to clear", timeout=60)

    found = alerts(tm)
    encryption = [a for a in found if a["kind"] == "ENCRYPTION_SUSPECTED"]
    assert [(a["volume"], a["state"]) for a in encryption] == [("crypt", "RAISED"), ("crypt", "CLEARED")], found
    alert = encryption[0]
    assert alert["alert_id"] == encryption[1]["alert_id"]
    assert (alert["clean_rp_id"], alert["clean_rp_label"]) == (before, "before"), alert
    assert after > before and alert["change_seq"] > alert["clean_rp_seq"]
    assert alert["evidence"]["high_entropy_fraction"] >= 0.9 and alert["evidence"]["baseline_fraction"] <= 0.1
    assert f"--to {before}" in alert["message"]
    assert not [a for a in found if a["volume"] == "plain"], found

    marked = analytics.get("/api/volumes/crypt/points")
    assert [c["rp_id"] for c in marked["clean_points"]] == [before]
    assert {p["label"] for p in marked["points"]} >= {"before", "after"}
    overview = analytics.get("/api/overview")
    assert {v["volume"] for v in overview["volumes"]} == {"crypt", "plain"}
    heat = analytics.get("/api/volumes/plain/heatmap")
    assert heat["size"] == SIZE and sum(sum(row) for _, row in heat["rows"]) > 0, (heat, overview)
    assert BS == 4096
