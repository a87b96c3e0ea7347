"""The relay's fast path for client frames (proxy/frames.py, RelayConnection.buffer_updated):
hand-built frames from a raw socket, through the real proxy process on both event loops, and
what reaches the target byte for byte."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.utils import apply_mask

from proxy.config import Config
from proxy.frames import CONTROL, DATA, NEED_DATA, OTHER, next_frame
from proxy.relay import RelayConnection
from proxy.server import ProxyServer
from tests.proxy.conftest import ProxyProc, RawWS, Target
from tools.pgcluster import free_port

MAX = 256 * 1024  # the proxies' MAX_MESSAGE_SIZE


def frame(
    payload: bytes,
    opcode: int = 2,
    *,
    fin: bool = True,
    mask: bytes | None = None,
    masked: bool = True,
    rsv: int = 0,
) -> bytes:
    """A client frame as RFC 6455 5.2 lays it out, built without websockets' serializer."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    m = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not masked:
        return head + payload
    mask = os.urandom(4) if mask is None else mask
    return head + mask + apply_mask(payload, mask)


def payload(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(n))


# --- the pure parser ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_next_frame_finds_mask_payload_and_end(n: int) -> None:
    data = payload(n)
    raw = frame(data, mask=b"\x01\x02\x03\x04") + b"next"
    kind, start, end = next_frame(memoryview(raw), 0, None)
    assert kind == DATA
    assert raw[start - 4 : start] == b"\x01\x02\x03\x04"
    assert apply_mask(raw[start:end], raw[start - 4 : start]) == data
    assert raw[end:] == b"next"


def test_next_frame_needs_data_until_the_whole_frame_is_there() -> None:
    for n in (5, 300, 70000):
        raw = frame(payload(n))
        for cut in range(min(len(raw), 20)):
            assert next_frame(memoryview(raw[:cut]), 0, None) == (NEED_DATA, 0, 0)
        assert next_frame(memoryview(raw[:-1]), 0, None) == (NEED_DATA, 0, 0)
        assert next_frame(memoryview(raw), 0, None)[0] == DATA


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (frame(b"ping", 0x9), CONTROL),
        (frame(b"pong", 0xA), CONTROL),
        (frame(b"", 0x9), CONTROL),
        (frame(b"text", 0x1), OTHER),
        (frame(b"\x03\xe8", 0x8), OTHER),  # close
        (frame(b"frag", 0x2, fin=False), OTHER),
        (frame(b"cont", 0x0), OTHER),
        (frame(b"data", masked=False), OTHER),
        (frame(b"ping", 0x9, masked=False), OTHER),
        (frame(b"data", rsv=4), OTHER),  # RSV1: no extension was negotiated
        (frame(b"data", rsv=1), OTHER),
        (frame(b"ping", 0x9, rsv=2), OTHER),
        (frame(b"ping", 0x9, fin=False), OTHER),
        (frame(b"x", 0x3), OTHER),  # reserved opcode
        (frame(b"x" * 126, 0x9), OTHER),  # control frames carry <= 125 bytes
        (frame(b"x" * 11), OTHER),  # over max_size=10
        (frame(b"x" * 10), DATA),
        (frame(b"x" * 70000)[:14], OTHER),  # over max_size: known from the header alone
    ],
)
def test_next_frame_classifies(raw: bytes, kind: int) -> None:
    assert next_frame(memoryview(b"junk" + raw), 4, 10)[0] == kind


@given(
    st.lists(
        st.tuples(st.binary(max_size=300), st.binary(min_size=4, max_size=4), st.booleans()),
        max_size=12,
    ),
    st.data(),
)
def test_frames_split_anywhere_parse_back(
    items: list[tuple[bytes, bytes, bool]], data: st.DataObject
) -> None:
    """websockets' own masked serialization, cut at arbitrary points, walks back exactly."""
    wire = b"".join(
        Frame(Opcode.PING if ping else Opcode.BINARY, body[:125] if ping else body).serialize(
            mask=True
        )
        for body, _, ping in items
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    got: list[tuple[int, bytes]] = []
    pending = b""
    for chunk in [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]:
        buf, pos = pending + chunk, 0
        while True:
            kind, start, end = next_frame(memoryview(buf), pos, None)
            if kind == NEED_DATA:
                break
            assert kind in (DATA, CONTROL)
            got.append((kind, apply_mask(buf[start:end], buf[start - 4 : start])))
            pos = end
        pending = buf[pos:]
    assert pending == b""
    assert got == [(CONTROL, body[:125]) if ping else (DATA, body) for body, _, ping in items]


# --- through the real proxy, on both loops -----------------------------------------------


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def fp(request: pytest.FixtureRequest, tgt: Target) -> Iterator[ProxyProc]:
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{tgt.port}",
            "MAX_MESSAGE_SIZE": str(MAX),
            "PING_INTERVAL": "0",
            "EVENT_LOOP": request.param,
        }
    )
    p.wait_for(f"event loop: {request.param}")
    yield p
    p.stop()


Pair = tuple[RawWS, asyncio.StreamReader, asyncio.StreamWriter]


@pytest_asyncio.fixture
async def pair(fp: ProxyProc, tgt: Target) -> AsyncIterator[Pair]:
    """A raw client relayed to the target; one round trip first, so the relay is attached and
    the frames of the test meet the fast path."""
    status, _, ws = await RawWS.connect(fp.port, f"/v2?address=127.0.0.1:{tgt.port}")
    assert status == 101
    reader, writer = await tgt.next()
    ws.writer.write(frame(b"hello"))
    await expect(reader, b"hello")
    yield ws, reader, writer
    ws.close()
    writer.close()


async def expect(reader: asyncio.StreamReader, data: bytes) -> None:
    async with asyncio.timeout(10):
        assert await reader.readexactly(len(data)) == data


async def rest_of_stream(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(10):
        return await reader.read()


async def close_code(ws: RawWS) -> int:
    """Read frames until the proxy's close frame; return its code. Then close the socket, as
    a client does once it has the close frame (the proxy waits for that, RFC 6455 7.1.1)."""
    async with asyncio.timeout(10):
        while True:
            opcode, body = await ws.read_frame()
            if opcode == 0x8:
                ws.close()
                return int(struct.unpack("!H", body[:2])[0])


async def test_many_frames_in_one_send(pair: Pair) -> None:
    ws, reader, _ = pair
    bodies = [payload(n, n) for n in [*range(130), 1000, 65535, 65536, 70000, 0, 3]]
    ws.writer.write(b"".join(frame(b) for b in bodies))
    await expect(reader, b"".join(bodies))


@pytest.mark.parametrize("n", [125, 126, 65535, 65536, 200_000])
async def test_16_and_64_bit_lengths(pair: Pair, n: int) -> None:
    ws, reader, _ = pair
    ws.writer.write(frame(payload(n)) + frame(b"after"))
    await expect(reader, payload(n) + b"after")


async def test_masks_with_every_byte_value(pair: Pair) -> None:
    ws, reader, _ = pair
    bodies = [payload(i % 9 + i, i) for i in range(64)]  # lengths hit every mask alignment
    ws.writer.write(
        b"".join(
            frame(b, mask=bytes(range(4 * i, 4 * i + 4)))
            for b, i in zip(bodies, range(64), strict=True)
        )
    )
    await expect(reader, b"".join(bodies))


@pytest.mark.parametrize("n", [100, 300, 70000])
async def test_frame_split_at_every_header_position(pair: Pair, n: int) -> None:
    """The start of a frame rides with a whole one; once the whole one reached the target,
    the proxy holds the start, and the rest of the frame completes it."""
    ws, reader, _ = pair
    body = payload(n)
    raw = frame(body)
    for cut in [*range(1, 16), len(raw) // 2, len(raw) - 1]:
        ws.writer.write(frame(b"whole") + raw[:cut])
        await expect(reader, b"whole")
        ws.writer.write(raw[cut:])
        await expect(reader, body)


async def test_frames_sent_byte_by_byte(pair: Pair) -> None:
    ws, reader, _ = pair
    bodies = [b"", b"a", payload(130), payload(300, 1)]
    raw = b"".join(frame(b) for b in bodies)
    for i in range(len(raw)):
        ws.writer.write(raw[i : i + 1])
        await ws.writer.drain()
    await expect(reader, b"".join(bodies))


async def test_ping_between_binary_frames(pair: Pair) -> None:
    ws, reader, writer = pair
    ws.writer.write(frame(b"one,") + frame(b"are you there", 0x9) + frame(b"two,"))
    async with asyncio.timeout(10):
        assert await ws.read_frame() == (0xA, b"are you there")
    await expect(reader, b"one,two,")
    ws.writer.write(frame(b"three") + frame(b"", 0xA))  # an unsolicited pong is ignored
    await expect(reader, b"three")
    writer.write(b"still relaying")  # and the other direction too
    async with asyncio.timeout(10):
        assert await ws.read_frame() == (0x2, b"still relaying")


async def test_text_after_binary_closes_1003(pair: Pair) -> None:
    ws, reader, _ = pair
    ws.writer.write(frame(b"one,") + frame(b"two") + frame(b"SELECT 1", 0x1) + frame(b"never"))
    assert await close_code(ws) == 1003
    assert await rest_of_stream(reader) == b"one,two"


async def test_oversize_frame_closes_1009(pair: Pair) -> None:
    ws, reader, _ = pair
    ws.writer.write(frame(b"x" * MAX) + frame(b"y" * (MAX + 1)) + frame(b"never"))
    assert await close_code(ws) == 1009
    assert await rest_of_stream(reader) == b"x" * MAX


async def test_oversize_frame_header_alone_closes_1009(pair: Pair) -> None:
    ws, reader, _ = pair
    ws.writer.write(frame(b"ok") + frame(b"y" * (MAX + 1))[:14])
    assert await close_code(ws) == 1009
    assert await rest_of_stream(reader) == b"ok"


async def test_unmasked_frame_closes_1002(pair: Pair) -> None:
    ws, reader, _ = pair
    ws.writer.write(frame(b"masked") + frame(b"bare", masked=False) + frame(b"never"))
    assert await close_code(ws) == 1002
    assert await rest_of_stream(reader) == b"masked"


async def test_rsv_bit_closes_1002(pair: Pair) -> None:
    ws, reader, _ = pair
    ws.writer.write(frame(b"plain") + frame(b"deflated?", rsv=4))
    assert await close_code(ws) == 1002
    assert await rest_of_stream(reader) == b"plain"


async def test_fragmented_message_arrives_intact_and_in_order(pair: Pair) -> None:
    ws, reader, _ = pair
    ws.writer.write(
        frame(b"one,")
        + frame(b"tw", fin=False)
        + frame(b"ping", 0x9)  # control frames may sit between fragments (5.4)
        + frame(b"o", 0x0, fin=False)
        + frame(b",", 0x0)
        + frame(b"three,")
    )
    await expect(reader, b"one,two,three,")
    ws.writer.write(frame(payload(70000)) + frame(b"end"))  # websockets' path from now on
    await expect(reader, payload(70000) + b"end")


async def test_client_close_after_data(pair: Pair) -> None:
    ws, reader, _ = pair
    ws.writer.write(frame(b"last words") + frame(struct.pack("!H", 1000), 0x8))
    assert await close_code(ws) == 1000
    assert await rest_of_stream(reader) == b"last words"


# --- in process: the fast path really is the one taken -----------------------------------


async def _engagement(tgt: Target) -> None:
    """The fast path engages after the first message, survives pings and ends at text."""
    cfg = Config(
        listen_host="127.0.0.1",
        listen_port=free_port(),
        allow_addr_regex=None,
        log_conn_info=False,
        ping_interval=0,
    )
    server = ProxyServer(cfg)
    await server.start()
    try:
        status, _, ws = await RawWS.connect(cfg.listen_port, f"/?address=127.0.0.1:{tgt.port}")
        assert status == 101
        reader, writer = await tgt.next()
        ws.writer.write(frame(b"first"))
        await expect(reader, b"first")
        (relay,) = server.relays
        conn = relay.ws
        assert isinstance(conn, RelayConnection)
        ws.writer.write(frame(b"second"))
        await expect(reader, b"second")
        assert conn._fast and not conn._slow
        ws.writer.write(frame(b"third") + frame(b"p", 0x9) + frame(b"fourth"))
        await expect(reader, b"thirdfourth")
        assert conn._fast and not conn._slow
        assert relay.bytes_from_client == len(b"firstsecondthirdfourth")
        async with asyncio.timeout(10):
            assert await ws.read_frame() == (0xA, b"p")
        ws.writer.write(frame(b"text", 0x1))
        assert await close_code(ws) == 1003
        assert await rest_of_stream(reader) == b""
        assert conn._slow and not conn._fast
        writer.close()
    finally:
        await server.shutdown(1)


async def test_fast_path_engages_on_asyncio(tgt: Target) -> None:
    await _engagement(tgt)


def test_fast_path_engages_on_uvloop() -> None:
    """uvloop calls data_received, never buffer_updated, on a protocol that is also an
    asyncio.Protocol (as websockets' connection is): the fast path must be reached that way."""
    import uvloop

    async def main() -> None:
        t = Target()
        await t.start()
        try:
            await _engagement(t)
        finally:
            await t.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def test_frames_queued_before_the_relay_attached_are_not_overtaken(
    tgt: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames that arrive while the upstream connect is pending wait in websockets' queue; a
    frame arriving once the relay is attached must not jump ahead of them, even while the
    relay task is stuck writing them (the target reads nothing until the end)."""
    import proxy.relay
    import proxy.server
    import proxy.upstream

    gate, attached = asyncio.Event(), asyncio.Event()
    real_open = proxy.upstream.open_upstream  # the function proxy.server calls

    async def gated_open(*args: object) -> object:
        upstream = await real_open(*args)  # type: ignore[arg-type]
        await gate.wait()
        return upstream

    class SignallingRelay(proxy.relay.Relay):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)  # type: ignore[arg-type]
            attached.set()

    monkeypatch.setattr(proxy.server, "open_upstream", gated_open)
    monkeypatch.setattr(proxy.server, "Relay", SignallingRelay)
    cfg = Config(listen_host="127.0.0.1", listen_port=free_port(), allow_addr_regex=None)
    server = ProxyServer(cfg)
    await server.start()
    try:
        status, _, ws = await RawWS.connect(cfg.listen_port, f"/?address=127.0.0.1:{tgt.port}")
        assert status == 101
        reader, writer = await tgt.next()
        big = [payload(8 << 20, i) for i in range(4)]  # more than the sockets and buffers hold
        ws.writer.write(b"".join(frame(b) for b in big) + frame(b"read all?", 0x9))
        async with asyncio.timeout(20):  # the pong says the proxy parsed every frame before
            assert await ws.read_frame() == (0xA, b"read all?")
        gate.set()
        await attached.wait()
        ws.writer.write(frame(b"last"))
        await ws.writer.drain()
        async with asyncio.timeout(20):
            got = await reader.readexactly(4 * (8 << 20) + 4)
        assert got[-4:] == b"last"
        assert got[:-4] == b"".join(big)
        ws.close()
        writer.close()
    finally:
        await server.shutdown(1)


def test_parser_position_is_read_from_websockets() -> None:
    """The fast path may start only between frames: _at_frame_start must tell them apart."""
    from websockets.server import ServerProtocol

    from proxy.relay import _at_frame_start

    p = ServerProtocol()
    assert not _at_frame_start(p.parser)  # still reading the HTTP request
    p.receive_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert _at_frame_start(p.parser)
    raw = frame(b"hello")
    for i in range(1, len(raw)):
        p.receive_data(raw[i - 1 : i])
        assert not _at_frame_start(p.parser), i
    p.receive_data(raw[-1:])
    assert _at_frame_start(p.parser)
    assert [e.data for e in p.events_received() if isinstance(e, Frame)] == [b"hello"]


def test_event_loop_setting() -> None:
    from proxy.__main__ import loop_factory
    from proxy.config import ConfigError, load

    assert load([], {}).event_loop == "auto"
    assert load([], {"EVENT_LOOP": "AsyncIO"}).event_loop == "asyncio"
    assert load(["--event-loop", "uvloop"], {"EVENT_LOOP": "asyncio"}).event_loop == "uvloop"
    with pytest.raises(ConfigError, match="EVENT_LOOP"):
        load([], {"EVENT_LOOP": "trio"})
    assert loop_factory("asyncio")[1] == "asyncio"
    assert loop_factory("auto")[1].startswith("uvloop")  # installed with the proxy extra
    new_loop, _ = loop_factory("uvloop")
    loop = new_loop()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
