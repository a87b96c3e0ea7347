"""Stream: the byte-stream interface every transport offers to the connection."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Stream"]


class Stream(Protocol):
    """A bidirectional byte stream.

    ``read()`` returns at least one byte, or ``b""`` at end of stream. Transport failures raise
    ``driver.errors.TransportError``; the built-in ``TimeoutError`` passes through unchanged.
    """

    async def read(self, max_bytes: int) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...
