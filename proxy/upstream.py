"""The TCP side of a relay: an asyncio protocol with bounded buffers in both directions."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Sequence

# Pause reading from Postgres once this much is waiting for the WebSocket side.
READ_HIGH_WATER = 1 << 20
# Larger than asyncio's 64 KiB default so bulk client writes (COPY) stream without stalls.
WRITE_HIGH_WATER = 1 << 20
# Reads are handed to the WebSocket side merged up to this size: fewer, larger frames.
MERGE_LIMIT = 256 * 1024


class UpstreamError(Exception):
    """Connecting to, reading from or writing to the target failed; the relay closes 1011."""


class Upstream(asyncio.Protocol):
    """Bytes from the target wait here until the relay takes them; never more than a bound.

    `read()` returns chunks as the kernel delivered them (no copy when one is waiting), and
    reading from the socket pauses while READ_HIGH_WATER bytes wait, so a slow WebSocket
    client makes Postgres wait instead of growing memory.
    """

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._reader: asyncio.Future[None] | None = None
        self._drainer: asyncio.Future[None] | None = None
        self._read_paused = False
        self._write_paused = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _keepalive(sock)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= READ_HIGH_WATER and not self._read_paused and self.transport:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return False  # let the transport close: Postgres never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        if exc is not None:
            self._exc = exc
        self._wake_reader()
        if self._drainer is not None and not self._drainer.done():
            self._drainer.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drainer is not None and not self._drainer.done():
            self._drainer.set_result(None)

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    async def read(self) -> bytes:
        """Wait for bytes from the target.

        Returns:
            The next bytes, or b"" once the target closed cleanly.

        Raises:
            UpstreamError: the connection broke (reset, timeout).
        """
        while not self._chunks:
            if self._exc is not None:
                raise UpstreamError(str(self._exc) or type(self._exc).__name__)
            if self._eof:
                return b""
            self._reader = asyncio.get_running_loop().create_future()
            await self._reader
        first = self._chunks.popleft()
        if self._chunks and len(first) < MERGE_LIMIT:
            parts = [first]
            total = len(first)
            while self._chunks and total + len(self._chunks[0]) <= MERGE_LIMIT:
                part = self._chunks.popleft()
                parts.append(part)
                total += len(part)
            first = b"".join(parts)
        self._size -= len(first)
        if self._read_paused and self._size < READ_HIGH_WATER // 4 and self.transport:
            self._read_paused = False
            self.transport.resume_reading()
        return first

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
