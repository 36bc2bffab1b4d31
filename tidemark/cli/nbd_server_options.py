"""The NBD server's command-line options, shared by `track nbd`, `mount` and `failover --test`.

The defaults live in `tidemark/core/nbd/limits.py` (`ServerOptions`); a flag left out keeps its
default there. `--listen` takes `host:port`, `[v6-address]:port` or `unix:PATH`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tidemark.core.nbd.limits import MAX_CONNECTIONS, ServerOptions
from tidemark.core.nbd.tls import TlsMode, TlsOptions

UNIX = "unix:"
DEFAULT_LISTEN = "127.0.0.1:10809"

ListenOption = Annotated[
    str, typer.Option(help="host:port, or unix:PATH for a unix socket, to accept NBD clients on (loopback by default)")
]
TlsOption = Annotated[TlsMode, typer.Option(help="NBD_OPT_STARTTLS: off, on (clients may upgrade) or require")]
TlsCertOption = Annotated[Path | None, typer.Option(help="server certificate (PEM) for --tls on|require")]
TlsKeyOption = Annotated[Path | None, typer.Option(help="server private key (PEM) for --tls on|require")]
TlsCaOption = Annotated[Path | None, typer.Option(help="CA (PEM): clients must present a certificate it signed")]
MaxConnectionsOption = Annotated[
    int | None, typer.Option(min=1, help=f"connections open at once [default: {MAX_CONNECTIONS}]")
]
IdleTimeoutOption = Annotated[
    float | None, typer.Option(min=0.1, help="seconds a connection may send nothing [default: no limit]")
]


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` or `[v6-address]:port` into its parts."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise typer.BadParameter(f"{value!r} is not host:port (for example 127.0.0.1:10809)")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def listen_address(value: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, or `unix:PATH` (returned whole, port 0) as the NBD server takes it."""
    if value.startswith(UNIX):
        if value == UNIX:
            raise typer.BadParameter("--listen unix:PATH needs the socket's path")
        return value, 0
    return parse_listen(value)


def server_options(tls: TlsOptions, max_connections: int | None, idle_timeout: float | None) -> ServerOptions:
    """The flags given over the server's defaults (a flag left out keeps the default of limits.py)."""
    given: dict[str, object] = {"tls": tls}
    if max_connections is not None:
        given["max_connections"] = max_connections
    if idle_timeout is not None:
        given["idle_timeout"] = idle_timeout
    return ServerOptions(**given)  # type: ignore[arg-type]
