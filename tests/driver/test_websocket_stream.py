"""WebSocketStream's own frame path: fragments, pings, text frames, big bursts and closes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

import driver
from driver.transport.websocket import MAX_FRAME, WebSocketStream, build_frame, open_websocket

Handler = Callable[[ServerConnection], Awaitable[None]]


@pytest.fixture
async def ws_server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a loopback WebSocket server running the given handler; returns its URL."""
    servers = []

    async def start(handler: Handler) -> str:
        server = await serve(handler, "127.0.0.1", 0, compression=None, max_size=None)
        servers.append(server)
        port = next(iter(server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/v2?address=db:5432"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_exactly(stream: WebSocketStream, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = await asyncio.wait_for(stream.read(1 << 16), 10)
        assert chunk, f"EOF after {len(got)} of {n} bytes"
        got += chunk
    return got


async def test_fragments_and_pings_between_them_read_as_one_byte_stream(
    ws_server: Callable[[Handler], Awaitable[str]],
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send([b"ab", b"cd", b"ef"])  # one message in three frames
        await ws.ping(b"p")
        await ws.send(b"gh")
        await ws.wait_closed()

    stream = await open_websocket(await ws_server(handler))
    await stream.write(b"go")
    assert await read_exactly(stream, 8) == b"abcdefgh"
    await stream.close()


async def test_text_message_is_a_transport_error(
    ws_server: Callable[[Handler], Awaitable[str]],
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("not binary")
        await ws.wait_closed()

    stream = await open_websocket(await ws_server(handler))
    with pytest.raises(driver.TransportError, match="text message"):
        await stream.read(100)
    await stream.close()


async def test_burst_larger_than_high_water_arrives_whole_and_in_order(
    ws_server: Callable[[Handler], Awaitable[str]],
) -> None:
    blocks = [bytes([i]) * 300_000 for i in range(12)]  # 3.6 MB: reading pauses and resumes

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        for block in blocks:
            await ws.send(block)
        await ws.close()

    stream = await open_websocket(await ws_server(handler))
    await stream.write(b"go")
    assert await read_exactly(stream, sum(map(len, blocks))) == b"".join(blocks)
    assert await stream.read(10) == b""  # then a clean close reads as EOF
    await stream.close()


async def test_abnormal_close_is_an_error_not_eof(
    ws_server: Callable[[Handler], Awaitable[str]],
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close(1011, "upstream error")

    stream = await open_websocket(await ws_server(handler))
    with pytest.raises(driver.TransportError, match="1011"):
        await stream.read(100)
    with pytest.raises(driver.TransportError, match="closed while writing"):
        await stream.write(b"x")
    await stream.close()


# ---- the hand-rolled frame path, against a raw server that controls every byte ---------------

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RawStart = Callable[..., Awaitable[str]]


def server_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
                 ) -> bytes:  # fmt: skip
    """A frame as a server would send it (unmasked unless `mask` is given, which is wrong)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    m = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((b0, m | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if mask is not None:
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked
    return head + payload


def parse_client_frames(data: bytes) -> list[Frame]:
    """Parse masked client frames with websockets' own parser (the reference)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        gen = Frame.parse(reader.read_exact, mask=True)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            frames.append(stop.value)
    return frames


async def read_client_frame(reader: asyncio.StreamReader) -> Frame:
    b0, b1 = await reader.readexactly(2)
    size = b1 & 0x7F
    ext = b""
    if size == 126:
        ext = await reader.readexactly(2)
        size = struct.unpack("!H", ext)[0]
    elif size == 127:
        ext = await reader.readexactly(8)
        size = struct.unpack("!Q", ext)[0]
    rest = await reader.readexactly(4 + size)
    (frame,) = parse_client_frames(bytes((b0, b1)) + ext + rest)
    return frame


@pytest.fixture
async def raw_server() -> AsyncIterator[RawStart]:
    """A server that answers the upgrade by hand (with `after_101` in the same write), then
    runs `handler` on the raw stream."""
    servers: list[asyncio.Server] = []

    async def start(handler: RawHandler, after_101: bytes = b"") -> str:
        async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(
                hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" + after_101
            )
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(serve_one, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/v2?address=db:5432"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def test_build_frame_parses_back_with_websockets_for_every_length_class() -> None:
    for n in (0, 1, 125, 126, 65535, 65536, 70000):
        payload = bytes(i % 251 for i in range(n))
        for mask in (b"\0\0\0\0", b"\xff\x01\x80\x7f"):
            (frame,) = parse_client_frames(build_frame(0x2, payload, mask))
            assert frame.opcode is Opcode.BINARY and frame.fin
            assert frame.data == payload


async def test_frames_split_byte_by_byte_with_a_ping_between_them(
    raw_server: RawStart,
) -> None:
    """Frames that arrive one byte at a time, a ping in between (answered with a pong that
    carries its payload), 16- and 64-bit lengths, and a clean close: all bytes, in order."""
    big = bytes(range(256)) * 400  # 102400 bytes: a 64-bit length
    mid = b"m" * 300  # a 16-bit length
    pong: list[Frame] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await read_client_frame(reader)
        stream_bytes = (
            server_frame(0x2, bytes(first.data))  # echo
            + server_frame(0x9, b"are you there")
            + server_frame(0x2, mid, fin=False)
            + server_frame(0x0, big)
        )
        for i in range(len(stream_bytes)):
            writer.write(stream_bytes[i : i + 1])
            await writer.drain()
        pong.append(await read_client_frame(reader))
        writer.write(server_frame(0x8, struct.pack("!H", 1000) + b"bye"))
        closing = await read_client_frame(reader)
        assert closing.opcode is Opcode.CLOSE and closing.data[:2] == struct.pack("!H", 1000)

    stream = await open_websocket(await raw_server(handler))
    await stream.write(b"hello")
    assert await read_exactly(stream, 5 + len(mid) + len(big)) == b"hello" + mid + big
    assert await stream.read(10) == b""  # the close frame, code 1000: EOF
    assert pong[0].opcode is Opcode.PONG and pong[0].data == b"are you there"
    await stream.close()


async def test_frames_that_come_with_the_handshake_response_are_kept(
    raw_server: RawStart,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_client_frame(reader)  # the client's close frame

    early = server_frame(0x2, b"early") + server_frame(0x2, b" bird")
    stream = await open_websocket(await raw_server(handler, early))
    assert await read_exactly(stream, 10) == b"early bird"
    await stream.close()


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (server_frame(0x2, b"x", mask=b"abcd"), 1002),  # servers must not mask
        (bytes((0x82 | 0x40, 1)) + b"x", 1002),  # RSV1 without an extension
        (server_frame(0x3, b"x"), 1002),  # reserved opcode
        (server_frame(0x0, b"x"), 1002),  # continuation with no message started
        (server_frame(0x9, b"p" * 126), 1002),  # control frame too long
        (server_frame(0x1, b"text"), 1003),
    ],
)
async def test_protocol_violation_is_a_transport_error_and_a_close_with_its_code(
    raw_server: RawStart, bad: bytes, code: int
) -> None:
    closing: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(server_frame(0x2, b"ok") + bad)
        await writer.drain()
        closing.set_result(await read_client_frame(reader))

    stream = await open_websocket(await raw_server(handler))
    assert await stream.read(100) == b"ok"  # what came before the bad frame is kept
    with pytest.raises(driver.TransportError, match=r"WebSocket ws://127\.0\.0\.1"):
        await stream.read(100)
    with pytest.raises(driver.TransportError, match="closed while writing"):
        await stream.write(b"more")
    await stream.close()
    frame = await asyncio.wait_for(closing, 5)
    assert frame.opcode is Opcode.CLOSE
    assert struct.unpack("!H", frame.data[:2])[0] == code


async def test_close_without_status_is_eof_and_other_codes_are_errors(
    raw_server: RawStart,
) -> None:
    async def empty_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(server_frame(0x8, b""))
        assert (await read_client_frame(reader)).opcode is Opcode.CLOSE

    stream = await open_websocket(await raw_server(empty_close))
    assert await stream.read(10) == b""
    await stream.close()

    async def going_wrong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(server_frame(0x8, struct.pack("!H", 1011) + b"upstream error"))
        assert (await read_client_frame(reader)).opcode is Opcode.CLOSE

    stream = await open_websocket(await raw_server(going_wrong))
    with pytest.raises(driver.TransportError, match="1011 upstream error"):
        await stream.read(10)
    await stream.close()


async def test_large_write_goes_out_as_several_masked_messages_with_fresh_keys(
    raw_server: RawStart,
) -> None:
    data = bytes(range(256)) * 1000  # 256000 bytes
    frames: list[Frame] = []
    raw_masks: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = 0
        while got < len(data):
            b0, b1 = await reader.readexactly(2)
            size = b1 & 0x7F
            ext = await reader.readexactly({126: 2, 127: 8}.get(size, 0))
            size = int.from_bytes(ext, "big") if ext else size
            rest = await reader.readexactly(4 + size)
            raw_masks.append(rest[:4])
            (frame,) = parse_client_frames(bytes((b0, b1)) + ext + rest)
            frames.append(frame)
            got += len(frame.data)
        writer.write(server_frame(0x2, b"done"))
        assert (await read_client_frame(reader)).opcode is Opcode.CLOSE

    stream = await open_websocket(await raw_server(handler))
    await stream.write(data)
    assert await stream.read(10) == b"done"
    await stream.close()
    assert b"".join(f.data for f in frames) == data
    assert all(f.opcode is Opcode.BINARY and f.fin for f in frames)
    assert max(len(f.data) for f in frames) <= MAX_FRAME and len(frames) >= 4
    assert len(set(raw_masks)) == len(raw_masks)  # a new key per frame


async def test_a_single_message_larger_than_the_read_buffer_arrives_whole(
    ws_server: Callable[[Handler], Awaitable[str]],
) -> None:
    block = bytes(range(256)) * 20_000  # 5 MB in one frame

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(block)
        await ws.send(b"tail")
        await ws.wait_closed()

    stream = await open_websocket(await ws_server(handler))
    await stream.write(b"go")
    assert await read_exactly(stream, len(block) + 4) == block + b"tail"
    await stream.close()


async def test_close_sends_1000_and_waits_for_the_server(
    ws_server: Callable[[Handler], Awaitable[str]],
) -> None:
    seen: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()
        seen.set_result(ws.close_code)

    stream = await open_websocket(await ws_server(handler))
    await stream.close()
    assert stream._eof  # the server's side of the handshake came back within close()
    assert await asyncio.wait_for(seen, 5) == 1000
