"""Framing of backend input: a 1-byte tag and a 4-byte length, over arbitrary chunks."""

from __future__ import annotations

from struct import Struct

from ..errors import ProtocolError

__all__ = ["MAX_MESSAGE", "ReceiveBuffer"]

_HEADER = Struct("!cI")
# The server never sends a message this large (1 GB is its own limit on field values).
MAX_MESSAGE = (1 << 30) + 1024


class ReceiveBuffer:
    """Accumulates bytes and cuts them into (tag, body) pairs.

    ``next_message()`` returns None while a message is incomplete: "need more" is a value.
    """

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            # Compact only when new data arrives, so a burst of parsed messages costs one move.
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def __len__(self) -> int:
        return len(self._buf) - self._pos

    def next_message(self) -> tuple[bytes, bytes] | None:
        """Pop one message.

        Returns:
            ``(tag, body)`` without the length word, or None if more bytes are needed.

        Raises:
            ProtocolError: the length word is impossible (< 4 or absurdly large).
        """
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 5:
            return None
        tag, length = _HEADER.unpack_from(buf, pos)
        if length < 4 or length > MAX_MESSAGE:
            raise ProtocolError(f"invalid length {length} for message type {tag!r}")
        end = pos + 1 + length
        if len(buf) < end:
            return None
        self._pos = end
        return tag, bytes(buf[pos + 5 : end])

    def next_byte(self) -> bytes | None:
        """Pop a single unframed byte (the answer to SSLRequest / GSSENCRequest)."""
        if len(self._buf) - self._pos < 1:
            return None
        b = bytes(self._buf[self._pos : self._pos + 1])
        self._pos += 1
        return b
