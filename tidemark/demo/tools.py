"""The system tools the demo drives: ext4 (mke2fs, debugfs, e2fsck) and NBD clients (qemu-img,
qemu-io, nbdcopy). Each helper runs one real command and raises DemoError with its output."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .exceptions import DemoError, ToolMissingError

TOOLS = ("mke2fs", "debugfs", "e2fsck", "qemu-img", "qemu-io", "nbdcopy")
TOOL_TIMEOUT_S = 300.0


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise ToolMissingError(
            f"the demo needs {', '.join(missing)}: install the Debian packages qemu-utils, "
            "libnbd-bin and e2fsprogs (scripts/demo does)"
        )


def run(command: Sequence[str], cwd: Path | None = None, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run a tool; return its output (stdout and stderr), or raise with it."""
    try:
        result = subprocess.run(
            list(command), cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"`{' '.join(command)}` did not finish within {TOOL_TIMEOUT_S:.0f} s") from exc
    output = result.stdout + result.stderr
    if result.returncode not in ok_codes:
        raise DemoError(f"`{' '.join(command)}` exited {result.returncode}:\n{output.strip()}")
    return output


def nbd_uri(port: int, export: str) -> str:
    return f"nbd://127.0.0.1:{port}/{export}"


def make_ext4(folder: Path, image: Path, size: int) -> None:
    """A real ext4 filesystem of `size` bytes holding the files of `folder` (no mount, no root)."""
    image.unlink(missing_ok=True)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", str(folder), str(image), f"{size // 1024}k"])


def debugfs_write(image: Path, commands: Sequence[str]) -> None:
    """Apply debugfs commands (write, rm, mkdir ...) to an unmounted image, read-write."""
    script = image.with_suffix(".debugfs")
    script.write_text("\n".join(commands) + "\n")
    output = run(["debugfs", "-w", "-f", str(script), str(image)])
    # debugfs exits 0 even when a command fails; its only other output is the banner and inode notes
    failures = [
        line for line in output.splitlines()
        if line.strip() and not line.startswith(("debugfs", "Allocated inode"))
    ]  # fmt: skip
    if failures:
        raise DemoError(f"debugfs on {image} reported: {'; '.join(failures)}")


def dump_tree(image: Path, target: Path) -> None:
    """Copy every file of the image's filesystem into `target` (debugfs rdump: no mount)."""
    target.mkdir(parents=True, exist_ok=True)
    run(["debugfs", "-R", f"rdump / {target}", str(image)])


def fsck(image: Path) -> str:
    """`e2fsck -fn`: a full read-only check; raises unless the filesystem is clean."""
    return run(["e2fsck", "-fn", str(image)])


def push_image(source: Path, port: int, export: str) -> None:
    """Write every block of `source` through an NBD export (the tracker sees each write)."""
    run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(source), nbd_uri(port, export)])


def write_extents(source: Path, extents: Sequence[tuple[int, int]], port: int, export: str, scratch: Path) -> None:
    """Write the given extents of `source` through an NBD export with qemu-io, then flush."""
    scratch.mkdir(parents=True, exist_ok=True)
    commands: list[str] = []
    with source.open("rb") as image:
        for index, (offset, length) in enumerate(extents):
            image.seek(offset)
            chunk = scratch / f"extent-{index}.bin"
            chunk.write_bytes(image.read(length))
            commands += ["-c", f"write -q -s {chunk} {offset} {length}"]
    commands += ["-c", "flush"]
    run(["qemu-io", "-f", "raw", *commands, nbd_uri(port, export)])


def copy_out(port: int, export: str, target: Path) -> None:
    """Read a whole NBD export into a file with nbdcopy."""
    target.unlink(missing_ok=True)
    run(["nbdcopy", nbd_uri(port, export), str(target)])
