"""Connect + first result, on demand: latency over a slow link, round trips, CPU per connect.

    .venv/bin/python -m bench.connect_bench [--n 20] [--delay-ms 10]

Latency: a relay adds ``--delay-ms`` per direction between the client and the WebSocket
proxy (the client's trip to the database's region), and counts round trips per connection
(the WebSocket closing handshake excluded). Contenders: this driver over the WebSocket with
and without Postgres TLS, with SCRAM and with a pipelined cleartext password, and the real
@neondatabase/serverless (from tests/proxy/js/node_modules) through the same proxy and relay.

CPU: this thread's CPU time (``time.thread_time``; the relay and proxy run elsewhere) for one
connect + ``select 1`` with no added delay, this driver vs asyncpg, TLS + SCRAM-SHA-256 (4096
iterations), plus Node's process CPU for Neon's driver. Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import driver
from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop
from tools.relay import CountingRelay

ROOT = Path(__file__).resolve().parents[1]
NEON_JS_DIR = Path(os.environ.get("NEON_JS_DIR", ROOT / "tests" / "proxy" / "js"))


class ThreadRelay:
    """A CountingRelay on its own event loop thread, so its work and delays never touch the
    loop (or the CPU clock) of the client being measured."""

    def __init__(self, port: int, delay: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.relay = CountingRelay("127.0.0.1", port, delay=delay)
        asyncio.run_coroutine_threadsafe(self.relay.__aenter__(), self.loop).result(10)
        self.port = self.relay.port

    def round_trips(self) -> list[int]:
        """Per connection, round trips up to the closing handshake."""
        return [c.before_close if c.before_close is not None else c.round_trips
                for c in self.relay.connections]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.relay.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class Result:
    name: str
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)

    def line(self) -> str:
        wall = statistics.median(self.wall_ms)
        cpu = statistics.median(self.cpu_ms)
        rts = sorted(set(self.round_trips))
        rt = "/".join(map(str, rts)) if rts else "-"
        return f"{self.name:<48} {wall:8.2f} {cpu:8.2f}  {rt:>5}"


async def measure(name: str, n: int, open_: Callable[[], Awaitable[Any]],
                  close: Callable[[Any], Awaitable[None]],
                  relay: ThreadRelay | None = None) -> Result:
    """Time ``open_()`` (connect + first result) n times after two warm-ups."""
    result = Result(name)
    for i in range(n + 2):
        t0, c0 = time.perf_counter(), time.thread_time()
        conn = await open_()
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        await close(conn)
        if i >= 2:
            result.wall_ms.append(wall * 1000)
            result.cpu_ms.append(cpu * 1000)
    if relay is not None:
        result.round_trips = relay.round_trips()[2:]
    return result


async def ours(pg: Cluster, role: str, n: int, relay: ThreadRelay | None, name: str,
               **kw: Any) -> Result:
    async def open_() -> driver.Connection:
        conn = await driver.connect(pg.dsn(role), **kw)
        await conn.fetchval("select 1")
        return conn

    async def close(conn: driver.Connection) -> None:
        await conn.close()

    return await measure(name, n, open_, close, relay)


async def asyncpg_tls(pg: Cluster, n: int) -> Result:
    import ssl

    import asyncpg

    assert pg.certs is not None
    ctx = ssl.create_default_context(cafile=str(pg.certs.ca_cert))

    async def open_() -> Any:
        conn = await asyncpg.connect(pg.dsn("scram_user"), ssl=ctx)
        await conn.fetchval("select 1")
        return conn

    async def close(conn: Any) -> None:
        await conn.close()

    return await measure("asyncpg TCP, TLS verify-full, SCRAM", n, open_, close)


def neon(pg: Cluster, role: str, pipeline: bool, ws_proxy: str, n: int,
         relay: ThreadRelay) -> Result | str:
    node = shutil.which("node")
    if node is None or not (NEON_JS_DIR / "node_modules" / "@neondatabase").is_dir():
        return f"(Neon's driver not found under {NEON_JS_DIR}/node_modules: skipped)"
    before = len(relay.relay.connections)
    env = {**os.environ, "NEON_JS_DIR": str(NEON_JS_DIR), "DSN": pg.dsn(role),
           "WS_PROXY": ws_proxy, "PIPELINE": "password" if pipeline else "false", "N": str(n)}
    out = subprocess.run([node, str(ROOT / "bench" / "neon_connect.mjs")], env=env,
                         capture_output=True, text=True, timeout=600, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    how = "pipelined password" if pipeline else "SCRAM"
    result = Result(f"Neon JS WS, no PG TLS, {how}", data["wall_ms"], data["cpu_ms"])
    result.round_trips = relay.round_trips()[before + 2:]
    return result


async def run(args: argparse.Namespace) -> None:
    pg = start_temp_cluster()
    proxy_port = free_port()
    env = {"LISTEN_PORT": f"127.0.0.1:{proxy_port}",
           "ALLOW_ADDR_REGEX": rf"(127\.0\.0\.1|localhost):{pg.port}", "LOG_CONN_INFO": "false"}
    proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "listening", env=env)
    n = args.n
    try:
        assert pg.certs is not None
        ca = str(pg.certs.ca_cert)
        print(f"connect + first result, {args.delay_ms:g} ms added per direction between client "
              f"and proxy; n={n}, medians")
        print(f"{'':<48} {'wall ms':>8} {'cpu ms':>8}  {'RTs':>5}")
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("WS, no PG TLS, SCRAM", "scram_user", {"sslmode": "disable"}),
            ("WS, no PG TLS, pipelined password", "clear_user",
             {"sslmode": "disable", "pipeline_connect": "password",
              "allow_unencrypted_password": True}),
            ("WS, PG TLS 1.3 verify-full, SCRAM-PLUS", "scram_user",
             {"sslmode": "verify-full", "sslrootcert": ca, "host": "localhost"}),
            ("WS, PG TLS 1.3 verify-full, pipelined password", "clear_user",
             {"sslmode": "verify-full", "sslrootcert": ca, "host": "localhost",
              "pipeline_connect": "password"}),
        ]
        for name, role, kw in cases:
            relay = ThreadRelay(proxy_port, args.delay_ms / 1000)
            try:
                r = await ours(pg, role, n, relay, f"this driver {name}",
                               ws_proxy=f"127.0.0.1:{relay.port}/v2",
                               use_secure_websocket=False, **kw)
            finally:
                relay.close()
            print(r.line())
        for role, pipeline in (("scram_user", False), ("clear_user", True)):
            relay = ThreadRelay(proxy_port, args.delay_ms / 1000)
            try:
                res = neon(pg, role, pipeline, f"127.0.0.1:{relay.port}/v2", n, relay)
            finally:
                relay.close()
            print(res.line() if isinstance(res, Result) else res)

        print("\nCPU per connect + first result, no added delay (this thread; Node: process)")
        print(f"{'':<48} {'wall ms':>8} {'cpu ms':>8}")
        cpu_cases: list[tuple[str, dict[str, Any]]] = [
            ("TCP, no TLS, SCRAM", {"sslmode": "disable"}),
            ("TCP, TLS verify-full, SCRAM-PLUS", {"sslmode": "verify-full", "sslrootcert": ca}),
            ("TCP, TLS require, SCRAM-PLUS", {"sslmode": "require"}),
            ("WS, TLS verify-full, SCRAM-PLUS",
             {"sslmode": "verify-full", "sslrootcert": ca,
              "ws_proxy": f"127.0.0.1:{proxy_port}/v2", "use_secure_websocket": False}),
        ]
        for name, kw in cpu_cases:
            r = await ours(pg, "scram_user", n * 2, None, f"this driver {name}", **kw)
            print(r.line())
        print((await asyncpg_tls(pg, n * 2)).line())
    finally:
        stop(proc)
        destroy(pg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="connects per contender")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="added per direction")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
