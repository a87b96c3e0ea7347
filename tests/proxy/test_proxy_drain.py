"""SIGTERM: stop accepting, let active relays finish for DRAIN_TIMEOUT, then 1001, exit 0."""

from __future__ import annotations

import asyncio
import signal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from tests.proxy.conftest import ProxyProc, Target


async def test_sigterm_lets_active_relays_finish(target: Target) -> None:
    p = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}", "DRAIN_TIMEOUT": "60s"})
    try:
        async with connect(p.url(f"127.0.0.1:{target.port}")) as ws:
            reader, writer = await target.next()
            mark = p.mark()
            p.proc.send_signal(signal.SIGTERM)
            await p.await_line("draining 1 active connection", start=mark)
            # New connections are refused: the listening socket is closed.
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", p.port)
            # The active relay still works both ways.
            await ws.send(b"still here?")
            assert await reader.readexactly(11) == b"still here?"
            writer.write(b"yes")
            assert await ws.recv() == b"yes"
            # The database ends the session: the relay closes normally, the proxy exits 0.
            writer.close()
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1000
        assert await asyncio.to_thread(p.proc.wait, 30) == 0
        assert "drain timeout" not in p.log
    finally:
        p.stop()


async def test_sigterm_closes_leftover_relays_with_1001_after_drain_timeout(
    target: Target,
) -> None:
    p = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}", "DRAIN_TIMEOUT": "300ms"})
    try:
        async with connect(p.url(f"127.0.0.1:{target.port}")) as ws:
            reader, writer = await target.next()
            p.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1001 and ws.close_reason == "server shutting down"
        assert await reader.read() == b""  # the TCP side was closed too
        writer.close()
        assert await asyncio.to_thread(p.proc.wait, 30) == 0
        assert "drain timeout: closing 1 connection(s) with 1001" in p.log
    finally:
        p.stop()
