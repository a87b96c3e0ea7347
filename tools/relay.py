"""A loopback TCP relay that counts round trips and keeps what it relayed, for tests and benches.

Put it in front of Postgres or in front of the WebSocket proxy. A round trip is one exchange:
the client sends something, then the server answers (however many chunks either side uses);
the TCP connect itself is not counted. Counting happens before a chunk is forwarded, so once
the client has read an answer, the count that includes it is final: tests read it with no
waiting. WebSocket frames, when the relayed stream is a WebSocket, are decoded too, so a test
can check that one flight was one message and read the unmasked payloads.

``delay`` adds latency per direction (for benchmarks), keeping order.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

__all__ = ["CountingRelay", "RelayedConnection", "WSFrames"]

UP, DOWN = "up", "down"  # client -> server, server -> client


class WSFrames:
    """Incremental decoder of one direction of a WebSocket connection, HTTP upgrade first."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._in_http = True
        self._fragments = bytearray()
        self.messages: list[bytes] = []  # complete data messages, unmasked
        self.http: bytes = b""  # the upgrade request or response head
        self.closes = 0  # close frames seen

    def feed(self, data: bytes) -> int:
        """Consume ``data``; return how many complete data messages it finished."""
        self._buf += data
        before = len(self.messages)
        if self._in_http:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return 0
            self.http = bytes(self._buf[: end + 4])
            del self._buf[: end + 4]
            self._in_http = False
        while self._frame():
            pass
        return len(self.messages) - before

    def _frame(self) -> bool:
        buf = self._buf
        if len(buf) < 2:
            return False
        fin, opcode = buf[0] & 0x80, buf[0] & 0x0F
        masked, length = buf[1] & 0x80, buf[1] & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return False
            length, pos = struct.unpack_from("!H", buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                return False
            length, pos = struct.unpack_from("!Q", buf, 2)[0], 10
        key = b""
        if masked:
            key, pos = bytes(buf[pos : pos + 4]), pos + 4
        if len(buf) < pos + length:
            return False
        payload = bytes(buf[pos : pos + length])
        del buf[: pos + length]
        if key:
            mask = (key * (length // 4 + 1))[:length]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(
                length, "big"
            )
        if opcode == 8:
            self.closes += 1
        if opcode in (0, 1, 2):  # continuation, text, binary; control frames are not data
            self._fragments += payload
            if fin:
                self.messages.append(bytes(self._fragments))
                self._fragments.clear()
        return True


@dataclass
class RelayedConnection:
    """What went through one relayed connection."""

    round_trips: int = 0
    up: bytearray = field(default_factory=bytearray)
    down: bytearray = field(default_factory=bytearray)
    # one entry per flight: (direction, bytes, WebSocket messages completed in it)
    flights: list[tuple[str, int, int]] = field(default_factory=list)
    ws_up: WSFrames = field(default_factory=WSFrames)
    ws_down: WSFrames = field(default_factory=WSFrames)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    # round trips before the client started the WebSocket closing handshake (which is one
    # more exchange, not part of the work); None while it has not
    before_close: int | None = None
    _last: str | None = None

    def record(self, direction: str, data: bytes) -> None:
        if direction == UP:
            self.up += data
            messages = self.ws_up.feed(data)
            if self.before_close is None and self.ws_up.closes:
                self.before_close = self.round_trips
        else:
            self.down += data
            messages = self.ws_down.feed(data)
            if self._last == UP:
                self.round_trips += 1
        if direction == self._last:
            d, n, m = self.flights[-1]
            self.flights[-1] = (d, n + len(data), m + messages)
        else:
            self.flights.append((direction, len(data), messages))
        self._last = direction

    def up_flights(self) -> list[tuple[int, int]]:
        """(bytes, WebSocket messages) of each client flight, in order."""
        return [(n, m) for d, n, m in self.flights if d == UP]


class CountingRelay:
    """``async with CountingRelay(host, port) as relay:`` then connect to ``relay.port``."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay: float = 0.0,
        listen_host: str = "127.0.0.1",
    ) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.listen_host = listen_host
        self.connections: list[RelayedConnection] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "relay not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        return f"{self.listen_host}:{self.port}"

    @property
    def round_trips(self) -> int:
        return sum(c.round_trips for c in self.connections)

    def last(self) -> RelayedConnection:
        return self.connections[-1]

    async def __aenter__(self) -> CountingRelay:
        self._server = await asyncio.start_server(self._serve, self.listen_host, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = RelayedConnection()
        self.connections.append(conn)
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            conn.closed.set()
            self._tasks.discard(task)
            return
        for w in (c_writer, s_writer):
            _nodelay(w)
        try:
            await asyncio.gather(
                self._pump(conn, UP, c_reader, s_writer), self._pump(conn, DOWN, s_reader, c_writer)
            )
        except asyncio.CancelledError:
            pass  # close(): asyncio would log a cancelled connection handler as an error
        finally:
            for w in (c_writer, s_writer):
                w.close()
            conn.closed.set()
            self._tasks.discard(task)

    async def _pump(
        self,
        conn: RelayedConnection,
        direction: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] | None = None
        sender: asyncio.Task[None] | None = None
        if self.delay:
            queue = asyncio.Queue()
            sender = asyncio.create_task(self._send_later(queue, writer))
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(65536):
                conn.record(direction, data)
                if queue is not None:
                    queue.put_nowait((loop.time() + self.delay, data))
                    continue
                writer.write(data)
                await writer.drain()
            if queue is not None and sender is not None:
                queue.put_nowait((loop.time() + self.delay, b""))
                await sender
        except OSError:
            pass
        finally:
            if sender is not None and not sender.done():
                sender.cancel()
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
                else:
                    writer.close()

    @staticmethod
    async def _send_later(
        queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        """Deliver each chunk ``delay`` after it arrived: latency injection for benchmarks,
        in order and without adding up across chunks."""
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                return
            writer.write(data)
            await writer.drain()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    import socket

    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
