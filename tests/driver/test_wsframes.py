"""The WebSocket frame rules on their own: no socket, no event loop."""

from __future__ import annotations

import pytest

from driver.transport.wsframes import OP_BINARY, OP_CLOSE, FrameReader, build_frame


class Recorder(FrameReader):
    """A FrameReader whose effects are recorded instead of performed."""

    def __init__(self) -> None:
        super().__init__("ws://test")
        self.sent: list[tuple[int, bytes]] = []
        self.delivered: list[bool] = []
        self.dropped = False

    def _control(self, opcode: int, payload: bytes) -> None:
        self.sent.append((opcode, payload))

    def _deliver(self, got_data: bool) -> None:
        self.delivered.append(got_data)

    def _drop(self) -> None:
        self.dropped = True

    def feed(self, data: bytes) -> None:
        self._buf[self._have : self._have + len(data)] = data
        self._have += len(data)
        self._parse(self._view, self._have)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    b0, n = (0x80 if fin else 0) | opcode, len(payload)
    head = bytes((b0, n)) if n < 126 else bytes((b0, 126)) + n.to_bytes(2, "big")
    return head + payload


def test_build_frame_masks_the_payload() -> None:
    frame = build_frame(OP_BINARY, b"abcd", b"\x01\x02\x03\x04")
    assert frame == bytes((0x82, 0x84)) + b"\x01\x02\x03\x04" + bytes((0x60, 0x60, 0x60, 0x60))
    assert build_frame(OP_BINARY, b"x" * 200, b"\0" * 4)[1:4] == bytes((0xFE, 0, 200))


def test_fragments_split_anywhere_come_out_in_order() -> None:
    r = Recorder()
    data = server_frame(0x2, b"hello ", fin=False) + server_frame(0x0, b"x" * 300)
    for i in range(len(data)):  # one byte at a time: every incomplete header and payload
        r.feed(data[i : i + 1])
    assert b"".join(r._chunks) == b"hello " + b"x" * 300
    assert r._buffered == 306 and r._have == 0 and r._failure is None


def test_ping_is_answered_and_close_is_echoed() -> None:
    r = Recorder()
    r.feed(server_frame(0x9, b"hi") + server_frame(0x8, b"\x03\xe8bye"))
    assert r.sent == [(0xA, b"hi"), (OP_CLOSE, b"\x03\xe8")]
    assert r._close_rcvd == (1000, "bye") and r._close_sent


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (bytes((0x82, 0x81)) + b"\0\0\0\0x", "masked"),
        (bytes((0x80, 1)) + b"x", "continuation"),
        (server_frame(0x9, b"p", fin=False), "control frame"),
        (server_frame(0x3, b""), "unknown opcode"),
        (server_frame(0x1, b"text"), "text message"),
    ],
)
def test_protocol_violations_close_with_a_reason(data: bytes, why: str) -> None:
    r = Recorder()
    r.feed(data)
    assert r._failure is not None and why in r._failure
    assert r.dropped and r.sent[-1][0] == OP_CLOSE and r._close_sent
    assert not r._chunks
