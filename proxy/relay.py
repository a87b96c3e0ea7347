"""One relay: two pumps (ws->tcp, tcp->ws), and a close code that says why it ended."""

from __future__ import annotations

import asyncio
import logging
import struct
import sys
from asyncio import selector_events
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import GeneratorType
from typing import cast

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State
from websockets.streams import StreamReader

from .frames import CONTROL, DATA, NEED_DATA, apply_mask, next_frame
from .metrics import Metrics
from .traffic import TrafficLog
from .upstream import HEAD_ROOM, Upstream, UpstreamError

log = logging.getLogger("proxy.relay")

# RFC 6455 close codes the relay uses.
NORMAL, GOING_AWAY, UNSUPPORTED_DATA, POLICY_VIOLATION, INTERNAL_ERROR = (
    1000,
    1001,
    1003,
    1008,
    1011,
)

# Bytes of answers (pongs) queued for a client that does not read them before it is closed
# with 1008 (keepalive pings from a client that reads slowly add a few bytes a minute).
PEER_BACKLOG = 64 * 1024

# Headers of an unmasked final binary frame (RFC 6455 5.2), by payload length.
_HEAD_16, _HEAD_64 = struct.Struct("!BBH"), struct.Struct("!BBQ")
_FIN_BINARY = 0x82

# asyncio's plain socket transport before 3.12 copies whatever it cannot send at once, so the
# read buffer can be reused right after write(); any other transport (TLS, uvloop, 3.12+)
# may keep a reference to unsent bytes, and then the relay reads into a new buffer.
_COPYING_TRANSPORT = (
    getattr(selector_events, "_SelectorSocketTransport", None)
    if sys.version_info < (3, 12)
    else None
)


def frame_start(buf: memoryview, n: int) -> int:
    """Write the header of a final binary frame of `n` payload bytes, which sit at
    buf[HEAD_ROOM:], right before them; return where the frame starts."""
    if n < 126:
        buf[HEAD_ROOM - 2] = _FIN_BINARY
        buf[HEAD_ROOM - 1] = n
        return HEAD_ROOM - 2
    if n < 65536:
        _HEAD_16.pack_into(buf, HEAD_ROOM - 4, _FIN_BINARY, 126, n)
        return HEAD_ROOM - 4
    _HEAD_64.pack_into(buf, HEAD_ROOM - 10, _FIN_BINARY, 127, n)
    return HEAD_ROOM - 10


@dataclass(frozen=True, slots=True)
class Ending:
    """Why a relay stopped: the close code sent to the client (if we sent one) and a reason."""

    code: int | None
    reason: str


class _TextFrame(Exception):
    pass


_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
_AT_EOF = StreamReader.at_eof.__code__

# Client bytes read per event, into one buffer per connection (asyncio's recv() size).
CLIENT_READ_SIZE = 256 * 1024


class RelayConnection(ServerConnection, asyncio.BufferedProtocol):
    """A ServerConnection that parses the client's binary frames itself and hands each payload
    to `fast_sink` as soon as it is read, with no task hop and without websockets' parser.

    The fast path takes whole masked final binary frames straight from the read buffer. Pings
    and pongs are fed to websockets one whole frame at a time (it answers and tracks them), so
    its parser always stays at a frame boundary. The first frame of any other kind (text,
    close, fragment, oversize, unmasked, RSV bit) and every byte after it go to websockets'
    normal path for good: it closes with the right code, and bytes never overtake one another.
    A frame split across reads waits in `_pending` until it is whole.

    The fast path starts only once the relay has attached its sink, the handshake is over,
    websockets' parser is at a frame boundary and nothing it parsed earlier is still queued;
    until then frames take websockets' path (binary ones still reach `fast_sink` from
    process_event when nothing is queued ahead of them).

    On asyncio's own loop it reads the client with recv_into() into a buffer it keeps:
    asyncio's recv() would allocate 256 KiB per read, which glibc serves with mmap/mremap/munmap,
    three syscalls and a page fault on every small message. uvloop never calls get_buffer here
    (any asyncio.Protocol subclass is a plain protocol to it) and hands data_received bytes.
    """

    fast_sink: Callable[[bytes], None] | None = None
    _holds: frozenset[str] = frozenset()  # why reading the client is paused (empty: it isn't)
    _backlog = 0  # bytes of answers queued since the write buffer was last empty (_answer)
    _read_buf: memoryview | None = None
    _fast = False  # frames are parsed here (buffer_updated), not by websockets
    _slow = False  # websockets parses everything from now on
    _pending: bytearray | None = None  # the start of a frame split across reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # websockets' message queue pauses and resumes the transport itself; routed through
        # the holds, its resume cannot undo a pause the relay or a non-reading peer needs.
        self.recv_messages.pause = lambda: self.hold_reading("queue")
        self.recv_messages.resume = lambda: self.release_reading("queue")

    def hold_reading(self, reason: str) -> None:
        """Stop reading the client until every reason given here is released."""
        if not self._holds:
            self.transport.pause_reading()
        self._holds |= {reason}

    def release_reading(self, reason: str) -> None:
        if reason in self._holds:
            self._holds -= {reason}
            if not self._holds and not self.transport.is_closing():
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        """The client is not reading what it is sent: stop reading what it sends.

        Otherwise each ping it sends would queue a pong for ever (a client that pings and never
        reads grew the proxy by hundreds of MiB in seconds). What one read already holds is
        still answered, and _answer closes the connection with 1008 when answers pile up.
        """
        super().pause_writing()
        self.hold_reading("peer")

    def resume_writing(self) -> None:
        super().resume_writing()
        self.release_reading("peer")

    def _answer(self, data: bytes) -> None:
        """Feed websockets bytes that may make it answer (pings), and close with 1008 a client
        whose answers pile up unread: PEER_BACKLOG bytes of them queued since its write
        buffer was last empty (a reading client empties it; keepalive pings add a few bytes).
        """
        transport = self.transport
        before = transport.get_write_buffer_size()
        super().data_received(data)
        queued = transport.get_write_buffer_size() - before
        self._backlog = (self._backlog if before else 0) + queued
        if self._backlog <= PEER_BACKLOG:
            return
        if self.protocol.state is State.OPEN:
            self.protocol.fail(POLICY_VIOLATION, "client does not read what it is sent")
            try:
                self.send_data()
            except Exception:  # the socket is dropped on the next line anyway
                pass
        # The close frame waits behind bytes the client does not read: drop the connection.
        transport.abort()

    def buffered(self) -> int:
        """Bytes held for this client: its write buffer, a frame split across reads, and
        what websockets' parser holds of a frame it is reading."""
        pending = len(self._pending) if self._pending else 0
        return self.transport.get_write_buffer_size() + pending + len(self.protocol.reader.buffer)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._read_buf is None:
            self._read_buf = memoryview(bytearray(CLIENT_READ_SIZE))
        return self._read_buf

    def buffer_updated(self, nbytes: int) -> None:
        assert self._read_buf is not None
        self.data_received(cast(bytes, self._read_buf[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """Client bytes: from buffer_updated (a view of the kept buffer), or straight from
        uvloop, which treats every asyncio.Protocol subclass as a plain protocol."""
        if not self._fast:
            if self._slow or not self._can_go_fast():
                # websockets 17 only appends what it is fed to its reader's bytearray
                # (StreamReader.feed_data), so a view of the reused buffer is safe to pass.
                self._answer(data)
                return
            self._fast = True
        pending = self._pending
        if pending:
            pending += data
            self._relay_frames(pending)
        else:
            self._relay_frames(data)

    def _can_go_fast(self) -> bool:
        return (
            self.fast_sink is not None
            and self.protocol.state is State.OPEN
            and not len(self.recv_messages.frames)
            and _at_frame_start(self.protocol.parser)
        )

    def _relay_frames(self, data: bytes | bytearray) -> None:
        """Relay the whole frames at the start of `data`; keep an incomplete last one."""
        sink = self.fast_sink
        assert sink is not None
        max_size = self.protocol.max_message_size
        rest: bytes | None = None
        with memoryview(data) as buf:
            pos = 0
            while pos < len(buf):
                kind, start, end = next_frame(buf, pos, max_size)
                if kind == DATA:
                    sink(apply_mask(buf[start:end], bytes(buf[start - 4 : start])))
                elif kind == CONTROL:
                    self._answer(bytes(buf[pos:end]))
                elif kind == NEED_DATA:
                    break
                else:
                    rest = bytes(buf[pos:])
                    break
                pos = end
        if rest is not None:
            self._go_slow(rest)
        elif data is self._pending:
            del data[:pos]  # the view above is released, so the bytearray may shrink
        elif pos < len(data):
            self._pending = bytearray(data[pos:])

    def _go_slow(self, rest: bytes) -> None:
        """Hand `rest`, which starts at a frame boundary, and all later bytes to websockets."""
        self._fast, self._slow, self._pending = False, True, None
        super().data_received(rest)

    def eof_received(self) -> None:
        if self._pending:  # websockets reports the truncated frame as it would have
            self._go_slow(bytes(self._pending))
        super().eof_received()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode in _DATA_OPCODES:
            sink = self.fast_sink
            if event.opcode is Opcode.BINARY and event.fin:
                # Straight to the target, unless messages parsed earlier still wait in the
                # queue for the relay task: this one must not overtake them.
                if sink is not None and not self._slow and not len(self.recv_messages.frames):
                    data = event.data
                    sink(data if isinstance(data, bytes) else bytes(data))
                    return
            else:
                self._fast, self._slow = False, True
        super().process_event(event)


def _at_frame_start(parser: Generator[None]) -> bool:
    """Whether websockets' parser waits for the first byte of a frame (not in the middle of
    one): the innermost generator it is suspended in is StreamReader.at_eof (Protocol.parse)."""
    gen: object = parser
    while isinstance(gen, GeneratorType) and isinstance(gen.gi_yieldfrom, GeneratorType):
        gen = gen.gi_yieldfrom
    return isinstance(gen, GeneratorType) and gen.gi_code is _AT_EOF


class Relay:
    """Moves bytes both ways until one side ends, then closes the other with the right code.

    Each direction stops reading while its sink is full (target reads pause while the
    WebSocket's write buffer is over its limit; Upstream.write waits on the target's socket
    and websockets stops reading the client meanwhile): no unbounded queues.
    """

    def __init__(
        self,
        conn_id: int,
        ws: RelayConnection,
        upstream: Upstream,
        metrics: Metrics,
        idle_timeout: float,
        traffic: TrafficLog | None,
        no_traffic_timeout: float = 0.0,
    ) -> None:
        self.conn_id = conn_id
        self.no_traffic_timeout = no_traffic_timeout
        self.ws = ws
        self.up = upstream
        self.metrics = metrics
        self.idle_timeout = idle_timeout
        self.traffic = traffic
        self.bytes_from_client = 0
        self.bytes_from_server = 0
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._stop: asyncio.Future[Ending] = self._loop.create_future()
        self._drain_task: asyncio.Future[None] | None = None
        self._reuse_buffer = type(ws.transport) is _COPYING_TRANSPORT
        upstream.attach(self._from_server)
        ws.fast_sink = self._from_client
        upstream.on_writable = self._resume_client

    def buffered(self) -> int:
        """Bytes this relay holds in memory now: both write buffers, a client frame split
        across reads, and what websockets' parser holds of a frame it reads."""
        up = self.up.transport
        return self.ws.buffered() + (up.get_write_buffer_size() if up is not None else 0)

    def stop(self, code: int, reason: str) -> None:
        """Ask the relay to end (drain timeout, shutdown); it closes the WebSocket with `code`."""
        if not self._stop.done():
            self._stop.set_result(Ending(code, reason))

    def _from_server(self, buf: memoryview, n: int) -> None:
        """Frame and write target bytes at once, from Upstream.buffer_updated (no task hop).

        The payload is at buf[HEAD_ROOM:HEAD_ROOM + n]; the frame header goes in the room
        before it and header and payload leave in one write, without being copied (websockets'
        own send_binary would copy each chunk into a new bytes). This is the one kind of frame
        the proxy sends outside websockets: anything websockets queued (pong, close) is flushed
        first, and a closing connection gets nothing more.

        When the WebSocket's write buffer passes its limit, reading from the target pauses
        until websockets reports the buffer drained: memory stays bounded by the limits.
        """
        ws = self.ws
        if ws.protocol.state is not State.OPEN:
            return  # the client is leaving; the ws->tcp side ends the relay
        self._last = self._loop.time()
        self.bytes_from_server += n
        self.metrics.bytes_tcp.inc(n)
        if self.traffic is not None:
            self.traffic.from_server(bytes(buf[HEAD_ROOM : HEAD_ROOM + n]))
        if ws.protocol.writes:
            ws.send_data()
        transport = ws.transport
        transport.write(buf[frame_start(buf, n) : HEAD_ROOM + n])
        if not self._reuse_buffer and transport.get_write_buffer_size():
            self.up.replace_buffer()
        if ws.paused and self._drain_task is None:
            self.up.pause_reading()
            self._drain_task = asyncio.ensure_future(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        try:
            await self.ws.drain()
        finally:
            self._drain_task = None
            self.up.resume_reading()

    def _from_client(self, data: bytes) -> None:
        """Write a client message to the target as soon as websockets has parsed it.

        While the target's socket buffer is over its high-water mark, reading from the client
        pauses; Upstream calls _resume_client when it drains.
        """
        self._last = self._loop.time()
        self.bytes_from_client += len(data)
        self.metrics.bytes_ws.inc(len(data))
        if self.traffic is not None:
            self.traffic.from_client(data)
        if not self.up.write_nowait(data):
            self.ws.hold_reading("target")

    def _resume_client(self) -> None:
        self.ws.release_reading("target")

    async def _tcp_to_ws(self) -> Ending:
        exc = await asyncio.shield(self.up.finished)
        if exc is not None:
            return Ending(INTERNAL_ERROR, f"upstream error: {exc}")
        return Ending(NORMAL, "TCP connection is closed")

    async def _ws_to_tcp(self) -> Ending:
        try:
            async for message in self.ws:
                if isinstance(message, str):
                    raise _TextFrame
                self._last = self._loop.time()
                self.bytes_from_client += len(message)
                self.metrics.bytes_ws.inc(len(message))
                if self.traffic is not None:
                    self.traffic.from_client(message)
                await self.up.write(message)
        except _TextFrame:
            return Ending(UNSUPPORTED_DATA, "text frames are not supported; send binary")
        except UpstreamError as exc:
            return Ending(INTERNAL_ERROR, f"upstream error: {exc}")
        except ConnectionClosed:
            pass
        return Ending(None, _close_story(self.ws))

    async def _idle(self) -> Ending:
        """End a relay without traffic: after `idle_timeout` without bytes either way, or
        sooner, after `no_traffic_timeout`, while its client has sent nothing at all (such a
        relay only holds a slot), whichever comes first."""
        opened = self._last
        while True:
            now = self._loop.time()
            deadlines: list[tuple[float, str]] = []
            if self.idle_timeout > 0:
                deadlines.append((self._last + self.idle_timeout, "idle timeout"))
            if self.no_traffic_timeout > 0 and not self.bytes_from_client:
                deadlines.append((opened + self.no_traffic_timeout, "no traffic from the client"))
            if not deadlines:
                return await asyncio.Future()  # no timeout applies any more: wait for ever
            when, reason = min(deadlines)
            if when <= now:
                return Ending(NORMAL, reason)
            await asyncio.sleep(when - now)

    async def run(self) -> Ending:
        """Relay until something ends it; then close both sides.

        Returns:
            What ended the relay, for the connection log line.
        """
        tasks = [
            asyncio.ensure_future(self._tcp_to_ws()),
            asyncio.ensure_future(self._ws_to_tcp()),
            self._stop,
        ]
        if self.idle_timeout > 0 or self.no_traffic_timeout > 0:
            tasks.append(asyncio.ensure_future(self._idle()))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            ending = next(t for t in tasks if t in done).result()
        finally:
            for t in tasks:
                t.cancel()
            if self._drain_task is not None:
                self._drain_task.cancel()
        if ending.code == INTERNAL_ERROR:
            self.up.abort()
        else:
            self.up.close()
        if ending.code is not None:
            # Everything read from the target was already written to the WebSocket, so the
            # close frame queues behind the last data frame: the client sees all bytes first.
            await self.ws.close(ending.code, ending.reason[:120])
        return ending


def _close_story(ws: ServerConnection) -> str:
    """Describe how the client closed, e.g. 'client closed 1000' or 'message too big 1009'."""
    p = ws.protocol
    rcvd, sent = p.close_rcvd, p.close_sent
    if sent is not None and (rcvd is None or p.close_rcvd_then_sent is False):
        return f"closed by proxy {sent.code} {sent.reason}".rstrip()
    if rcvd is not None:
        return f"client closed {rcvd.code} {rcvd.reason}".rstrip()
    return "client connection lost"
