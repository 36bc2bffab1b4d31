"""`@nbd_server_flags`: the NBD server's flags as typer options, handed to a command as one argument."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from tidemark.cli.main import app as tidemark_app
from tidemark.cli.nbd_server_options import NbdServerFlags, nbd_server_flags
from tidemark.core.nbd.limits import ServerOptions
from tidemark.core.nbd.tls import TlsMode, TlsOptions


def _served(args: list[str]) -> tuple[typer.testing.Result, list[tuple[str, NbdServerFlags]]]:
    """Run a one-command app with the flags; what the command received."""
    received: list[tuple[str, NbdServerFlags]] = []
    app = typer.Typer()

    @app.command()
    @nbd_server_flags
    def serve(volume: Annotated[str, typer.Option()], *, server: NbdServerFlags) -> None:
        received.append((volume, server))

    return CliRunner().invoke(app, args), received


def test_flags_left_out_keep_the_servers_defaults() -> None:
    result, received = _served(["--volume", "v1"])
    assert result.exit_code == 0, result.output
    assert received == [("v1", NbdServerFlags(("127.0.0.1", 10809), ServerOptions()))]


def test_given_flags_reach_the_command_as_server_options(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    result, received = _served([
        "--volume", "v1", "--listen", "[::1]:0", "--tls", "require", "--tls-cert", str(cert), "--tls-key", str(key),
        "--max-connections", "3", "--idle-timeout", "2.5",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    tls = TlsOptions(TlsMode.REQUIRE, cert, key, None)
    assert received == [("v1", NbdServerFlags(("::1", 0), ServerOptions(tls=tls, max_connections=3, idle_timeout=2.5)))]


@pytest.mark.parametrize(("listen", "message"), [("host:", "is not host:port"), ("unix:", "needs the socket's path")])
def test_a_bad_listen_address_is_a_usage_error(listen: str, message: str) -> None:
    result, received = _served(["--volume", "v1", "--listen", listen])
    assert result.exit_code == 2 and message in result.output and received == []


def test_a_command_without_a_server_parameter_is_refused() -> None:
    def plain(volume: str) -> None:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="takes no `server` parameter"):
        nbd_server_flags(plain)


@pytest.mark.parametrize(
    ("host", "port", "tls", "url"),
    [
        ("127.0.0.1", 10809, TlsMode.OFF, "nbd://127.0.0.1:10809/vm1"),
        ("::1", 4000, TlsMode.ON, "nbd://[::1]:4000/vm1"),
        ("127.0.0.1", 4000, TlsMode.REQUIRE, "nbds://127.0.0.1:4000/vm1"),
        ("unix:/run/vm1.sock", 0, TlsMode.OFF, "nbd+unix:///vm1?socket=/run/vm1.sock"),
    ],
)
def test_the_url_a_client_opens(host: str, port: int, tls: TlsMode, url: str) -> None:
    flags = NbdServerFlags((host, 0), ServerOptions(tls=TlsOptions(tls)))
    assert flags.url(host, port, "vm1") == url


@pytest.mark.parametrize("path", [["track", "nbd"], ["mount"], ["restore"]])
def test_every_nbd_serving_command_takes_the_flags(path: list[str]) -> None:
    command = typer.main.get_command(tidemark_app)
    for name in path:
        assert isinstance(command, typer.core.TyperGroup)
        command = command.commands[name]
    flags = {flag for param in command.params for flag in param.opts}
    assert {"--listen", "--tls", "--tls-cert", "--tls-key", "--tls-ca", "--max-connections", "--idle-timeout"} <= flags
    assert "--server" not in flags
