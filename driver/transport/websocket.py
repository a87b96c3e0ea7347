"""The Postgres byte stream carried in binary WebSocket messages through a wsproxy-style relay."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from ..errors import TransportError

__all__ = ["WebSocketStream", "open_websocket"]

# Stop reading from the socket when this much is buffered and nobody reads (back-pressure).
_HIGH_WATER = 1 << 20
_BINARY, _CONT, _TEXT = Opcode.BINARY, Opcode.CONT, Opcode.TEXT


class _StreamConnection(ClientConnection):
    """A ClientConnection that keeps binary payloads as one byte stream, as they are parsed.

    websockets would queue each message in its Assembler and wake a recv() task through it;
    for a byte stream the message boundaries carry no meaning, so each data frame's payload
    is appended here and the one waiting read() is woken directly (one wake-up per reply).
    Control frames (ping, pong, close) still take websockets' own path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.got_text = False
        self.read_paused = False
        self.read_waiter: asyncio.Future[None] | None = None

    def process_event(self, event: Event) -> None:
        if type(event) is Frame:  # the handshake's Response goes to super() below
            opcode = event.opcode
            if opcode is _BINARY or opcode is _CONT:
                data = event.data
                self.chunks.append(data if type(data) is bytes else bytes(data))
                self.buffered += len(data)
                if self.buffered > _HIGH_WATER and not self.read_paused:
                    self.read_paused = True
                    self.transport.pause_reading()
                self.wake()
                return
            if opcode is _TEXT:
                self.got_text = True
                self.wake()
                return
        super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.wake()

    def wake(self) -> None:
        waiter, self.read_waiter = self.read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class WebSocketStream:
    """Each ``write()`` is one binary message; a received message may be read in pieces."""

    def __init__(self, ws: ClientConnection, url: str) -> None:
        assert isinstance(ws, _StreamConnection)
        self._ws = ws
        self.url = url

    async def read(self, max_bytes: int) -> bytes:
        ws = self._ws
        chunks = ws.chunks
        while not chunks:
            if ws.got_text:
                raise TransportError(f"WebSocket {self.url} sent a text message; expected binary")
            if ws.protocol.state is State.CLOSED:
                return self._at_close()
            waiter = ws.loop.create_future()
            ws.read_waiter = waiter
            try:
                await waiter
            finally:
                ws.read_waiter = None
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if len(data) > max_bytes:
            chunks.append(data[max_bytes:])
            data = data[:max_bytes]
        ws.buffered = len(chunks[0]) if chunks else 0
        if ws.read_paused:
            ws.read_paused = False
            ws.transport.resume_reading()
        return data

    def _at_close(self) -> bytes:
        """EOF for a clean close (or a bare TCP end, as on a plain socket), else an error."""
        exc = self._ws.protocol.close_exc
        if exc.rcvd is not None and exc.rcvd.code in (1000, 1001):
            return b""
        if exc.rcvd is None and exc.sent is None:
            return b""
        raise TransportError(f"WebSocket {self.url} closed: {exc}") from exc

    async def write(self, data: bytes) -> None:
        ws = self._ws
        if ws.protocol.state is not State.OPEN:
            raise TransportError(f"WebSocket {self.url} closed while writing: connection is closed")
        try:
            # What ws.send() does, minus its fragmentation lock and context manager: one frame,
            # written at once; drain() waits only when the transport asked to pause.
            ws.protocol.send_binary(data)
            ws.send_data()
            if ws.paused:
                await ws.drain()
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


async def open_websocket(
    url: str, *, ssl_context: ssl.SSLContext | None = None
) -> WebSocketStream:
    """Open ``url`` (ws:// or wss://, with ``?address=host:port`` already in it).

    Raises:
        TransportError: DNS/TCP failure, or the proxy refused the upgrade (status and reason
            in the message, e.g. a target outside its allow-list).
    """
    # wss:// only: the proxy's certificate is checked against this context, else against the
    # system trust store (websockets' default)
    extra: dict[str, Any] = {}
    if ssl_context is not None and url.startswith("wss:"):
        extra["ssl"] = ssl_context
    try:
        ws = await connect(
            url,
            compression=None,  # the Postgres stream is mostly small messages; deflate only costs
            max_size=None,
            open_timeout=None,  # connect() has one deadline for everything
            **extra,
            user_agent_header=None,
            # websockets reads HTTP proxies from the environment, and a variable named like our
            # own WS_PROXY setting would hijack every connection: the proxy is ws_proxy, only.
            proxy=None,
            create_connection=_StreamConnection,
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
