"""Byte transports for the driver; backends are imported only when used."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .base import Stream

if TYPE_CHECKING:
    import ssl

__all__ = ["Stream", "open_stream"]


async def open_stream(
    host: str, port: int, proxy_url: str | None = None, ws_ssl: ssl.SSLContext | None = None
) -> Stream:
    """A TCP stream to host:port, or a WebSocket stream through ``proxy_url`` when given.

    ``ws_ssl`` verifies a ``wss://`` proxy (default: the system trust store); it has nothing
    to do with TLS to Postgres, which runs inside the stream.

    Raises:
        TransportError: the stream could not be opened.
    """
    if sys.platform == "emscripten":  # Pyodide: no sockets; the page's WebSocket is the way out
        from .pyodide import open_websocket as open_browser_websocket

        return await open_browser_websocket(proxy_url)
    if proxy_url is not None:
        from .websocket import open_websocket

        return await open_websocket(proxy_url, ssl_context=ws_ssl)
    from .tcp import open_tcp

    return await open_tcp(host, port)
