"""The driver against a hostile WebSocket proxy (issue 18): frame headers claiming huge sizes,
pings that are never read back, and a fuzzed frame parser. Memory is measured as the peak RSS of
a child process's own address space (VmHWM), where memory is the point: getrusage's ru_maxrss
would also count the RSS the spawning process had (Linux carries it over fork and exec), so a
long test run holding a few hundred MiB would fail the bound whatever the driver did."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driver.errors import TransportError
from driver.transport.websocket import open_websocket
from driver.transport.wsframes import (
    MAX_RECEIVE_FRAME,
    OP_BINARY,
    OP_CLOSE,
    READ_SIZE,
    FrameReader,
)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


def _head(opcode: int, size: int) -> bytes:
    """An unmasked server frame header announcing ``size`` payload bytes."""
    b0 = 0x80 | opcode
    if size < 126:
        return bytes((b0, size))
    if size < 65536:
        return bytes((b0, 126)) + size.to_bytes(2, "big")
    return bytes((b0, 127)) + size.to_bytes(8, "big")


@asynccontextmanager
async def fake_proxy(script: Script) -> AsyncIterator[str]:
    """A WebSocket server on 127.0.0.1 that upgrades, then runs ``script`` on the raw bytes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v2?address=db:5432"
    finally:
        server.close()


class Recorder(FrameReader):
    """A FrameReader fed by hand, its effects recorded."""

    def __init__(self) -> None:
        super().__init__("ws://test")
        self.sent: list[tuple[int, bytes]] = []
        self.dropped = False

    def _control(self, opcode: int, payload: bytes) -> None:
        self.sent.append((opcode, payload))

    def _deliver(self, got_data: bool) -> None:
        pass

    def _drop(self) -> None:
        self.dropped = True

    def feed(self, data: bytes) -> None:
        """As asyncio does: into the reader's buffer, in pieces that fit."""
        view = memoryview(data)
        while view and not self.dropped:
            room = self._read_buffer()
            n = min(len(room), len(view))
            room[:n] = view[:n]
            view = view[n:]
            self._filled(n)


@pytest.mark.parametrize("size", [1 << 30, 1 << 32, 1 << 62, MAX_RECEIVE_FRAME + 1])
def test_frame_over_the_limit_closes_with_1009_before_allocating(size: int) -> None:
    r = Recorder()
    r.feed(_head(OP_BINARY, size) + b"x" * 1000)
    assert r._failure is not None and "over the limit" in r._failure
    assert r.sent[-1][0] == OP_CLOSE and r.sent[-1][1][:2] == (1009).to_bytes(2, "big")
    assert r.dropped and r._big is None and not r._chunks


def test_big_frame_buffer_grows_with_what_arrived() -> None:
    r = Recorder()
    size = MAX_RECEIVE_FRAME  # allowed, but only 1 MiB of it ever arrives
    r.feed(_head(OP_BINARY, size) + b"y" * (1 << 20))
    assert r._failure is None and r._big is not None
    assert len(r._big) <= (1 << 20) + 16  # what arrived, not what the header claimed


def test_big_frame_then_more_frames_in_the_same_read() -> None:
    payload = os.urandom(3 * READ_SIZE)
    r = Recorder()
    r.feed(_head(OP_BINARY, len(payload)) + payload + _head(OP_BINARY, 3) + b"end")
    assert b"".join(r._chunks) == payload + b"end"
    assert r._failure is None and r._big is None


_frames = st.lists(
    st.tuples(st.sampled_from([OP_BINARY, 0x9, 0xA]), st.binary(max_size=300)), max_size=8
)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None)
@given(frames=_frames, cuts=st.lists(st.integers(1, 400), max_size=20), junk=st.binary())
def test_fuzz_frame_parser(frames: list[tuple[int, bytes]], cuts: list[int], junk: bytes) -> None:
    """Valid frames split anywhere give their payloads in order, pings answered; whatever
    junk follows, the parser ends in a typed failure or waits, never raises, never allocates
    more than arrived. Longer, on demand: ``FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest
    tests/driver/test_hostile_proxy.py -k fuzz``."""
    data = b"".join(_head(op, len(p)) + p for op, p in frames)
    r = Recorder()
    pos = 0
    for cut in [*cuts, len(data)]:
        r.feed(data[pos : pos + cut])
        pos += cut
        if pos >= len(data):
            break
    assert b"".join(r._chunks) == b"".join(p for op, p in frames if op == OP_BINARY)
    assert [p for op, p in r.sent] == [p for op, p in frames if op == 0x9]
    r.feed(junk)
    big = r._big
    assert big is None or len(big) <= len(junk)
    assert r._failure is None or r.dropped


_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path.insert(0, {root!r})
    from tests.driver.test_hostile_proxy import fake_proxy, {script}
    from driver.transport.websocket import open_websocket
    from driver.errors import TransportError

    async def main():
        async with fake_proxy({script}) as url:
            stream = await open_websocket(url)
            try:
                async with asyncio.timeout({deadline}):  # generous: a loaded machine is slow
                    while await stream.read(65536):
                        pass
                error = None
            except TransportError as exc:
                error = str(exc)
            except TimeoutError:
                error = "no TransportError within {deadline} s"
            stream.abort()
        with open("/proc/self/status") as status:  # this image's peak, not the parent's
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        print(json.dumps({{"error": error, "max_rss_mib": kib / 1024}}))

    asyncio.run(main())
    """
)


_CHILD_DEADLINE = 60  # seconds for the driver to give up on the hostile proxy


def _run_child(script: str) -> dict[str, Any]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = _CHILD.format(root=root, script=script, deadline=_CHILD_DEADLINE)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=_CHILD_DEADLINE + 30,  # start-up and imports too, under pytest's 120 s
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def claim_4gib(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(_head(OP_BINARY, 1 << 32) + b"z" * 65536)
    await writer.drain()
    await reader.read(1 << 16)  # the close frame
    await asyncio.Event().wait()  # then silence for good: the driver must not wait for 4 GiB


async def ping_never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ping = _head(0x9, 125) + b"p" * 125
    burst = ping * 512
    while True:  # never reads what the driver sends back
        writer.write(burst)
        await writer.drain()


def test_frame_header_claiming_4gib_allocates_nothing_in_a_child() -> None:
    result = _run_child("claim_4gib")
    assert result["error"] is not None and "over the limit" in result["error"]
    assert result["max_rss_mib"] < 150, result


def test_proxy_that_pings_and_never_reads_is_dropped_in_a_child() -> None:
    result = _run_child("ping_never_read")
    assert result["error"] is not None and "pongs are not read" in result["error"]
    assert result["max_rss_mib"] < 150, result


async def test_text_after_upgrade_is_refused_typed() -> None:
    async def text(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(0x1, 2) + b"hi")
        await writer.drain()
        await reader.read(100)

    async with fake_proxy(text) as url:
        stream = await open_websocket(url)
        with pytest.raises(TransportError, match="text message"):
            async with asyncio.timeout(5):
                await stream.read(100)
        stream.abort()


async def test_wss_against_a_ws_only_proxy_names_the_option(proxy: Any) -> None:
    """The demo's proxy is plain ws://; the default use_secure_websocket=True meets it."""
    url = f"wss://127.0.0.1:{proxy.port}/v2?address=127.0.0.1:5432"
    with pytest.raises(TransportError, match="use_secure_websocket=False") as err:
        await open_websocket(url)
    assert "does not speak TLS" in str(err.value) and ": :" not in str(err.value)


def test_an_empty_exception_text_becomes_its_type_name() -> None:
    from driver.transport.base import describe_error

    assert describe_error(ConnectionResetError()) == "ConnectionResetError"
    assert describe_error(OSError("no route")) == "no route"
