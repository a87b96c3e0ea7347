"""Stream: the byte-stream interface every transport offers to the connection."""

from __future__ import annotations

from typing import Protocol

__all__ = ["CLEAN_CLOSE", "Stream"]

# WebSocket close codes after which the end of the stream is an ordinary EOF: normal closure,
# going away, and no status code at all (RFC 6455 section 7.4.1; a browser reports a close
# frame without a status as 1005). Here, where every WebSocket transport can import it: the
# browser one cannot import wsframes, which needs `websockets`.
CLEAN_CLOSE = frozenset({1000, 1001, 1005})


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
