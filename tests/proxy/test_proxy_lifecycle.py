"""How relays end: each cause gets its close code, and the other side is closed too."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import struct
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from tests.proxy.conftest import ProxyProc, RawWS, Target
from tools.pgcluster import free_port, refused_port


@pytest.fixture(scope="module")
def dead_port() -> Iterator[int]:
    """Held for the module: a port picked at import could be someone's listener by now."""
    with refused_port() as port:
        yield port


@pytest.fixture(scope="module")
def lp(tgt: Target, dead_port: int) -> Iterator[ProxyProc]:
    """A proxy with small limits and metrics on."""
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:({tgt.port}|{dead_port})",
            "MAX_MESSAGE_SIZE": "64KiB",
            "PROMETHEUS_BIND": f"127.0.0.1:{free_port()}",  # picked as the proxy starts
            "CONNECT_TIMEOUT": "2s",
        }
    )
    yield p
    p.stop()


async def test_tcp_end_closes_1000_after_every_byte(lp: ProxyProc, tgt: Target) -> None:
    payload = os.urandom(5 * 1024 * 1024)
    async with connect(lp.url(f"127.0.0.1:{tgt.port}"), max_size=None) as ws:
        _, writer = await tgt.next()
        writer.write(payload)
        await writer.drain()
        writer.close()
        got = bytearray()
        with pytest.raises(ConnectionClosedOK):
            while True:
                got += await ws.recv(decode=False)
        assert bytes(got) == payload
        assert ws.close_code == 1000 and ws.close_reason == "TCP connection is closed"


async def test_client_close_closes_the_tcp_side(lp: ProxyProc, tgt: Target) -> None:
    async with connect(lp.url(f"127.0.0.1:{tgt.port}")) as ws:
        reader, writer = await tgt.next()
        await ws.send(b"last words")
    assert await reader.read() == b"last words"  # then EOF: the proxy closed its socket
    writer.close()


async def test_upstream_reset_closes_1011_with_a_reason(lp: ProxyProc, tgt: Target) -> None:
    async with connect(lp.url(f"127.0.0.1:{tgt.port}")) as ws:
        reader, writer = await tgt.next()
        await ws.send(b"x")  # a round trip first: the proxy's upstream is fully open
        assert await reader.readexactly(1) == b"x"
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, not FIN
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1011 and "upstream error" in (ws.close_reason or "")


async def test_upstream_connect_failure_closes_1011(lp: ProxyProc, dead_port: int) -> None:
    mark = lp.mark()
    async with connect(lp.url(f"127.0.0.1:{dead_port}")) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1011 and "upstream connect failed" in (ws.close_reason or "")
    await lp.await_line(r"conn \d+ close .*reason=upstream connect failed", start=mark)


async def test_text_frames_close_1003(lp: ProxyProc, tgt: Target) -> None:
    async with connect(lp.url(f"127.0.0.1:{tgt.port}")) as ws:
        reader, writer = await tgt.next()
        await ws.send("SELECT 1")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1003
    assert await reader.read() == b""  # the text never reached the target
    writer.close()


async def test_oversized_messages_close_1009(lp: ProxyProc, tgt: Target) -> None:
    async with connect(lp.url(f"127.0.0.1:{tgt.port}")) as ws:
        reader, writer = await tgt.next()
        await ws.send(b"x" * (64 * 1024))  # exactly the limit: fine
        await ws.send(b"y" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009
    data = await reader.read()
    assert data == b"x" * (64 * 1024)
    writer.close()


async def test_connection_log_lines_carry_id_target_bytes_and_reason(
    lp: ProxyProc, tgt: Target
) -> None:
    async with connect(lp.url(f"127.0.0.1:{tgt.port}")) as ws:
        _, writer = await tgt.next()
        await ws.send(b"12345")
        writer.write(b"abc")
        assert await ws.recv() == b"abc"
        me = rf"client=127\.0\.0\.1:{ws.local_address[1]} "
    opened = await lp.await_line(rf"conn \d+ open {me}")
    conn_id = opened.split("conn ")[1].split()[0]
    closed = await lp.await_line(rf"conn {conn_id} close {me}")
    assert f"target=127.0.0.1:{tgt.port} (127.0.0.1)" in closed
    assert "ws->tcp=5 tcp->ws=3" in closed and "reason=client closed 1000" in closed
    writer.close()


async def test_metrics_use_wsproxy_names(lp: ProxyProc, tgt: Target) -> None:
    async with connect(lp.url(f"127.0.0.1:{tgt.port}")) as ws:
        _, writer = await tgt.next()
        await ws.send(b"ping")
        writer.write(b"pong")
        assert await ws.recv() == b"pong"
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://{lp.env['PROMETHEUS_BIND']}/metrics")).text
        assert "wsproxy_active_connections 1.0" in text
    writer.close()
    with pytest.raises(Exception):  # noqa: B017 - any refusal
        async with connect(lp.url("127.0.0.1:1")):
            pass

    def value(name: str) -> float:
        line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
        return float(line.split()[-1])

    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://{lp.env['PROMETHEUS_BIND']}/metrics")).text
    assert value("wsproxy_connections_total") >= 1
    assert value('wsproxy_bytes_total{source="ws"}') >= 4
    assert value('wsproxy_bytes_total{source="tcp"}') >= 4
    assert value('wsproxy_refusals_total{reason="not_allowed"}') >= 1
    assert "wsproxy_upstream_connect_failures_total" in text
    assert value("wsproxy_connection_duration_seconds_count") >= 1


async def test_idle_handshake_and_ping(tgt: Target) -> None:
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{tgt.port}",
            "IDLE_TIMEOUT": "600ms",
            "HANDSHAKE_TIMEOUT": "0.5",
            "PING_INTERVAL": "0.2",
        }
    )
    try:
        # Pings arrive while the relay is quiet, and do not count as traffic for the idle timer.
        status, _, raw = await RawWS.connect(p.port, f"/v2?address=127.0.0.1:{tgt.port}")
        assert status == 101
        reader, writer = await tgt.next()
        opcode, payload = await raw.read_frame()
        assert opcode == 0x9  # ping
        raw.send_frame(payload, opcode=0xA)  # pong
        while opcode != 0x8:
            opcode, payload = await raw.read_frame()
            if opcode == 0x9:
                raw.send_frame(payload, opcode=0xA)
        assert struct.unpack("!H", payload[:2])[0] == 1000 and b"idle timeout" in payload
        assert await reader.read() == b""
        writer.close()
        raw.close()
        # A client that connects and never sends a request is dropped.
        r, w = await asyncio.open_connection("127.0.0.1", p.port)
        assert await r.read() == b""
        w.close()
    finally:
        p.stop()


def test_default_ping_interval_is_under_a_minute() -> None:
    from proxy.config import load

    assert 0 < load([], {}).ping_interval < 60


async def test_upstream_socket_has_tcp_keepalive(lp: ProxyProc, tgt: Target) -> None:
    """A dead database is noticed in minutes: the proxy's socket runs a keepalive timer."""
    async with connect(lp.url(f"127.0.0.1:{tgt.port}")) as ws:
        reader, writer = await tgt.next()
        await ws.send(b"x")
        assert await reader.readexactly(1) == b"x"
        peer = writer.get_extra_info("peername")[1]  # the proxy's side of the upstream socket
        out = await asyncio.to_thread(
            subprocess.run,
            ["ss", "-tno", "state", "established", f"( sport = :{peer} )"],
            capture_output=True,
            text=True,
            check=True,
        )
        # 60 s idle time, not the kernel default of two hours (which ss shows as 119min).
        assert re.search(r"timer:\(keepalive,(\d+sec|1min),", out.stdout), out.stdout
    writer.close()


async def test_fragmented_messages_keep_their_order(lp: ProxyProc, tgt: Target) -> None:
    """Whole binary frames take the fast path; a fragmented message and everything after it
    take websockets' path. Either way the target sees the bytes in the order sent."""
    async with connect(lp.url(f"127.0.0.1:{tgt.port}")) as ws:
        reader, writer = await tgt.next()
        await ws.send(b"one,")
        await ws.send([b"tw", b"o,"])  # an iterable is sent as fragments
        await ws.send(b"three")
        assert await reader.readexactly(13) == b"one,two,three"
    writer.close()
