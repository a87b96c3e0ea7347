"""Plain TCP (and Unix-socket) streams on asyncio, with TCP_NODELAY."""

from __future__ import annotations

import asyncio
import socket

from ..errors import TransportError

__all__ = ["TCPStream", "open_tcp"]


class TCPStream:
    """A Stream over asyncio's StreamReader/StreamWriter."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str):
        self._reader = reader
        self._writer = writer
        self.peer = peer

    async def read(self, max_bytes: int) -> bytes:
        try:
            return await self._reader.read(max_bytes)
        except OSError as exc:
            raise TransportError(f"reading from {self.peer} failed: {exc}") from exc

    async def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            # RuntimeError: asyncio refuses to write to a transport it already closed.
            raise TransportError(f"writing to {self.peer} failed: {exc}") from exc

    def abort(self) -> None:
        """Drop the connection at once (for callers that cannot await)."""
        self._writer.transport.abort()

    async def close(self) -> None:
        writer = self._writer
        if writer.is_closing():
            return
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the peer was already gone; closing is all we wanted


async def open_tcp(host: str, port: int) -> TCPStream:
    """Connect to host:port, or to the Unix socket ``{host}/.s.PGSQL.{port}`` if host is a path.

    Raises:
        TransportError: DNS or TCP failure, with the target in the message.
    """
    try:
        if host.startswith("/"):
            path = f"{host}/.s.PGSQL.{port}"
            reader, writer = await asyncio.open_unix_connection(path)
            return TCPStream(reader, writer, path)
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    except OSError as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        # Small request/response messages must not wait for Nagle (about 40 ms per stall).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return TCPStream(reader, writer, f"{host}:{port}")
