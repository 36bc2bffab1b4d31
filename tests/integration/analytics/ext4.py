"""Real ext4 images for the analytics tests: `mke2fs -d` from a folder of text files, and files
overwritten in place (at the blocks `debugfs` says they occupy), as ransomware or an editor would."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from pathlib import Path

BS = 4096
WORDS = ["the", "quarterly", "report", "shows", "that", "our", "customers", "in", "the", "north", "region",
         "ordered", "more", "parts", "than", "last", "year", "while", "returns", "fell", "and", "the", "backup",
         "of", "the", "ledger", "finished", "on", "time"]  # fmt: skip


def text(size: int, rng: random.Random) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rng.choice(WORDS) for _ in range(14)) + ".\n").encode()
    return bytes(out[:size])


def make_image(image: Path, folder: Path, size: int, files: int, seed: int) -> list[str]:
    """An ext4 image of `size` bytes holding `files` text files of 32-160 KiB; their names."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    names = [f"doc{n:03d}.txt" for n in range(files)]
    for name in names:
        (folder / name).write_bytes(text(rng.randrange(8, 40) * BS, rng))
    image.unlink(missing_ok=True)
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", str(BS), "-d", str(folder), str(image), f"{size // 1024}k"])
    return names


def file_blocks(image: Path, name: str) -> list[int]:
    """The data blocks of /name, in file order (`debugfs -R "blocks /name"`)."""
    out = _run(["debugfs", "-R", f"blocks /{name}", str(image)])
    blocks = [int(word) for word in out.split()]
    assert blocks, f"debugfs found no blocks of /{name} in {image}: {out!r}"
    return blocks


def overwrite_files(image: Path, folder: Path, names: list[str], transform: Callable[[bytes], bytes]) -> int:
    """Write transform(content) over each file's own blocks in the image; bytes written."""
    written = 0
    with image.open("r+b") as disk:
        for name in names:
            content = (folder / name).read_bytes()
            blocks = file_blocks(image, name)
            data = transform(content.ljust(len(blocks) * BS, b"\0"))
            for index, block in enumerate(blocks):
                disk.seek(block * BS)
                disk.write(data[index * BS : (index + 1) * BS])
                written += BS
    return written


def _run(command: list[str]) -> str:
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}{done.stderr}"
    return done.stdout
