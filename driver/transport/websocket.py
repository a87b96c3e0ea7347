"""The Postgres byte stream carried in binary WebSocket messages through a wsproxy-style relay."""

from __future__ import annotations

import socket

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..errors import TransportError

__all__ = ["WebSocketStream", "open_websocket"]


class WebSocketStream:
    """Each ``write()`` is one binary message; a received message may be read in pieces."""

    def __init__(self, ws: ClientConnection, url: str) -> None:
        self._ws = ws
        self._rest = b""
        self.url = url

    async def read(self, max_bytes: int) -> bytes:
        if self._rest:
            data, self._rest = self._rest[:max_bytes], self._rest[max_bytes:]
            return data
        try:
            message = await self._ws.recv()
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code in (1000, 1001):
                return b""
            if exc.rcvd is None and exc.sent is None:
                return b""  # the TCP connection just ended: EOF, as on a plain socket
            raise TransportError(f"WebSocket {self.url} closed: {exc}") from exc
        except OSError as exc:
            raise TransportError(f"WebSocket {self.url} failed: {exc}") from exc
        if isinstance(message, str):
            raise TransportError(f"WebSocket {self.url} sent a text message; expected binary")
        if len(message) > max_bytes:
            self._rest = message[max_bytes:]
            return message[:max_bytes]
        return message

    async def write(self, data: bytes) -> None:
        try:
            await self._ws.send(data)
        except (ConnectionClosed, OSError) as exc:
            raise TransportError(f"WebSocket {self.url} closed while writing: {exc}") from exc

    def abort(self) -> None:
        """Drop the TCP connection under the WebSocket at once, without a closing handshake."""
        self._ws.transport.abort()

    async def close(self) -> None:
        try:
            await self._ws.close()
        except (ConnectionClosed, OSError):
            pass  # already closed: nothing left to release


async def open_websocket(url: str) -> WebSocketStream:
    """Open ``url`` (ws:// or wss://, with ``?address=host:port`` already in it).

    Raises:
        TransportError: DNS/TCP failure, or the proxy refused the upgrade (status and reason
            in the message, e.g. a target outside its allow-list).
    """
    try:
        ws = await connect(
            url,
            compression=None,  # the Postgres stream is mostly small messages; deflate only costs
            max_size=None,
            open_timeout=None,  # connect() has one deadline for everything
            user_agent_header=None,
            # websockets reads HTTP proxies from the environment, and a variable named like our
            # own WS_PROXY setting would hijack every connection: the proxy is ws_proxy, only.
            proxy=None,
        )
    except InvalidStatus as exc:
        body = exc.response.body.decode(errors="replace").strip()[:200]
        raise TransportError(
            f"WebSocket proxy refused {url}: HTTP {exc.response.status_code} {body}".rstrip()
        ) from exc
    except (InvalidHandshake, OSError, ValueError) as exc:
        raise TransportError(f"cannot open WebSocket {url}: {exc}") from exc
    sock = ws.transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return WebSocketStream(ws, url)
