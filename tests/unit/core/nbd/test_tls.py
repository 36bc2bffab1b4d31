"""NBD over TLS (x509): nbdinfo nbds://, qemu-img with tls-creds-x509, and the required mode."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.core.nbd.export_thread import ExportThread
from tests.unit.core.nbd.rawclient import connect, info_request, option_replies
from tidemark.core.exceptions import NbdServerError
from tidemark.core.nbd import protocol as p
from tidemark.core.nbd.export import ThreadedExport
from tidemark.core.nbd.limits import ServerOptions
from tidemark.core.nbd.tls import TlsMode, TlsOptions

from .test_core_server import MemoryExport

pytestmark = pytest.mark.nbd


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for 127.0.0.1, laid out as libnbd and QEMU expect (ca-cert.pem)."""
    folder = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tidemark test CA",
            "-keyout", str(folder / "ca-key.pem"), "-out", str(folder / "ca-cert.pem"))  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(folder / "server-key.pem"), "-out", str(folder / "server.csr"))  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(folder / "server.csr"), "-CA", str(folder / "ca-cert.pem"),
            "-CAkey", str(folder / "ca-key.pem"), "-CAcreateserial", "-days", "2",
            "-extfile", str(folder / "san.cnf"), "-out", str(folder / "server-cert.pem"))  # fmt: skip
    return folder


def tls_server(certificates: Path, mode: TlsMode) -> ExportThread:
    tls = TlsOptions(mode, certificates / "server-cert.pem", certificates / "server-key.pem")
    return ExportThread(ThreadedExport(MemoryExport("mem", read_only=False)), ServerOptions(tls=tls))


@pytest.fixture(params=[TlsMode.ON, TlsMode.REQUIRE])
def served(request: pytest.FixtureRequest, certificates: Path) -> Iterator[ExportThread]:
    with tls_server(certificates, request.param) as thread:
        yield thread


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_nbdinfo_over_tls(served: ExportThread, certificates: Path) -> None:
    url = f"nbds://127.0.0.1:{served.port}/mem?tls-certificates={certificates}"
    done = run("nbdinfo", "--json", url)
    assert done.returncode == 0, done.stderr
    assert '"TLS": true' in done.stdout and '"export-size": 1048576' in done.stdout


def test_qemu_img_with_tls_creds_x509_writes_and_reads(served: ExportThread, certificates: Path) -> None:
    creds = f"tls-creds-x509,id=tls0,endpoint=client,dir={certificates}"
    image = f"driver=nbd,host=127.0.0.1,port={served.port},export=mem,tls-creds=tls0"
    done = run("qemu-io", "--object", creds, "--image-opts", image, "-c", "write -P 0x61 4096 4096", "-c",
               "read -P 0x61 4096 4096")  # fmt: skip
    assert done.returncode == 0 and "failed" not in done.stdout + done.stderr, done.stdout + done.stderr
    info = run("qemu-img", "info", "--object", creds, "--image-opts", image)
    assert info.returncode == 0 and "1 MiB" in info.stdout, info.stdout + info.stderr
    served.stop()
    assert served.export._backend.data[4096:8192] == b"\x61" * 4096  # type: ignore[attr-defined]


def test_require_refuses_options_before_starttls(certificates: Path) -> None:
    with tls_server(certificates, TlsMode.REQUIRE) as thread:
        sock = connect(thread.port)
        assert option_replies(sock, p.OPT_GO, info_request("mem"))[-1][0] == p.REP_ERR_TLS_REQD
        assert option_replies(sock, p.OPT_LIST)[-1][0] == p.REP_ERR_TLS_REQD
        assert option_replies(sock, p.OPT_STARTTLS, b"x")[-1][0] == p.REP_ERR_INVALID
        sock.close()
        plain = run("nbdinfo", f"nbd://127.0.0.1:{thread.port}/mem")
        assert plain.returncode != 0


def test_tls_without_a_certificate_is_refused_with_the_flags_to_set() -> None:
    with pytest.raises(NbdServerError, match="--tls-cert and --tls-key"):
        TlsOptions(TlsMode.ON).context()
