"""TLS for NBD (NBD_OPT_STARTTLS with x509 certificates): the mode and the server's SSL context.

Modes, as in nbdkit and qemu-nbd: `off` refuses STARTTLS (NBD_REP_ERR_UNSUP); `on` lets a client
upgrade; `require` answers every option but STARTTLS and ABORT with NBD_REP_ERR_TLS_REQD (and
closes on NBD_OPT_EXPORT_NAME) until the client upgraded. With a CA file, clients must present a
certificate that CA signed.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tidemark.core.exceptions import NbdServerError


class TlsMode(StrEnum):
    OFF = "off"
    ON = "on"
    REQUIRE = "require"


@dataclass(frozen=True)
class TlsOptions:
    """`--tls`, `--tls-cert`, `--tls-key`, `--tls-ca`."""

    mode: TlsMode = TlsMode.OFF
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    def context(self) -> ssl.SSLContext | None:
        """The server context (None when TLS is off); raises NbdServerError naming the flag to fix."""
        if self.mode == TlsMode.OFF:
            return None
        if self.cert is None or self.key is None:
            raise NbdServerError(f"--tls {self.mode} needs --tls-cert and --tls-key (PEM files of the server)")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
            if self.ca is not None:
                context.load_verify_locations(self.ca)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:
            raise NbdServerError(
                f"cannot load the TLS certificate {self.cert}, key {self.key} or CA {self.ca}: {exc}; "
                "check --tls-cert, --tls-key and --tls-ca"
            ) from exc
        return context
