"""WebSocketStream's own frame path: fragments, pings, text frames, big bursts and closes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve

import driver
from driver.transport.websocket import WebSocketStream, open_websocket

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
        chunk = await stream.read(1 << 16)
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
