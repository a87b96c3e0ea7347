"""The Postgres byte stream carried in binary WebSocket messages through a wsproxy-style relay.

websockets does the opening handshake (request, response checks, error reporting) through its
sans-I/O ClientProtocol; the frames after it are handled here, because a Postgres byte stream
needs very little of WebSocket: binary payloads in order, pongs for pings, and a close
handshake. Doing it in one asyncio.BufferedProtocol (recv_into a kept buffer, frames parsed
in place, one write per frame) costs about what a plain TCP stream does per round trip;
websockets' general-purpose frame path (parser generators, an event per frame, an assembler)
cost ~40 µs of CPU more per query on the driver's benchmark.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from ..errors import TransportError
from .base import describe_error
from .wsframes import (
    CLEAN_CLOSE,
    CLOSE_CODE,
    MAX_FRAME,
    OP_BINARY,
    OP_CLOSE,
    PONG_BACKLOG,
    READ_SIZE,
    FrameReader,
    build_frame,
    masks,
)

# build_frame and MAX_FRAME live in wsframes; named here too for callers that import them here
__all__ = ["MAX_FRAME", "WebSocketStream", "build_frame", "open_websocket"]

_MAX_HANDSHAKE = 64 * 1024  # bytes of HTTP response head we accept
_CLOSE_WAIT = 1.0  # seconds close() waits for the server's side of the closing handshake


class WebSocketStream(FrameReader, asyncio.BufferedProtocol):
    """Each ``write()`` is one binary message (or a few, if large); reads return the
    payload bytes in order, whatever the message boundaries were.

    Made by ``open_websocket()``, which runs the opening handshake before handing it out.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)  # the frame buffer and the receive side's state
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._open = False  # handshake done: bytes are frames
        self._head = bytearray()  # handshake: the HTTP response so far
        self._head_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._write_waiter: asyncio.Future[None] | None = None
        self._eof = False  # the TCP connection ended
        self._error: BaseException | None = None  # why it ended, if not cleanly

    # ---- asyncio.BufferedProtocol callbacks ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if not self._open:
            self._head += self._view[:nbytes]
            self._wake_head()
            return
        self._filled(nbytes)

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_head()
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake_head()
        self._wake_reader()
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- FrameReader's effects ---------------------------------------------------------

    def _deliver(self, got_data: bool) -> None:
        if got_data or self._failure is not None or self._close_rcvd is not None:
            self._wake_reader()

    def _pong_room(self) -> bool:
        transport = self._transport
        return transport is not None and transport.get_write_buffer_size() < PONG_BACKLOG

    def _control(self, opcode: int, payload: bytes) -> None:
        transport = self._transport
        if transport is not None and not self._close_sent and not transport.is_closing():
            transport.write(build_frame(opcode, payload, masks.next()))

    def _drop(self) -> None:
        transport = self._transport
        if transport is not None:
            if transport.get_write_buffer_size() >= PONG_BACKLOG:
                transport.abort()  # the peer is not reading: a close would wait on it forever
            else:
                transport.close()
        self._wake_reader()

    # ---- handshake ---------------------------------------------------------------------

    def _wake_head(self) -> None:
        waiter, self._head_waiter = self._head_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _more_head(self) -> bool:
        """Wait for more of the HTTP response; False once the connection has ended."""
        if self._eof:
            return False
        waiter = self._loop.create_future()
        self._head_waiter = waiter
        await waiter
        return True

    async def handshake(self, protocol: ClientProtocol) -> None:
        """Send the upgrade request and check the response with websockets; keep whatever
        follows the response head (the first frames, if the server was quick) as frames."""
        assert self._transport is not None
        request = protocol.connect()
        protocol.send_request(request)
        for chunk in protocol.data_to_send():
            self._transport.write(chunk)
        while (end := self._head.find(b"\r\n\r\n")) < 0:
            if len(self._head) > _MAX_HANDSHAKE or not await self._more_head():
                break
        if end >= 0 and self._head.startswith(b"HTTP/1.1 101 "):
            protocol.receive_data(bytes(self._head[: end + 4]))
            rest = self._head[end + 4 :]
        else:  # a refusal (with a body to report) or garbage: websockets reads it all
            protocol.receive_data(bytes(self._head))
            self._head.clear()
            while not protocol.events_received() and await self._more_head():
                protocol.receive_data(bytes(self._head))
                self._head.clear()
            if self._eof:
                protocol.receive_eof()
            rest = bytearray()
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        if protocol.state is not State.OPEN:
            raise InvalidHandshake("the connection closed during the opening handshake")
        self._open = True
        self._head = bytearray()
        if len(rest) > READ_SIZE:
            raise InvalidHandshake("too many bytes right after the handshake response")
        if rest:  # frames that came with the response: parse them as if just read
            self._buf[: len(rest)] = rest
            self.buffer_updated(len(rest))

    # ---- Stream ------------------------------------------------------------------------

    def _pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def _at_end(self) -> bytes | None:
        if self._failure is not None:
            raise TransportError(self._failure)
        if self._close_rcvd is not None or self._eof:
            return self._at_close()
        return None

    def _at_close(self) -> bytes:
        """EOF for a clean close (or a bare TCP end, as on a plain socket), else an error."""
        rcvd = self._close_rcvd
        if rcvd is not None:
            code, reason = rcvd
            if code in CLEAN_CLOSE:
                return b""
            raise TransportError(f"WebSocket {self.url} closed: {code} {reason}".rstrip())
        if self._error is not None:
            raise TransportError(f"WebSocket {self.url} failed: {describe_error(self._error)}")
        return b""

    async def write(self, data: bytes) -> None:
        transport = self._transport
        if (
            transport is None
            or transport.is_closing()
            or self._close_sent
            or self._close_rcvd is not None
        ):
            why = self._failure or "connection is closed"
            if self._close_rcvd is not None:
                why = f"{self._close_rcvd[0]} {self._close_rcvd[1]}".rstrip()
            raise TransportError(f"WebSocket {self.url} closed while writing: {why}")
        if len(data) <= MAX_FRAME:
            transport.write(build_frame(OP_BINARY, data, masks.next()))
        else:
            view = memoryview(data)
            transport.write(  # one write: the messages leave together, as one flight
                b"".join(
                    build_frame(OP_BINARY, bytes(view[i : i + MAX_FRAME]), masks.next())
                    for i in range(0, len(data), MAX_FRAME)
                )
            )
        if self._write_paused:
            waiter = self._loop.create_future()
            self._write_waiter = waiter
            await waiter
            if self._error is not None:
                raise TransportError(
                    f"WebSocket {self.url} closed while writing: {describe_error(self._error)}"
                )

    def abort(self) -> None:
        """Drop the TCP connection under the WebSocket at once, without a closing handshake."""
        if self._transport is not None:
            self._transport.abort()

    async def close(self) -> None:
        """Closing handshake (code 1000), bounded in time; then the socket is released."""
        transport = self._transport
        if transport is None or self._eof:
            return
        if not self._close_sent and not transport.is_closing():
            self._control(OP_CLOSE, CLOSE_CODE.pack(1000))
            self._close_sent = True
        # The server answers with its close frame and ends TCP; wait for that, briefly.
        waiter = self._loop.create_future()
        self._read_waiter = waiter
        try:
            async with asyncio.timeout(_CLOSE_WAIT):
                while not self._eof:
                    await waiter
                    waiter = self._loop.create_future()
                    self._read_waiter = waiter
        except TimeoutError:
            transport.abort()
        finally:
            self._read_waiter = None


async def open_websocket(url: str, *, ssl_context: ssl.SSLContext | None = None) -> WebSocketStream:
    """Open ``url`` (ws:// or wss://, with ``?address=host:port`` already in it).

    Raises:
        TransportError: DNS/TCP failure, or the proxy refused the upgrade (status and reason
            in the message, e.g. a target outside its allow-list).
    """
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise TransportError(f"cannot open WebSocket {url}: {describe_error(exc)}") from exc
    tls: ssl.SSLContext | None = None
    if uri.secure:  # the proxy's certificate is checked against this context, else the system's
        tls = ssl_context if ssl_context is not None else ssl.create_default_context()
    loop = asyncio.get_running_loop()
    try:
        transport, stream = await loop.create_connection(
            lambda: WebSocketStream(url),
            uri.host,
            uri.port,
            ssl=tls,
            server_hostname=uri.host if tls is not None else None,
        )
    except (OSError, ssl.SSLError) as exc:
        if tls is not None and _no_tls_there(exc):
            raise TransportError(
                f"cannot open WebSocket {url}: the TLS handshake with the proxy failed "
                f"({describe_error(exc)}); a ws://-only proxy (like the demo's) does not "
                "speak TLS: pass use_secure_websocket=False to connect with ws://"
            ) from exc
        raise TransportError(f"cannot open WebSocket {url}: {describe_error(exc)}") from exc
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await stream.handshake(ClientProtocol(uri, max_size=None))
    except InvalidStatus as exc:
        transport.abort()
        raise TransportError(_refusal(url, exc.response)) from exc
    except (InvalidHandshake, ValueError) as exc:
        transport.abort()
        raise TransportError(f"cannot open WebSocket {url}: {describe_error(exc)}") from exc
    except BaseException:
        transport.abort()  # cancelled (a connect deadline): leave no socket behind
        raise
    return stream


def _no_tls_there(exc: BaseException) -> bool:
    """How a TLS ClientHello sent to a plain-HTTP server ends: its answer is no TLS record
    (an HTTP 400), or it resets or closes the connection on the bytes it cannot parse."""
    if isinstance(exc, ssl.SSLError):
        return isinstance(exc, ssl.SSLEOFError) or exc.reason in (
            "WRONG_VERSION_NUMBER",
            "RECORD_LAYER_FAILURE",
            "HTTP_REQUEST",
            "UNEXPECTED_EOF_WHILE_READING",
        )
    return isinstance(exc, ConnectionResetError | ConnectionAbortedError)


def _refusal(url: str, response: Response) -> str:
    body = response.body.decode(errors="replace").strip()[:200]
    return f"WebSocket proxy refused {url}: HTTP {response.status_code} {body}".rstrip()
