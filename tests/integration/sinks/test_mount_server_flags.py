"""`tidemark mount` flags that fill the NBD server's options: unix socket, connection limit, TLS."""

from __future__ import annotations

import os
import re
import signal
import socket as socket_module
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ...unit.core.nbd.test_tls import certificates  # noqa: F401  (the module-scoped PKI fixture)
from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, register

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

BS = 4096


@contextmanager
def mount(tm, *args: str) -> Iterator[str]:  # noqa: ANN001
    """`tidemark mount ARGS` until the block exits; yields the URL it prints."""
    command = [sys.executable, "-m", "tidemark.cli", "mount", *args]
    child = subprocess.Popen(command, env=tm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stderr is not None
        line = child.stdout.readline()
        found = re.search(r"nbds?(\+unix)?://\S+", line)
        assert found, f"no URL from mount: {line!r} {child.stderr.read() if child.poll() is not None else ''}"
        yield found.group(0)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_unix_socket_connection_limit_and_tls(
    tm,
    cli,
    tmp_path: Path,
    certificates: Path,  # noqa: ANN001, F811
) -> None:
    model = StreamModel("vol-flags", 64 * BS, block_size=BS)
    register(tm.clients, tm.topics, model)
    model.write(0, os.urandom(8 * BS))
    publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=True))
    cli("mirror", "--volume", model.volume, "--path", str(tmp_path / "m.img"), "--exit-when-idle", "2")

    sock = tmp_path / "nbd.sock"
    with mount(tm, "--volume", model.volume, "--rp", "1", "--listen", f"unix:{sock}", "--max-connections", "1") as url:
        assert url == f"nbd+unix:///{model.volume}?socket={sock}"
        assert (
            run("nbdcopy", "--connections=1", url, str(tmp_path / "rp1.raw")).returncode == 0
        )  # multi-conn would pass 1
        assert (tmp_path / "rp1.raw").read_bytes() == model.points[1]
        with socket_module.socket(socket_module.AF_UNIX) as holder:  # one connection, in its handshake
            holder.connect(str(sock))
            assert len(holder.recv(18)) == 18  # the server's greeting: it was accepted
            assert run("nbdinfo", url).returncode != 0, "a second connection past --max-connections 1"

    tls = ("--tls", "require", "--tls-cert", str(certificates / "server-cert.pem"),
           "--tls-key", str(certificates / "server-key.pem"))  # fmt: skip
    with mount(tm, "--volume", model.volume, "--rp", "1", "--listen", "127.0.0.1:0", *tls) as url:
        assert url.startswith("nbds://")
        assert run("nbdinfo", url.replace("nbds://", "nbd://", 1)).returncode != 0  # plain is refused
        done = run("nbdinfo", "--json", f"{url}?tls-certificates={certificates}")
        assert done.returncode == 0 and '"TLS": true' in done.stdout, done.stderr
