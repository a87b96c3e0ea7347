"""Backpressure: a client that stops reading makes Postgres wait, not the proxy's memory grow."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import ProxyProcess
from tests.proxy.conftest import ProxyProc, RawWS, Target, pg_query, pg_startup, rss_kib
from tools.pgcluster import Cluster, free_port

ROWS, ROW_BYTES = 300, 1_000_000  # ~300 MB streamed by the server


def _recv_queue(pid: int, port: int, side: str = "remote") -> int:
    """Bytes the kernel holds, unread by the proxy, on its sockets whose `side` port is `port`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        link = os.readlink(fd)
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            addr = f[2] if side == "remote" else f[1]
            if f[9] in inodes and int(addr.rsplit(":", 1)[1], 16) == port:
                total += int(f[4].split(":")[1], 16)
    return total


async def _wait_until_the_proxy_pushes_back(pg: Cluster, pid: int, within: float = 60) -> None:
    """Wait for the steady state that only backpressure produces: Postgres blocked writing
    (wait_event ClientWrite) while the kernel holds bytes the proxy declines to read (Recv-Q
    over 64 KiB at two looks in a row). A proxy that buffered instead would read greedily and
    its memory would show it here or, at the latest, in the peak measured at the end."""
    sql = (
        "select wait_event from pg_stat_activity "
        "where usename = 'trust_user' and query like 'select repeat%'"
    )
    deadline, streak, seen = time.monotonic() + within, 0, []
    while True:
        queued = _recv_queue(pid, pg.port)
        waiting = (await asyncio.to_thread(pg.psql, sql)).strip()
        seen = [*seen[-5:], (queued, waiting)]
        streak = streak + 1 if queued >= 64 * 1024 and waiting == "ClientWrite" else 0
        if streak == 2:
            return
        assert time.monotonic() < deadline, f"no backpressure; RSS {rss_kib(pid)} KiB {seen}"
        await asyncio.sleep(0.05)  # polling an observable condition, bounded by the deadline


async def test_memory_stays_flat_with_a_non_reading_client(
    pg: Cluster, proxy: ProxyProcess
) -> None:
    pid = proxy.proc.pid  # type: ignore[attr-defined]
    status, _, raw = await RawWS.connect(proxy.port, f"/v2?address=127.0.0.1:{pg.port}")
    assert status == 101
    before = rss_kib(pid)
    t_start = time.monotonic()
    raw.send_frame(pg_startup("trust_user"))
    raw.send_frame(pg_query(f"select repeat('x', {ROW_BYTES}) from generate_series(1, {ROWS})"))
    await _wait_until_the_proxy_pushes_back(pg, pid)
    blocked = rss_kib(pid)
    assert blocked - before < 48 * 1024, f"proxy RSS grew {blocked - before} KiB while blocked"

    # Now read everything: nothing was lost while paused, and the peak stayed low.
    total, tail = 0, b""
    # Until the ReadyForQuery that ends the query (the startup one may share a frame).
    while not (total > ROWS * ROW_BYTES and tail == b"Z\x00\x00\x00\x05I"):
        opcode, payload = await raw.read_frame()
        if opcode == 0x9:  # the proxy's keepalive ping
            continue
        assert opcode == 2, (opcode, payload[:100], time.monotonic() - t_start)
        total += len(payload)
        tail = (tail + payload)[-6:]
    raw.close()
    assert total > ROWS * ROW_BYTES
    peak = rss_kib(pid, "VmHWM")
    assert peak - before < 64 * 1024, f"proxy peak RSS {peak - before} KiB above start"


async def test_memory_stays_flat_when_the_target_stops_reading(target: Target) -> None:
    """The other direction: a client uploading 200 MB to a target that reads nothing."""
    p = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}"})
    try:
        ws = await connect(p.url(f"127.0.0.1:{target.port}"), compression=None)
        reader, writer = await target.next()
        before = rss_kib(p.proc.pid)
        chunk, count = b"z" * (1 << 20), 200

        async def upload() -> None:
            for _ in range(count):
                await ws.send(chunk)

        sending = asyncio.create_task(upload())
        deadline, streak = time.monotonic() + 60, 0
        # The proxy stopped reading the client: the kernel holds the client's bytes for it.
        while streak < 3:
            queued = _recv_queue(p.proc.pid, p.port, side="local")
            streak = streak + 1 if queued >= 64 * 1024 else 0
            assert time.monotonic() < deadline, f"no backpressure; RSS {rss_kib(p.proc.pid)}"
            assert not sending.done(), "the whole upload was accepted: someone buffers it"
            await asyncio.sleep(0.05)  # polling an observable condition, bounded
        grown = rss_kib(p.proc.pid) - before
        assert grown < 48 * 1024, f"proxy RSS grew {grown} KiB with the target not reading"
        received = 0
        while received < count * len(chunk):
            received += len(await reader.read(1 << 20))
        await sending
        assert received == count * len(chunk)
        await ws.close()
        writer.close()
    finally:
        p.stop()


async def test_a_client_that_pings_and_never_reads_is_paused_then_closed_1008(
    target: Target,
) -> None:
    """Every ping asks for a pong; a client that never reads them must not grow the proxy
    (before the fix: 30 -> 235 MiB in 10 s from this one connection). Reading it pauses once
    its write buffer is full, and pongs that still pile up past a bound close it with 1008."""
    p = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}"})
    try:
        status, _, raw = await RawWS.connect(p.port, f"/v2?address=127.0.0.1:{target.port}")
        assert status == 101
        _, writer = await target.next()
        raw.writer.transport.set_write_buffer_limits(high=1 << 20)
        before = rss_kib(p.proc.pid)
        mark = p.mark()
        ping = raw.frame(b"p" * 125, opcode=0x9)
        burst = ping * 4000  # 0.5 MB of pings per write: 0.5 MB of pongs nobody reads
        deadline, sent = time.monotonic() + 30, 0
        closed: str | None = None
        while closed is None:
            assert time.monotonic() < deadline, f"never closed; RSS {rss_kib(p.proc.pid)} KiB"
            grown = rss_kib(p.proc.pid) - before
            assert grown < 32 * 1024, f"proxy RSS grew {grown} KiB after {sent} pings"
            if any(" 1008 " in line for line in p.lines[mark:]):
                closed = "logged"
                break
            try:
                raw.writer.write(burst)
                async with asyncio.timeout(0.2):
                    await raw.writer.drain()
                sent += 4000
            except TimeoutError:
                pass  # the proxy stopped reading us: keep checking its log and memory
            except OSError:
                closed = "reset"
        line = await p.await_line(r"conn \d+ close .*reason=closed by proxy 1008", start=mark)
        assert "client does not read" in line
        grown = rss_kib(p.proc.pid, "VmHWM") - before
        assert grown < 32 * 1024, f"proxy peak RSS {grown} KiB above start"
        raw.close()
        writer.close()
    finally:
        p.stop()


async def test_memory_budget_refuses_new_upgrades_and_is_a_metric(target: Target) -> None:
    """A client that stops reading fills its relay's write buffer (1 MiB); with a 256 KiB
    budget the next upgrade gets 503 until the bytes are read, and /metrics shows the bytes."""
    metrics_port = free_port()
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}",
            "MEMORY_BUDGET": "256KiB",
            "PROMETHEUS_BIND": f"127.0.0.1:{metrics_port}",
        }
    )

    async def buffered(name: str = "wsproxy_buffered_bytes") -> float:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
        return float(line.split()[-1])

    try:
        status, _, raw = await RawWS.connect(p.port, f"/v2?address=127.0.0.1:{target.port}")
        assert status == 101
        _, writer = await target.next()
        assert await buffered() == 0
        raw.writer.transport.pause_reading()  # the client reads nothing for now
        writer.write(os.urandom(8 << 20))
        deadline = time.monotonic() + 30
        while (held := await buffered()) <= 256 * 1024:
            assert time.monotonic() < deadline, f"buffers never filled: {held}"
            await asyncio.sleep(0.05)  # polling an observable condition, bounded
        # One relay holds it all, bounded by its write buffer's limit (1 MiB) and a read.
        largest = await buffered("wsproxy_relay_buffered_bytes_max")
        assert 256 * 1024 < largest < 2 * 1024 * 1024, largest
        with pytest.raises(InvalidStatus) as info:
            await connect(p.url(f"127.0.0.1:{target.port}"))
        assert info.value.response.status_code == 503
        assert b"memory budget" in info.value.response.body
        raw.writer.transport.resume_reading()
        received = 0
        while received < 8 << 20:
            _, payload = await raw.read_frame()
            received += len(payload)
        while await buffered() > 256 * 1024:
            assert time.monotonic() < deadline, "buffers never drained"
            await asyncio.sleep(0.05)  # polling an observable condition, bounded
        async with connect(p.url(f"127.0.0.1:{target.port}")):
            await target.next()
        raw.close()
        writer.close()
    finally:
        p.stop()


async def test_a_huge_frame_header_allocates_nothing_up_front(target: Target) -> None:
    """Frame headers claiming 4 GiB and 2^62 bytes: with no size limit set (MAX_MESSAGE_SIZE=0)
    the proxy holds what arrived, no more; with the default limit it closes 1009 at once."""
    unlimited = ProxyProc(
        {"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}", "MAX_MESSAGE_SIZE": "0"}
    )
    limited = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}"})
    try:
        for claimed in (1 << 32, 1 << 62):
            status, _, raw = await RawWS.connect(
                unlimited.port, f"/v2?address=127.0.0.1:{target.port}"
            )
            assert status == 101
            _, writer = await target.next()
            before = rss_kib(unlimited.proc.pid)
            raw.writer.write(struct.pack("!BBQ", 0x82, 0xFF, claimed) + b"\0\0\0\0")
            raw.writer.write(b"x" * (1 << 20))
            raw.send_frame(b"", opcode=0x9)  # part of the payload, as far as the proxy knows
            await raw.writer.drain()
            deadline = time.monotonic() + 30
            # The proxy has read it all (nothing left in its socket's receive queue).
            while _recv_queue(unlimited.proc.pid, unlimited.port, side="local"):
                assert time.monotonic() < deadline, "the proxy stopped reading"
                await asyncio.sleep(0.05)  # polling an observable condition, bounded
            grown = rss_kib(unlimited.proc.pid) - before
            assert grown < 16 * 1024, f"RSS grew {grown} KiB for a {claimed}-byte header"
            raw.close()
            writer.close()
        status, _, raw = await RawWS.connect(limited.port, f"/v2?address=127.0.0.1:{target.port}")
        assert status == 101
        _, writer = await target.next()
        raw.writer.write(struct.pack("!BBQ", 0x82, 0xFF, 1 << 62) + b"\0\0\0\0")
        opcode, payload = await raw.read_frame()
        while opcode == 0x9:
            opcode, payload = await raw.read_frame()
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009
        raw.close()
        writer.close()
    finally:
        unlimited.stop()
        limited.stop()
