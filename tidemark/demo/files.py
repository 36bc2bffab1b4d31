"""The demo's files: generated deterministically, checksummed, compared after a restore."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

FileSet = dict[str, str]
"""relative path -> sha256 of the content"""

IGNORED = ("lost+found",)
DIFF_GRANULE = 64 * 1024


def generate(folder: Path, seed: int, count: int, max_bytes: int, prefix: str = "") -> FileSet:
    """`count` files of random size (up to `max_bytes`) and content under a few sub-folders."""
    rng = random.Random(seed)
    made: FileSet = {}
    for index in range(count):
        relative = f"{prefix}{('docs', 'data', 'logs')[index % 3]}/file-{seed}-{index:03d}.bin"
        content = rng.randbytes(rng.randint(1, max_bytes))
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        made[relative] = hashlib.sha256(content).hexdigest()
    return made


def checksums(folder: Path) -> FileSet:
    found: FileSet = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and not relative.startswith(IGNORED):
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@dataclass(frozen=True)
class Comparison:
    missing: list[str]
    unexpected: list[str]
    different: list[str]

    @property
    def identical(self) -> bool:
        return not (self.missing or self.unexpected or self.different)

    def describe(self, expected: int) -> str:
        if self.identical:
            return f"all {expected} files match their checksums"
        parts = [
            f"{len(items)} {what} ({', '.join(items[:3])}{' ...' if len(items) > 3 else ''})"
            for what, items in (
                ("missing", self.missing),
                ("unexpected", self.unexpected),
                ("different", self.different),
            )
            if items
        ]
        return "; ".join(parts)


def compare(expected: FileSet, found: FileSet) -> Comparison:
    return Comparison(
        missing=sorted(expected.keys() - found.keys()),
        unexpected=sorted(found.keys() - expected.keys()),
        different=sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k]),
    )


def changed_extents(before: Path, after: Path, granule: int = DIFF_GRANULE) -> list[tuple[int, int]]:
    """The (offset, length) ranges where two images of the same size differ, merged."""
    extents: list[tuple[int, int]] = []
    with before.open("rb") as old, after.open("rb") as new:
        offset = 0
        while True:
            a, b = old.read(granule), new.read(granule)
            if not b:
                break
            if a != b:
                if extents and extents[-1][0] + extents[-1][1] == offset:
                    extents[-1] = (extents[-1][0], extents[-1][1] + len(b))
                else:
                    extents.append((offset, len(b)))
            offset += len(b)
    return extents
