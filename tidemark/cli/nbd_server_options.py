"""The NBD server's command-line options, shared by `track nbd`, `mount` and `restore`.

`@nbd_server_flags` gives a command `--listen`, `--tls`, `--tls-cert`, `--tls-key`, `--tls-ca`,
`--max-connections` and `--idle-timeout`, and hands them to it as one `server: NbdServerFlags`
argument. The defaults live in `tidemark/core/nbd/limits.py` (`ServerOptions`); a flag left out keeps
its default there. `--listen` takes `host:port`, `[v6-address]:port` or `unix:PATH`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

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

# The flags `@nbd_server_flags` adds, in the order `--help` lists them after the command's own.
_FLAGS = (
    ("listen", ListenOption, DEFAULT_LISTEN),
    ("tls", TlsOption, TlsMode.OFF),
    ("tls_cert", TlsCertOption, None),
    ("tls_key", TlsKeyOption, None),
    ("tls_ca", TlsCaOption, None),
    ("max_connections", MaxConnectionsOption, None),
    ("idle_timeout", IdleTimeoutOption, None),
)
_SERVER_PARAMETER = "server"


@dataclass(frozen=True)
class NbdServerFlags:
    """Where to listen (`unix:PATH` whole with port 0, as the NBD server takes it) and the server's options."""

    address: tuple[str, int]
    options: ServerOptions

    def url(self, bound_host: str, bound_port: int, export: str) -> str:
        """The URI a client opens (`nbd://`, `nbds://` when TLS is required, or `nbd+unix://`)."""
        if bound_host.startswith(UNIX):
            return f"nbd+unix:///{export}?socket={bound_host.removeprefix(UNIX)}"
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        scheme = "nbds" if self.options.tls.mode == TlsMode.REQUIRE else "nbd"
        return f"{scheme}://{shown}:{bound_port}/{export}"


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


def server_flags(
    listen: str,
    tls: TlsMode,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    max_connections: int | None,
    idle_timeout: float | None,
) -> NbdServerFlags:
    """The flags' values as the server takes them; a bad `--listen` is a typer.BadParameter."""
    tls_options = TlsOptions(tls, tls_cert, tls_key, tls_ca)
    return NbdServerFlags(listen_address(listen), server_options(tls_options, max_connections, idle_timeout))


def nbd_server_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Give a typer command the NBD server's flags, received as its `server: NbdServerFlags` argument.

    Typer reads a command's parameters from its signature: the wrapper's signature is the command's
    without `server`, plus the flags (keyword-only, after the command's own).
    """
    signature = inspect.signature(command, eval_str=True)
    if _SERVER_PARAMETER not in signature.parameters:
        raise TypeError(f"{command.__qualname__} takes no `server` parameter for @nbd_server_flags to fill")
    own = [p for p in signature.parameters.values() if p.name != _SERVER_PARAMETER]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, annotation, default in _FLAGS]  # fmt: skip

    @functools.wraps(command)
    def with_server(*args: Any, **kwargs: Any) -> None:
        flags = {name: kwargs.pop(name) for name, _, _ in _FLAGS}
        command(*args, server=server_flags(**flags), **kwargs)

    parameters = [*own, *added]
    with_server.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_server.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return with_server
