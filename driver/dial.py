"""Opening a channel to the server: the transport, then TLS as sslmode asks; and cancel(),
which sends a CancelRequest over a channel of its own."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from .errors import Error
from .params import ConnectParams
from .protocol.messages import cancel_request
from .transport import open_stream

if TYPE_CHECKING:
    from .transport.base import Stream

__all__ = ["cancel", "close_quietly", "open_channel", "tls_attempts"]

log = logging.getLogger("driver.connect")


def tls_attempts(sslmode: str, url: str | None) -> tuple[bool, ...]:
    """Whether each connection attempt uses TLS, in order (libpq's sslmode=prefer/allow)."""
    if sys.platform == "emscripten":  # Pyodide's ssl is a stub: no TLS to the server there
        from .transport.pyodide import browser_tls_attempts

        attempts = browser_tls_attempts(sslmode, url)
        if attempts is not None:
            return attempts
    if sslmode == "disable":
        return (False,)
    from .tlsconnect import tls_attempts as by_sslmode

    return by_sslmode(sslmode)


async def _secure(
    stream: Stream, params: ConnectParams, use_tls: bool
) -> tuple[Stream, bool, bytes | None, bool]:
    """The seam for TLS: the SSLRequest exchange and handshake live in driver.tlsconnect.

    Returns the stream, whether nobody but the server can read it (TLS, or a Unix socket),
    the channel binding data and whether TLS verified the server's certificate.
    """
    if not use_tls:
        return stream, params.host.startswith("/"), None, False
    from .tlsconfig import TLSSettings
    from .tlsconnect import negotiate

    settings = TLSSettings(
        sslmode=params.sslmode,
        sslrootcert=params.sslrootcert,
        root_certs=params.root_certs,
        sslcert=params.sslcert,
        sslkey=params.sslkey,
        sslpassword=params.sslpassword,
        ssl_min_protocol_version=params.ssl_min_protocol_version,
        ssl_max_protocol_version=params.ssl_max_protocol_version,
        ssl_context=params.ssl_context,
    )
    result = await negotiate(stream, settings, params.host, use_tls=True)
    return result.stream, result.confidential, result.channel_binding, result.verified


async def open_channel(
    params: ConnectParams, use_tls: bool
) -> tuple[Stream, bool, bytes | None, bool]:
    """Open the transport (TCP, Unix socket or WebSocket proxy), then TLS if ``use_tls``.

    Returns:
        The stream, whether nobody but the server can read it, the channel binding data and
        whether TLS verified the server's certificate. On failure nothing stays open.
    """
    stream = await open_stream(params.host, params.port, params.proxy_url(), params.ws_ssl_context)
    try:
        return await _secure(stream, params, use_tls)
    except BaseException:
        await close_quietly(stream)
        raise


async def close_quietly(stream: Stream) -> None:
    try:
        async with asyncio.timeout(1.0):
            await stream.close()
    except (Error, OSError, TimeoutError) as exc:
        log.debug("closing a failed connection attempt: %r", exc)


async def cancel(params: ConnectParams, pid: int, key: int) -> None:
    """Send a CancelRequest for backend ``pid`` on a new stream, the way the connection went.

    Waits until the server closes that stream, which it does after signalling the backend,
    so the cancel cannot hit a later query ("Canceling Requests in Progress").
    """
    use_tls = tls_attempts(params.sslmode, params.proxy_url())[0]
    stream, _, _, _ = await open_channel(params, use_tls)
    try:
        await stream.write(cancel_request(pid, key))
        while await stream.read(1024):
            pass
    finally:
        await close_quietly(stream)
