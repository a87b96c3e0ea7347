"""Plain TCP (and Unix-socket) streams on an asyncio Protocol, with TCP_NODELAY."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from ..errors import TransportError
from .base import ChunkQueue, describe_error

__all__ = ["TCPStream", "open_tcp"]

# Bytes per recv_into(). asyncio's plain recv() asks for 256 KiB per call, which glibc serves
# with mmap + mremap + munmap: ~16 µs of syscalls and page faults per small reply, here.
_READ_SIZE = 64 * 1024
_CLOSE_WAIT = 1.0  # seconds close() waits for the kernel to report the socket gone


class TCPStream(ChunkQueue, asyncio.BufferedProtocol):
    """A Stream straight on asyncio's transport callbacks.

    Leaner than StreamReader/StreamWriter on the per-query path: the socket is read into one
    kept buffer, ``read()`` takes whatever arrived as is, and ``write()`` only waits when the
    transport asks to pause.
    """

    def __init__(self) -> None:
        super().__init__()  # the read side: chunks waiting for read()
        self.peer = ""
        self._transport: asyncio.Transport | None = None
        self._eof = False
        self._error: BaseException | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        # close() waits on its own future: taking _read_waiter would strand a task in read().
        self._closed_waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()  # made by the loop's protocol factory
        self._view = memoryview(bytearray(_READ_SIZE))

    # ---- asyncio.Protocol callbacks ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        self._received(data)
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake_reader()
        for waiter in (self._write_waiter, self._closed_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._write_waiter = self._closed_waiter = None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- the read side's hooks (ChunkQueue) ------------------------------------------

    def _pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def _at_end(self) -> bytes | None:
        if not self._eof:
            return None
        if self._error is not None:
            raise TransportError(f"reading from {self.peer} failed: {describe_error(self._error)}")
        return b""

    # ---- Stream (read() is ChunkQueue's) ---------------------------------------------

    async def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise TransportError(f"writing to {self.peer} failed: the connection is closed")
        transport.write(data)
        if self._write_paused:
            waiter = asyncio.get_running_loop().create_future()
            self._write_waiter = waiter
            await waiter
            if self._error is not None:
                raise TransportError(
                    f"writing to {self.peer} failed: {describe_error(self._error)}"
                )

    def abort(self) -> None:
        """Drop the connection at once (for callers that cannot await)."""
        if self._transport is not None:
            self._transport.abort()

    async def close(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.close()
        if not self._eof:
            # Wait (briefly) for connection_lost so the socket is really released.
            waiter = asyncio.get_running_loop().create_future()
            self._closed_waiter = waiter
            try:
                async with asyncio.timeout(_CLOSE_WAIT):
                    await waiter
            except TimeoutError:
                transport.abort()


async def open_tcp(host: str, port: int) -> TCPStream:
    """Connect to host:port, or to the Unix socket ``{host}/.s.PGSQL.{port}`` if host is a path.

    Raises:
        TransportError: DNS or TCP failure, with the target in the message.
    """
    loop = asyncio.get_running_loop()
    try:
        if host.startswith("/"):
            path = f"{host}/.s.PGSQL.{port}"
            _, stream = await loop.create_unix_connection(TCPStream, path)
            stream.peer = path
            return stream
        transport, stream = await loop.create_connection(TCPStream, host, port)
    except OSError as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {describe_error(exc)}") from exc
    stream.peer = f"{host}:{port}"
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        # Small request/response messages must not wait for Nagle (about 40 ms per stall).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return stream
