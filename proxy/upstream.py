"""The TCP side of a relay: an asyncio protocol with bounded buffers in both directions."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import cast

# Larger than asyncio's 64 KiB default so bulk client writes (COPY) stream without stalls.
WRITE_HIGH_WATER = 1 << 20
# One recv_into() per read event, into a buffer each connection keeps (asyncio's recv() size;
# 1 and 4 MiB measured no faster in bench/proxy_bench.py and would cost memory per relay).
READ_SIZE = 256 * 1024
# Free bytes in front of every chunk, so the consumer can put a WebSocket frame header (at most
# 10 bytes from a server) right before the payload and write both without concatenating.
HEAD_ROOM = 10


class UpstreamError(Exception):
    """Connecting to, reading from or writing to the target failed; the relay closes 1011."""


class Upstream(asyncio.BufferedProtocol):
    """The target's socket. Bytes from it go straight to `on_data` inside buffer_updated, with
    no task switch in between (that hop is most of a relay's added latency); the consumer
    applies backpressure with pause_reading()/resume_reading().

    The socket is read with recv_into() into one reusable buffer: `on_data(buf, n)` finds the
    payload at buf[HEAD_ROOM:HEAD_ROOM + n] and may write into buf[:HEAD_ROOM]. The buffer is
    only lent for the call; a consumer that hands it to something keeping a reference (a
    transport that queues instead of copying) must call `replace_buffer()` before returning.

    Bytes that arrive before a consumer attaches (a target that speaks first) wait in a list.
    """

    def __init__(self) -> None:
        self._early: list[bytes] = []
        self._on_data: Callable[[memoryview, int], None] | None = None
        self.replace_buffer()
        self._drainer: asyncio.Future[None] | None = None
        self._write_paused = False
        self._exc: Exception | None = None
        self.transport: asyncio.Transport | None = None
        self.on_writable: Callable[[], None] | None = None  # after the write buffer drains
        # Resolves when the connection ends: None for a clean close, else the error.
        self.finished: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def replace_buffer(self) -> None:
        """Read into a fresh buffer from now on (the old one stays with whoever holds it)."""
        self._buf = memoryview(bytearray(HEAD_ROOM + READ_SIZE))
        self._into = self._buf[HEAD_ROOM:]

    def attach(self, on_data: Callable[[memoryview, int], None]) -> None:
        """Start delivering bytes to `on_data`, first those that arrived early."""
        self._on_data = on_data
        early, self._early = self._early, []
        for data in early:
            for i in range(0, len(data), READ_SIZE):
                n = len(data[i : i + READ_SIZE])
                self._into[:n] = data[i : i + READ_SIZE]
                on_data(self._buf, n)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports have the methods, not the base class.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _keepalive(sock)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._into

    def buffer_updated(self, nbytes: int) -> None:
        if self._on_data is None:
            self._early.append(bytes(self._into[:nbytes]))
        else:
            self._on_data(self._buf, nbytes)

    def eof_received(self) -> bool:
        return False  # close the transport: Postgres never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._exc = exc
        if not self.finished.done():
            self.finished.set_result(exc)
        if self._drainer is not None and not self._drainer.done():
            self._drainer.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drainer is not None and not self._drainer.done():
            self._drainer.set_result(None)
        if self.on_writable is not None:
            self.on_writable()

    def pause_reading(self) -> None:
        if self.transport is not None and self.transport.is_reading():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    async def write(self, data: bytes) -> None:
        """Send bytes to the target, waiting while its socket buffer is over the high-water mark.

        Raises:
            UpstreamError: the connection is gone.
        """
        if self.transport is None or self.transport.is_closing():
            raise UpstreamError(str(self._exc) if self._exc else "connection to target closed")
        self.transport.write(data)
        if self._write_paused:
            self._drainer = asyncio.get_running_loop().create_future()
            await self._drainer
            if self._exc is not None:
                raise UpstreamError(str(self._exc))

    def write_nowait(self, data: bytes) -> bool:
        """Queue bytes for the target without waiting.

        Returns:
            False when the caller should stop producing until `on_writable` is called (the
            buffer is over its high-water mark). Bytes for a closed target are dropped: the
            relay is ending anyway and learns why from `finished`.
        """
        if self.transport is None or self.transport.is_closing():
            return True
        self.transport.write(data)
        return not self._write_paused

    def close(self) -> None:
        """Close after flushing what the client already sent (transport.close flushes)."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _keepalive(sock: socket.socket) -> None:
    """Detect a dead target within minutes, not the kernel's default two hours."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for opt, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)


async def open_upstream(ips: Sequence[str], port: int, within: float) -> Upstream:
    """Connect to the first IP that answers; the IPs are the ones the allow-check approved.

    Raises:
        UpstreamError: no address accepted the connection within `within` seconds each.
    """
    loop = asyncio.get_running_loop()
    errors: list[str] = []
    for ip in ips:
        try:
            async with asyncio.timeout(within or None):
                _, proto = await loop.create_connection(Upstream, host=ip, port=port)
            return proto
        except TimeoutError:
            errors.append(f"{ip}: connect timed out")
        except OSError as exc:
            errors.append(f"{ip}: {exc.strerror or exc}")
    raise UpstreamError("; ".join(errors) or "no address to connect to")
