"""The live pipeline both analytics integration tests watch: two ext4 volumes written through the
scan tracker and folded by `tidemark process`, with `tidemark analytics` running.

Volume `crypt`: text files (the seed), recovery point "before", then the same files overwritten
in place with their AES-CTR encryption, then point "after". Volume `plain`: text files, then
ordinary edits, a zero-filled region and a compressible one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ...conftest import CliRunner, TidemarkTest
from ..pipeline_harness import Pipeline
from .ext4 import make_image, overwrite_files, text
from .harness import Analytics, alerts

MIB = 1 << 20
SIZE = 32 * MIB
WINDOW_S = 2.0
ANALYTICS_ENV = {
    "TIDEMARK_ANALYTICS_WINDOW_S": str(WINDOW_S),
    "TIDEMARK_ANALYTICS_SAMPLE_BUDGET": "4096",  # every write of these small volumes is measured
}


@dataclass
class Scenario:
    crypt: Pipeline
    plain: Pipeline
    analytics: Analytics
    before: int
    after: int


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


def aes_ctr(data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(b"ransom-key-0123456789abcdef-0123"), modes.CTR(b"\x07" * 16)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _judged_windows(analytics: Analytics, volume: str) -> int:
    windows = analytics.get(f"/api/volumes/{volume}/windows")["windows"]
    return sum(1 for w in windows if w["samples"] >= 8)


def run(tm: TidemarkTest, cli: CliRunner, root: Path, pipelines: list[Pipeline], mirror: bool = False) -> Scenario:
    """Run the scenario until the ENCRYPTION_SUSPECTED alert is out and its episode cleared."""
    crypt, crypt_files = _volume(pipelines, tm, cli, root, "crypt")
    plain, plain_files = _volume(pipelines, tm, cli, root, "plain")
    crypt.start_processor()
    if mirror:
        crypt.start_mirror()
    analytics = Analytics(crypt, ANALYTICS_ENV)

    _scan(cli, crypt)
    _scan(cli, plain)
    before = crypt.cut("before")
    crypt.wait(lambda: _judged_windows(analytics, "crypt") >= 1 and _judged_windows(analytics, "plain") >= 1,
               "a baseline window of both volumes")  # fmt: skip

    rng = random.Random(5)
    overwrite_files(plain.image, root / "plain" / "files", plain_files[:10], lambda d: text(len(d), rng))
    with plain.image.open("r+b") as disk:
        disk.seek(24 * MIB)
        disk.write(b"\xab" * (2 * MIB))
        disk.seek(28 * MIB)
        disk.write((b"log line: all good\n" * 120_000)[: 2 * MIB])
    _scan(cli, plain)

    written = overwrite_files(crypt.image, root / "crypt" / "files", crypt_files, aes_ctr)
    assert written >= MIB
    _scan(cli, crypt)
    after = crypt.cut("after")

    def raised() -> bool:
        return any(a["kind"] == "ENCRYPTION_SUSPECTED" and a["state"] == "RAISED" for a in alerts(tm))

    crypt.wait(raised, "an ENCRYPTION_SUSPECTED alert")
    # a few more windows: nothing else may be raised, and the idle volume's episode ends
    crypt.wait(lambda: any(a["state"] == "CLEARED" for a in alerts(tm)), "the episode to clear", timeout=60)
    return Scenario(crypt, plain, analytics, before, after)
