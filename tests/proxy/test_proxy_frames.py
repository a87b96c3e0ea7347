"""The relay's hand-built frame headers are byte-for-byte what websockets would send."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from proxy.relay import frame_start
from proxy.upstream import HEAD_ROOM


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 300_000])
def test_frame_header_matches_websockets(n: int) -> None:
    payload = bytes(range(256)) * (n // 256) + bytes(n % 256)
    buf = bytearray(HEAD_ROOM + n)
    buf[HEAD_ROOM:] = payload
    start = frame_start(memoryview(buf), n)
    expected = Frame(Opcode.BINARY, payload).serialize(mask=False)
    assert bytes(buf[start:]) == expected
