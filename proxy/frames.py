"""Client frames read straight from the socket buffer: the relay's fast path (RFC 6455 5.2)."""

from __future__ import annotations

import struct

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = ["CONTROL", "DATA", "NEED_DATA", "OTHER", "apply_mask", "next_frame"]

# What next_frame found at the start of the buffer.
DATA = 0  # a whole masked final binary frame: relay its payload
CONTROL = 1  # a whole masked ping or pong: websockets answers it
NEED_DATA = 2  # the start of a frame that may be either of those: read more
OTHER = 3  # anything else: websockets' parser takes over from this frame on

_BINARY = 0x82  # FIN, RSV1-3 clear, opcode 2
_PING, _PONG = 0x89, 0x8A  # FIN, RSV clear, opcodes 9 and 10
_MASK = 0x80
_U16, _U64 = struct.Struct("!H"), struct.Struct("!Q")


def next_frame(buf: memoryview, pos: int, max_size: int | None) -> tuple[int, int, int]:
    """Classify the client frame that starts at buf[pos].

    Only frames websockets would accept exactly as they are get DATA or CONTROL: FIN set, no
    RSV bit (no extension is negotiated), the mask bit set (5.3: clients must mask), and for
    DATA a payload within `max_size` (websockets checks every frame's length against it).

    Returns:
        (kind, payload_start, frame_end). For DATA and CONTROL the 4-byte mask is at
        buf[payload_start - 4:payload_start], the payload at buf[payload_start:frame_end], and
        the next frame starts at frame_end. For NEED_DATA and OTHER the offsets are 0: keep
        buf[pos:] and call again with more bytes, or hand buf[pos:] to websockets.
    """
    avail = len(buf) - pos
    if avail < 2:
        return NEED_DATA, 0, 0
    b0, b1 = buf[pos], buf[pos + 1]
    if not b1 & _MASK:
        return OTHER, 0, 0
    n = b1 & 0x7F
    if b0 == _BINARY:
        kind = DATA
        if n < 126:
            head = 6
        elif n == 126:
            if avail < 4:
                return NEED_DATA, 0, 0
            n, head = _U16.unpack_from(buf, pos + 2)[0], 8
        else:
            if avail < 10:
                return NEED_DATA, 0, 0
            n, head = _U64.unpack_from(buf, pos + 2)[0], 14
        if max_size is not None and n > max_size:
            return OTHER, 0, 0
    elif (b0 == _PING or b0 == _PONG) and n < 126:  # control payloads are <= 125 (5.5)
        if max_size is not None and n > max_size:  # websockets refuses it from the header
            return OTHER, 0, 0
        kind, head = CONTROL, 6
    else:
        return OTHER, 0, 0
    end = pos + head + n
    if end > len(buf):
        return NEED_DATA, 0, 0
    return kind, pos + head, end
