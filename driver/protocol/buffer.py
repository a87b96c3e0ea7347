"""Framing of backend input: a 1-byte tag and a 4-byte length, over arbitrary chunks."""

from __future__ import annotations

from struct import Struct

from ..errors import ProtocolError

__all__ = ["MAX_MESSAGE", "ReceiveBuffer"]

_HEADER = Struct("!cI")
_LEN = Struct("!I")
_H = Struct("!H")
_i = Struct("!i")
_DATA_ROW_HEADER = Struct("!IH")
# The server never sends a message this large (1 GB is its own limit on field values).
MAX_MESSAGE = (1 << 30) + 1024
# Leftovers above this size grow in place (bytearray) instead of being re-concatenated,
# so a huge message arriving in many chunks costs linear, not quadratic, copying.
_GROW_IN_PLACE = 1 << 16


class ReceiveBuffer:
    """Accumulates bytes and cuts them into (tag, body) pairs.

    ``next_message()`` returns None while a message is incomplete: "need more" is a value.
    The common case, a whole response in one read, keeps the received ``bytes`` as they are
    and slices messages (and DataRow values) straight out of them.
    """

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf: bytes | bytearray = b""
        self._pos = 0

    def feed(self, data: bytes) -> None:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            self._buf, self._pos = bytes(data), 0
        elif isinstance(buf, bytearray):
            buf += data
        elif len(buf) - pos + len(data) > _GROW_IN_PLACE:
            grown = bytearray(buf[pos:])
            grown += data
            self._buf, self._pos = grown, 0
        else:
            self._buf, self._pos = buf[pos:] + data, 0

    def __len__(self) -> int:
        return len(self._buf) - self._pos

    def _complete(self) -> int:
        """End offset of the message at the head, or 0 if it is not all here yet."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 5:
            return 0
        tag, length = _HEADER.unpack_from(buf, pos)
        if length < 4 or length > MAX_MESSAGE:
            raise ProtocolError(f"invalid length {length} for message type {tag!r}")
        end = pos + 1 + length
        if len(buf) < end:
            return 0
        if isinstance(buf, bytearray):  # settle back to immutable bytes for slicing
            self._buf, self._pos = bytes(buf[pos:]), 0
            end -= pos
        return int(end)

    def next_message(self) -> tuple[bytes, bytes] | None:
        """Pop one message.

        Returns:
            ``(tag, body)`` without the length word, or None if more bytes are needed.

        Raises:
            ProtocolError: the length word is impossible (< 4 or absurdly large).
        """
        buf, pos = self._buf, self._pos
        if type(buf) is bytes and len(buf) - pos >= 5:  # the common case, inline
            tag, length = _HEADER.unpack_from(buf, pos)
            end = pos + 1 + length
            if 4 <= length <= MAX_MESSAGE and end <= len(buf):
                self._pos = end
                return tag, buf[pos + 5 : end]  # slices of bytes are bytes already
        end = self._complete()
        if not end:
            return None
        buf, pos = self._buf, self._pos
        self._pos = end
        return bytes(buf[pos : pos + 1]), bytes(buf[pos + 5 : end])

    def read_data_rows(self, rows: list[tuple[bytes | None, ...]]) -> None:
        """Pop every complete DataRow at the head, appending each one's values to ``rows``.

        This is the per-row hot path: one call for a whole batch, values sliced from the
        input once, no intermediate body copy and no message object. It stops at the first
        message that is not a complete DataRow.

        Raises:
            ProtocolError: a DataRow is malformed.
        """
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 7 or buf[pos] != 68:  # 68 == ord("D"): most calls stop right here
            return
        if type(buf) is not bytes:
            if not self._complete():
                return
            buf, pos = self._buf, self._pos
        size_buf = len(buf)
        unpack = _i.unpack_from
        header = _DATA_ROW_HEADER.unpack_from
        add_row = rows.append
        try:
            while size_buf - pos >= 7 and buf[pos] == 68:  # 68 == ord("D")
                length, n = header(buf, pos + 1)
                end = pos + 1 + length
                if end > size_buf:
                    if length > MAX_MESSAGE:
                        raise ProtocolError(f"invalid length {length} for a DataRow")
                    break
                values: list[bytes | None] = [None] * n  # NULLs are left as they are
                p = pos + 7
                for k in range(n):
                    (size,) = unpack(buf, p)
                    p += 4
                    if size >= 0:
                        values[k] = buf[p : p + size]  # type: ignore[assignment]
                        p += size
                if p != end:
                    raise ProtocolError("DataRow length does not match its values")
                add_row(tuple(values))
                pos = end
        except ProtocolError:
            raise
        except Exception as exc:  # struct.error when a length word runs off the end
            raise ProtocolError(f"malformed DataRow: {exc}") from exc
        finally:
            self._pos = pos

    def next_byte(self) -> bytes | None:
        """Pop a single unframed byte (the answer to SSLRequest / GSSENCRequest)."""
        if len(self._buf) - self._pos < 1:
            return None
        b = bytes(self._buf[self._pos : self._pos + 1])
        self._pos += 1
        return b
