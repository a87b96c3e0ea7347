"""Stream: the byte-stream interface every transport offers to the connection."""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["CLEAN_CLOSE", "ChunkQueue", "Stream", "describe_error"]

# WebSocket close codes after which the end of the stream is an ordinary EOF: normal closure,
# going away, and no status code at all (RFC 6455 section 7.4.1; a browser reports a close
# frame without a status as 1005). Here, where every WebSocket transport can import it: the
# browser one cannot import wsframes, which needs `websockets`.
CLEAN_CLOSE = frozenset({1000, 1001, 1005})


def describe_error(exc: BaseException) -> str:
    """``str(exc)`` for a message, or the exception's type name when that is empty (a bare
    ``ConnectionResetError()`` would otherwise end a message in ": ")."""
    return str(exc) or type(exc).__name__


class Stream(Protocol):
    """A bidirectional byte stream.

    ``read()`` returns at least one byte, or ``b""`` at end of stream. Transport failures raise
    ``driver.errors.TransportError``; the built-in ``TimeoutError`` passes through unchanged.
    """

    async def read(self, max_bytes: int) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    def abort(self) -> None:
        """Drop the stream at once, without any closing handshake (for callers that cannot
        await, like ``Connection.terminate()``)."""


class ChunkQueue:
    """The read side the socket transports share: received chunks wait here for ``read()``.

    A transport appends what arrived with ``_received()`` (TCP: each read; WebSocket: each
    binary payload), calls ``_wake_reader()`` when a reader should look, and supplies two
    hooks: ``_at_end()`` says what an empty queue means (keep waiting, EOF or an error) and
    ``_resume_reading()`` undoes the back-pressure that ``_received()`` applied through
    ``_pause_reading()`` once more than HIGH_WATER bytes waited unread.
    """

    #: Stop reading from the socket when this much waits unread (back-pressure).
    HIGH_WATER = 1 << 20

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._offset = 0  # bytes of _chunks[0] already returned by read()
        self._buffered = 0  # bytes waiting, for back-pressure
        self._read_paused = False
        self._read_waiter: asyncio.Future[None] | None = None

    def _received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > self.HIGH_WATER and not self._read_paused:
            self._read_paused = True
            self._pause_reading()

    def _pause_reading(self) -> None:
        """Stop taking bytes from the socket until ``_resume_reading()``."""

    def _resume_reading(self) -> None:
        """Take bytes from the socket again."""

    def _at_end(self) -> bytes | None:
        """With nothing queued: None to wait for more, ``b""`` for EOF, or raise the error
        that ended the stream."""
        raise NotImplementedError

    def _wake_reader(self) -> None:
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what arrived, waiting for something if nothing has.

        Returns:
            At least one byte, or ``b""`` at the end of the stream.

        Raises:
            TransportError: the stream failed (once everything received was read).
        """
        chunks = self._chunks
        while not chunks:
            at_end = self._at_end()
            if at_end is not None:
                return at_end
            waiter = asyncio.get_running_loop().create_future()
            self._read_waiter = waiter
            try:
                await waiter
            finally:
                self._read_waiter = None
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        start = self._offset
        if start or len(data) > max_bytes:
            # A read smaller than what arrived: keep the chunk and an offset into it, so a
            # 256 KiB arrival read 64 KiB at a time is copied once, not once per read.
            end = start + max_bytes
            if end < len(data):
                chunks.append(data)
                self._offset = end
            else:
                self._offset = 0
            data = data[start:end]
        self._buffered = len(chunks[0]) - self._offset if chunks else 0
        if self._read_paused:
            self._read_paused = False
            self._resume_reading()
        return data
