"""An NBD server generic over an `Export` backend: fixed newstyle, structured replies with
`base:allocation` block status, multi-conn, TLS, unix sockets and limits.

Modules, one job each: `protocol` (wire layouts), `options` (option data parsing), `handshake`
(haggling up to transmission), `tls` (STARTTLS settings), `dispatch` (request checks and the
export calls), `replies` (reply bytes), `connection` (one client, an asyncio.BufferedProtocol),
`limits` (ServerOptions and the shared byte budget), `server` (listening and shutdown),
`export` (the backend interface and `ThreadedExport`), `concurrency` (range lock, byte budget).

Used by the NBD tracker (producers) and by mirror mounts (sinks); neither stage depends on the
other, both on this package.
"""
