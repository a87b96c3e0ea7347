"""WebSocket framing for a client (RFC 6455 section 5), with no I/O: encode, parse, close codes.

Kept apart from the asyncio protocol in websocket.py so that the byte-level rules can be read,
and tested, on their own. The parser is a mixin rather than an object the stream calls: its
loop runs on every received buffer, and a mixin adds no call or attribute hop to that path.
"""

from __future__ import annotations

import os
import struct

from .base import CLEAN_CLOSE

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = [
    "CLEAN_CLOSE",
    "CLOSE_CODE",
    "MAX_FRAME",
    "OP_BINARY",
    "OP_CLOSE",
    "READ_SIZE",
    "FrameReader",
    "build_frame",
    "masks",
]

# Bytes read per recv_into(): room for the biggest frame our proxy sends (its 256 KiB reads
# plus a header); a bigger frame is gathered in a buffer of its own.
READ_SIZE = 256 * 1024 + 16
# Larger writes go out as several binary messages (each one FIN): a byte stream does not care
# where messages end, and a proxy's per-message limit (wsproxy-style relays have one) is never
# reached by a big COPY.
MAX_FRAME = 64 * 1024

# Opcodes (RFC 6455 section 5.2).
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_FIN = 0x80
_H16, _H64 = struct.Struct("!BBH"), struct.Struct("!BBQ")
CLOSE_CODE = struct.Struct("!H")

_MASKS_PER_DRAW = 256


class _Masks:
    """Masking keys for client frames, drawn from os.urandom 1 KiB at a time.

    RFC 6455 asks for keys an attacker cannot predict; one getrandom() per 256 frames keeps
    that without a syscall on every write.
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def next(self) -> bytes:
        pos = self._pos
        if pos >= len(self._pool):
            self._pool, pos = os.urandom(4 * _MASKS_PER_DRAW), 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


masks = _Masks()


def build_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final, masked client frame (RFC 6455 5.2): header, masking key, masked payload."""
    n = len(payload)
    if n < 126:
        head = bytes((_FIN | opcode, 0x80 | n))
    elif n < 65536:
        head = _H16.pack(_FIN | opcode, 0x80 | 126, n)
    else:
        head = _H64.pack(_FIN | opcode, 0x80 | 127, n)
    return b"".join((head, mask, apply_mask(payload, mask) if n else b""))


class FrameReader:
    """Server frames in, binary payloads out: the receive side of a client WebSocket.

    The class using it fills ``_buf`` (or ``_big``, for a frame larger than ``_buf``), calls
    ``_parse()``, and supplies the three effects the rules call for: ``_control()`` sends a
    control frame, ``_deliver()`` hands payloads to readers, ``_drop()`` ends the connection.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._buf = bytearray(READ_SIZE)
        self._view = memoryview(self._buf)
        self._have = 0  # bytes in _buf not yet parsed (the start of an incomplete frame)
        self._big: bytearray | None = None  # a frame larger than _buf, being gathered
        self._chunks: list[bytes] = []  # binary payloads not yet read
        self._buffered = 0  # their total size
        self._close_rcvd: tuple[int, str] | None = None
        self._close_sent = False
        self._failure: str | None = None  # a protocol violation by the server, or a text frame
        self._fragmented = False  # inside a fragmented binary message

    def _control(self, opcode: int, payload: bytes) -> None:
        """Send a control frame now, unless the connection is already closing."""
        raise NotImplementedError

    def _deliver(self, got_data: bool) -> None:
        """Called after each parsed buffer: wake readers if payloads or an ending arrived."""
        raise NotImplementedError

    def _drop(self) -> None:
        """End the connection after a protocol violation (the close frame is already sent)."""
        raise NotImplementedError

    def _parse(self, data: memoryview, end: int) -> None:
        """Take every complete frame out of data[:end]; keep an incomplete one for later."""
        pos = 0
        got_data = False
        while self._failure is None:
            left = end - pos
            if left < 2:
                break
            b0, b1 = data[pos], data[pos + 1]
            size = b1 & 0x7F
            head = 2
            if size == 126:
                if left < 4:
                    break
                size = (data[pos + 2] << 8) | data[pos + 3]
                head = 4
            elif size == 127:
                if left < 10:
                    break
                size = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & 0x80 or b0 & 0x70:
                self._fail(1002, "the server sent a masked frame or one with RSV bits set")
                return
            stop = pos + head + size
            if stop > end:
                if head + size > READ_SIZE:  # gather a big frame in a buffer of its own
                    big = bytearray(head + size)
                    big[:left] = data[pos:end]
                    self._big, self._have = big, left
                    self._deliver(got_data)
                    return
                break
            opcode = b0 & 0x0F
            if opcode & 0x8 and (size > 125 or not b0 & _FIN):
                self._fail(1002, "the server sent a fragmented or oversized control frame")
                return
            payload = bytes(data[pos + head : stop])
            pos = stop
            if opcode == OP_BINARY or opcode == OP_CONT:
                if (opcode == OP_CONT) != self._fragmented:
                    self._fail(1002, "the server sent a continuation frame out of place")
                    return
                self._fragmented = not b0 & _FIN
                if payload:
                    self._chunks.append(payload)
                    self._buffered += size
                    got_data = True
            elif opcode == OP_PING:
                self._control(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self._on_close(payload)
                break
            elif opcode == OP_TEXT:
                self._fail(1003, "text frames are not supported; send binary")
                self._failure = f"WebSocket {self.url} sent a text message; expected binary"
                break
            elif opcode != OP_PONG:
                self._fail(1002, f"unknown opcode {opcode}")
                return
        rest = end - pos
        if rest and pos:  # the start of the next frame, to the front (copied: they overlap)
            self._buf[:rest] = bytes(data[pos:end])
        self._have = rest
        self._deliver(got_data)

    def _on_close(self, payload: bytes) -> None:
        if len(payload) >= 2:
            code = CLOSE_CODE.unpack_from(payload)[0]
            reason = payload[2:].decode("utf-8", "replace")
        else:
            code, reason = 1005, ""  # no status code given: a plain goodbye
        self._close_rcvd = (code, reason)
        if not self._close_sent:
            self._control(OP_CLOSE, payload[:2])  # echo the code, as RFC 6455 5.5.1 asks
            self._close_sent = True
        # The server closes TCP next; a read meanwhile sees what is buffered, then the end.

    def _fail(self, code: int, reason: str) -> None:
        """The server broke the protocol: tell it why and drop the connection."""
        self._failure = f"WebSocket {self.url}: {reason}"
        if not self._close_sent:
            self._control(OP_CLOSE, CLOSE_CODE.pack(code) + reason.encode()[:120])
            self._close_sent = True
        self._drop()
