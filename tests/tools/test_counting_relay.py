"""The counting relay counts exchanges (not chunks), keeps the bytes, and decodes WebSocket
frames, so the round-trip and no-plaintext tests elsewhere can trust it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from tools.relay import CountingRelay, WSFrames


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(data)
    await writer.drain()
    return await reader.readexactly(len(data))


@pytest.mark.parametrize("delay", [0.0, 0.002])
async def test_sequential_exchanges_are_round_trips(echo_port: int, delay: float) -> None:
    async with CountingRelay("127.0.0.1", echo_port, delay=delay) as relay:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        for i in range(3):
            assert await exchange(reader, writer, b"ping%d" % i) == b"ping%d" % i
        assert relay.round_trips == 3
        big = bytes(range(256)) * 1024  # many chunks each way, still one exchange
        assert await exchange(reader, writer, big) == big
        assert relay.round_trips == 4
        writer.close()
        await relay.last().closed.wait()
        conn = relay.last()
        assert bytes(conn.up) == bytes(conn.down) == b"ping0ping1ping2" + big
        assert [n for n, _ in conn.up_flights()] == [5, 5, 5, len(big)]


async def test_a_pipelined_flight_is_one_round_trip(echo_port: int) -> None:
    async with CountingRelay("127.0.0.1", echo_port) as relay:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        for part in (b"a", b"b", b"c"):
            writer.write(part)  # three writes before waiting: one flight
        await writer.drain()
        assert await reader.readexactly(3) == b"abc"
        assert relay.round_trips == 1
        writer.close()


async def test_an_unreachable_target_closes_the_client() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with CountingRelay("127.0.0.1", port) as relay:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        assert await reader.read() == b""
        assert relay.round_trips == 0
        writer.close()


async def test_websocket_messages_are_decoded_per_flight() -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with CountingRelay("127.0.0.1", port) as relay:
            async with connect(f"ws://127.0.0.1:{relay.port}/", compression=None) as ws:
                await ws.send(b"one")
                assert await ws.recv() == b"one"
                await ws.send([b"frag", b"mented"])  # one message in two frames
                assert await ws.recv() == b"fragmented"
                big = b"x" * 70_000  # 64-bit length
                await ws.send(big)
                assert await ws.recv() == big
                assert relay.round_trips == 4  # upgrade + three exchanges
                assert relay.last().before_close is None
            conn = relay.last()
            await conn.closed.wait()
            assert conn.before_close == 4 and conn.ws_up.closes == 1  # closing: one more
            assert conn.round_trips == 5
            assert conn.ws_up.http.startswith(b"GET / HTTP/1.1")
            assert conn.ws_up.messages == [b"one", b"fragmented", big]
            assert conn.ws_down.messages == [b"one", b"fragmented", big]
            assert [m for _, m in conn.up_flights()][:4] == [0, 1, 1, 1]


def test_frame_decoder_waits_for_complete_frames() -> None:
    frames = WSFrames()
    assert frames.feed(b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x82\x05hel") == 0
    assert frames.feed(b"lo\x82") == 1
    assert frames.feed(b"\x00") == 1
    assert frames.messages == [b"hello", b""]
