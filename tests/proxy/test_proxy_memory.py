"""Backpressure: a client that stops reading makes Postgres wait, not the proxy's memory grow."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from tests.conftest import ProxyProcess
from tests.proxy.conftest import RawWS, pg_query, pg_startup, rss_kib
from tools.pgcluster import Cluster

ROWS, ROW_BYTES = 300, 1_000_000  # ~300 MB streamed by the server


def _upstream_recv_queue(pid: int, pg_port: int) -> int:
    """Bytes the kernel holds for the proxy on its sockets to Postgres (it stopped reading)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        link = os.readlink(fd)
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[9] in inodes and int(f[2].rsplit(":", 1)[1], 16) == pg_port:
                total += int(f[4].split(":")[1], 16)
    return total


async def _wait_until_the_proxy_pushes_back(pg: Cluster, pid: int, within: float = 60) -> None:
    """Wait for the steady state that only backpressure produces: Postgres blocked writing
    (wait_event ClientWrite) while the kernel holds over 1 MiB the proxy declines to read.
    A proxy that buffered instead would read greedily and let Postgres finish the query."""
    sql = (
        "select wait_event from pg_stat_activity "
        "where usename = 'trust_user' and query like 'select repeat%'"
    )
    deadline = time.monotonic() + within
    while True:
        if _upstream_recv_queue(pid, pg.port) > 1 << 20:
            if (await asyncio.to_thread(pg.psql, sql)).strip() == "ClientWrite":
                return
        assert time.monotonic() < deadline, f"no backpressure; RSS {rss_kib(pid)} KiB"
        await asyncio.sleep(0.05)  # polling an observable condition, bounded by the deadline


async def test_memory_stays_flat_with_a_non_reading_client(
    pg: Cluster, proxy: ProxyProcess
) -> None:
    pid = proxy.proc.pid  # type: ignore[attr-defined]
    status, _, raw = await RawWS.connect(proxy.port, f"/v2?address=127.0.0.1:{pg.port}")
    assert status == 101
    before = rss_kib(pid)
    raw.send_frame(pg_startup("trust_user"))
    raw.send_frame(pg_query(f"select repeat('x', {ROW_BYTES}) from generate_series(1, {ROWS})"))
    await _wait_until_the_proxy_pushes_back(pg, pid)
    blocked = rss_kib(pid)
    assert blocked - before < 48 * 1024, f"proxy RSS grew {blocked - before} KiB while blocked"

    # Now read everything: nothing was lost while paused, and the peak stayed low.
    total, tail, ready = 0, b"", 0
    while ready < 2:  # ReadyForQuery after startup, then after the query
        opcode, payload = await raw.read_frame()
        assert opcode == 2
        total += len(payload)
        tail = (tail + payload)[-6:]
        ready += tail == b"Z\x00\x00\x00\x05I"
    raw.close()
    assert total > ROWS * ROW_BYTES
    peak = rss_kib(pid, "VmHWM")
    assert peak - before < 64 * 1024, f"proxy peak RSS {peak - before} KiB above start"
