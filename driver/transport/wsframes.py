"""WebSocket framing for a client (RFC 6455 section 5), with no I/O: encode, parse, close codes.

Kept apart from the asyncio protocol in websocket.py so that the byte-level rules can be read,
and tested, on their own. The parser is a mixin rather than an object the stream calls: its
loop runs on every received buffer, and a mixin adds no call or attribute hop to that path.
"""

from __future__ import annotations

import os
import struct

from .base import CLEAN_CLOSE, ChunkQueue

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = [
    "CLEAN_CLOSE",
    "CLOSE_CODE",
    "MAX_FRAME",
    "MAX_RECEIVE_FRAME",
    "MAX_UNANSWERED_PINGS",
    "OP_BINARY",
    "OP_CLOSE",
    "PONG_BACKLOG",
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

# The largest frame the driver accepts. Postgres' own limit on a message is about 1 GiB, and
# relays cut the stream into frames of what one read returned (ours: 256 KiB), so this leaves
# room for any honest proxy while a header claiming more is refused before anything is
# allocated for it (close code 1009, "message too big").
MAX_RECEIVE_FRAME = 64 * 1024 * 1024
# Pongs are not queued once this much is waiting to be sent: a peer that pings and never reads
# must not grow the driver. After _MAX_UNANSWERED such pings the connection is closed (1008).
PONG_BACKLOG = 256 * 1024
MAX_UNANSWERED_PINGS = 64

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


class FrameReader(ChunkQueue):
    """Server frames in, binary payloads out: the receive side of a client WebSocket.

    The class using it fills ``_buf`` and calls ``_parse()``; a frame larger than ``_buf`` is
    gathered with ``_gather()`` into ``_big``, which grows with the bytes that arrived (never
    to a size a header merely claims). It supplies the effects the rules call for:
    ``_control()`` sends a control frame, ``_pong_room()`` says whether a pong may be queued,
    ``_deliver()`` hands payloads to readers, ``_drop()`` ends the connection.
    """

    def __init__(self, url: str) -> None:
        super().__init__()  # the read side: binary payloads waiting for read()
        self.url = url
        self._buf = bytearray(READ_SIZE)
        self._view = memoryview(self._buf)
        self._have = 0  # bytes in _buf not yet parsed (the start of an incomplete frame)
        self._big: bytearray | None = None  # a frame larger than _buf, as much as arrived
        self._big_size = 0  # the whole size of that frame, header included
        self._unanswered = 0  # pings not answered because our pongs were not being read
        self._close_rcvd: tuple[int, str] | None = None
        self._close_sent = False
        self._failure: str | None = None  # a protocol violation by the server, or a text frame
        self._fragmented = False  # inside a fragmented binary message

    def _control(self, opcode: int, payload: bytes) -> None:
        """Send a control frame now, unless the connection is already closing."""
        raise NotImplementedError

    def _pong_room(self) -> bool:
        """Whether a pong may be queued now (what waits to be sent is below PONG_BACKLOG);
        a reader with no send buffer of its own always has room."""
        return True

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
            if size > MAX_RECEIVE_FRAME:
                self._fail(1009, f"a frame of {size} bytes is over the limit")
                return
            stop = pos + head + size
            if stop > end:
                if head + size > READ_SIZE:  # gather a big frame as its bytes arrive
                    self._big = bytearray(data[pos:end])
                    self._big_size = head + size
                    self._have = 0
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
                    self._received(payload)
                    got_data = True
            elif opcode == OP_PING:
                if self._pong_room():
                    self._unanswered = 0
                    self._control(OP_PONG, payload)
                else:
                    self._unanswered += 1
                    if self._unanswered > MAX_UNANSWERED_PINGS:
                        self._fail(1008, "pings keep coming while our pongs are not read")
                        return
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

    def _read_buffer(self) -> memoryview:
        """Where the next bytes from the socket go (asyncio's ``get_buffer``)."""
        if self._big is not None:  # a big frame: read into _buf, then appended by _gather
            return self._view[: min(READ_SIZE, self._big_size - len(self._big))]
        return self._view[self._have :]

    def _filled(self, nbytes: int) -> None:
        """``nbytes`` were written into ``_read_buffer()``: parse what is complete."""
        if self._big is not None:
            self._gather(nbytes)
            return
        self._have += nbytes
        self._parse(self._view, self._have)

    def _gather(self, nbytes: int) -> None:
        """``nbytes`` more of a big frame arrived in ``_buf``: append them; parse the frame
        (and whatever followed it in the same read) once it is whole."""
        big = self._big
        assert big is not None
        big += self._view[:nbytes]
        if len(big) < self._big_size:
            return
        self._big = None
        rest = len(big) - self._big_size
        frame = memoryview(big)
        self._parse(frame, self._big_size)  # leaves no remainder: the frame is whole
        if rest and self._failure is None:
            self._buf[:rest] = big[self._big_size :]
            self._parse(self._view, rest)

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
