"""TCP and WebSocket streams against loopback servers: framing, EOF, errors, TCP_NODELAY."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

import driver
from driver.transport import open_stream
from driver.transport.tcp import TCPStream
from driver.transport.websocket import WebSocketStream


@pytest.fixture
async def ws_echo() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A WebSocket server that records each binary message and echoes it doubled."""
    received: list[bytes] = []

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            assert isinstance(message, bytes)
            received.append(message)
            if message == b"close":
                await ws.close()
                return
            await ws.send(message * 2)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v2?address=db:5432", received


async def test_websocket_write_is_one_message_and_reads_split(
    ws_echo: tuple[str, list[bytes]],
) -> None:
    url, received = ws_echo
    stream = await open_stream("db", 5432, url)
    assert isinstance(stream, WebSocketStream)
    await stream.write(b"abcdef")
    assert await stream.read(4) == b"abcd"  # the rest of the message waits for the next read
    assert await stream.read(100) == b"efabcdef"
    await stream.write(b"xy")
    assert await stream.read(100) == b"xyxy"
    assert received == [b"abcdef", b"xy"]
    await stream.write(b"close")
    assert await stream.read(100) == b""  # a clean close is EOF
    await stream.close()


async def test_websocket_refused_upgrade_is_a_transport_error() -> None:
    async def handler(ws: ServerConnection) -> None:
        raise AssertionError("never upgraded")

    def refuse(conn: ServerConnection, request: Request) -> Response:
        return conn.respond(400, "address not allowed\n")

    async with serve(handler, "127.0.0.1", 0, process_request=refuse) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with pytest.raises(driver.TransportError, match="HTTP 400 address not allowed"):
            await open_stream("db", 1, f"ws://127.0.0.1:{port}/v2?address=db:1")


@pytest.fixture
async def tcp_echo() -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_tcp_stream_echo_nodelay_and_eof(tcp_echo: int) -> None:
    stream = await open_stream("127.0.0.1", tcp_echo)
    assert isinstance(stream, TCPStream)
    assert stream._transport is not None
    sock = stream._transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    await stream.write(b"ping")
    got = b""
    while len(got) < 4:
        got += await stream.read(10)
    assert got == b"ping"
    await stream.close()
    await stream.close()  # idempotent


async def test_websocket_sets_nodelay(ws_echo: tuple[str, list[bytes]]) -> None:
    url, _ = ws_echo
    stream = await open_stream("db", 5432, url)
    assert isinstance(stream, WebSocketStream)
    assert stream._transport is not None
    sock = stream._transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    await stream.close()


async def test_tcp_stream_flow_control_both_ways(tcp_echo: int) -> None:
    """Megabytes through an echo server: writes wait when the socket is full, reads pause
    the socket when nobody reads, and every byte comes back in order."""
    stream = await open_stream("127.0.0.1", tcp_echo)
    assert isinstance(stream, TCPStream)
    payload = bytes(range(256)) * 16384  # 4 MiB

    async def writer() -> None:
        for i in range(0, len(payload), 1 << 18):
            await stream.write(payload[i : i + (1 << 18)])

    async def reader() -> bytes:
        got = bytearray()
        while len(got) < len(payload):
            chunk = await stream.read(1 << 16)
            assert chunk and len(chunk) <= 1 << 16
            got += chunk
        return bytes(got)

    _, echoed = await asyncio.gather(writer(), reader())
    assert echoed == payload
    await stream.close()


async def test_tcp_read_after_peer_closes_is_eof(tcp_echo: int) -> None:
    stream = await open_stream("127.0.0.1", tcp_echo)
    assert isinstance(stream, TCPStream)
    assert stream._transport is not None
    stream._transport.write_eof()  # the echo server sees EOF and closes its side
    assert await stream.read(10) == b""
    await stream.close()


async def test_tcp_close_wakes_a_task_blocked_in_read(tcp_echo: int) -> None:
    """close() while another task waits in read(): that task ends (EOF) instead of waiting
    forever; close() used to take over the reader's waiter and strand it."""
    stream = await open_stream("127.0.0.1", tcp_echo)
    assert isinstance(stream, TCPStream)
    reading = asyncio.create_task(stream.read(10))
    await asyncio.sleep(0)  # one turn of the loop: the reader runs until it parks
    assert stream._read_waiter is not None and not reading.done()
    async with asyncio.timeout(5):
        await stream.close()
        assert await reading == b""
