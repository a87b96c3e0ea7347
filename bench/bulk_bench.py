"""Bulk paths, on demand: this driver (TCP, WebSocket) against asyncpg, on asyncio and uvloop.

    .venv/bin/python -m bench.driver_bench --only bulk [--repeats 5] [--loops asyncio,uvloop]
        [--profile-bulk]

Four operations on rows of (int4, text, float8, timestamptz, numeric, bool): a fetch of
200k rows, ``executemany`` of 20k rows, COPY out of 200k rows (``copy_from_table`` to an
async callback) and a cursor reading 200k rows with prefetch 1000 inside a transaction.
Run by ``bench/driver_bench.py``, which starts the cluster and the proxy. Contenders take
turns, in a shuffled order each repeat, so background load hits all alike; what is printed
is the median wall time of each, the CPU time this process spent, and the ratio to asyncpg
over TCP (the WebSocket rows too: asyncpg has no WebSocket transport). Asserts nothing but
that every contender moved the same rows.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

import driver

ROWS = 200_000
MANY = 20_000
PREFETCH = 1000
SCHEMA = f"""
drop table if exists bench_bulk, bench_bulk_in;
create unlogged table bench_bulk as
    select i::int4 as i, 'row ' || md5(i::text) as t, i * 1.25::float8 as f,
           timestamptz '2020-01-01 00:00:00+00' + i * interval '1.5 second' as ts,
           (i / 100.0)::numeric(12, 2) as n, i % 3 = 0 as b
    from generate_series(1, {ROWS}) as i;
create unlogged table bench_bulk_in (like bench_bulk);
analyze bench_bulk;
"""
FETCH = "select i, t, f, ts, n, b from bench_bulk"
INSERT = "insert into bench_bulk_in values ($1, $2, $3, $4, $5, $6)"
OPERATIONS = ("fetch 200k", "executemany 20k", "copy out 200k", "cursor 200k")


def many_rows() -> list[tuple[Any, ...]]:
    """The executemany() arguments: Python values of the six column types."""
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return [
        (i, f"row {i:032x}", i * 1.25, start + timedelta(seconds=i * 1.5),
         Decimal(i) / 100, i % 3 == 0)
        for i in range(MANY)
    ]  # fmt: skip


async def fetch(conn: Any) -> int:
    return len(await conn.fetch(FETCH))


async def executemany(conn: Any, rows: list[tuple[Any, ...]]) -> int:
    await conn.executemany(INSERT, rows)
    return len(rows)


async def copy_out(conn: Any) -> int:
    size = 0

    async def sink(data: bytes) -> None:
        nonlocal size
        size += len(data)

    await conn.copy_from_table("bench_bulk", output=sink)
    return size


async def cursor(conn: Any) -> int:
    n = 0
    async with conn.transaction():
        async for _ in conn.cursor(FETCH, prefetch=PREFETCH):
            n += 1
    return n


@dataclass
class Contender:
    name: str
    transport: str
    connect: Callable[[], Awaitable[Any]]
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)


def contenders(dsn: str, ws_proxy: str) -> list[Contender]:
    plain: dict[str, Any] = {"sslmode": "disable", "allow_unencrypted_password": True}
    return [
        Contender("driver", "tcp", lambda: driver.connect(dsn, **plain)),
        Contender(
            "driver",
            "ws",
            lambda: driver.connect(dsn, ws_proxy=ws_proxy, use_secure_websocket=False, **plain),
        ),
        Contender("asyncpg", "tcp", lambda: asyncpg.connect(dsn, ssl=False)),
    ]


async def one(conn: Any, what: str, rows: list[tuple[Any, ...]]) -> int:
    """Run one operation (untimed: an executemany() starts on an empty table)."""
    if what == "fetch 200k":
        return await fetch(conn)
    if what == "executemany 20k":
        return await executemany(conn, rows)
    if what == "copy out 200k":
        return await copy_out(conn)
    return await cursor(conn)


async def truncate(conn: Any, what: str) -> None:
    if what == "executemany 20k":
        await conn.execute("truncate bench_bulk_in")


async def measure(dsn: str, ws_proxy: str, repeats: int) -> list[Contender]:
    """Every operation, ``repeats`` times per contender, contenders shuffled each time."""
    rows = many_rows()
    cons = contenders(dsn, ws_proxy)
    conns = [await c.connect() for c in cons]
    rnd = random.Random(11)
    clock = time.perf_counter
    try:
        for what in OPERATIONS:  # one untimed warm-up each: statement caches, introspection
            sizes = set()
            for conn in conns:
                await truncate(conn, what)
                sizes.add(await one(conn, what, rows))
            if len(sizes) != 1:
                raise AssertionError(f"{what}: contenders disagree on the amount: {sizes}")
        for _ in range(repeats):
            for what in OPERATIONS:
                order = list(zip(cons, conns, strict=True))
                rnd.shuffle(order)
                for con, conn in order:
                    await truncate(conn, what)
                    cpu0, t0 = time.process_time(), clock()
                    await one(conn, what, rows)
                    con.wall.setdefault(what, []).append(clock() - t0)
                    con.cpu.setdefault(what, []).append(time.process_time() - cpu0)
    finally:
        for conn in conns:
            await conn.close()
    return cons


def report(cons: list[Contender], loop: str) -> list[tuple[str, str, str, float, float, float]]:
    """Print the table (ms); returns its rows (operation, transport, loop, ours, asyncpg, ratio)."""
    base = next(c for c in cons if c.name == "asyncpg")
    table = []
    print(f"\nbulk paths on {loop} (ms, medians; ratio = ours / asyncpg tcp; cpu = this process)")
    print(f"  {'operation':<17}{'transport':<10}{'ours':>9}{'asyncpg':>9}{'ratio':>7}"
          f"{'min':>9}{'cpu':>9}{'apg cpu':>9}{'n':>4}")  # fmt: skip
    for what in OPERATIONS:
        apg = statistics.median(base.wall[what])
        apg_cpu = statistics.median(base.cpu[what])
        for con in cons:
            if con is base:
                continue
            ours = statistics.median(con.wall[what])
            cpu = statistics.median(con.cpu[what])
            n = len(con.wall[what])
            print(f"  {what:<17}{con.transport:<10}{ours * 1e3:9.1f}{apg * 1e3:9.1f}"
                  f"{ours / apg:7.2f}{min(con.wall[what]) * 1e3:9.1f}{cpu * 1e3:9.1f}"
                  f"{apg_cpu * 1e3:9.1f}{n:4d}")  # fmt: skip
            table.append((what, con.transport, loop, ours * 1e3, apg * 1e3, ours / apg))
    return table


async def profile(dsn: str) -> None:
    """Where this driver's client time goes on each bulk operation over TCP (cProfile)."""
    import cProfile
    import pstats

    rows = many_rows()
    conn = await driver.connect(dsn, sslmode="disable", allow_unencrypted_password=True)
    try:
        for what in OPERATIONS:
            await truncate(conn, what)
            await one(conn, what, rows)
            await truncate(conn, what)
            prof = cProfile.Profile()
            prof.enable()
            await one(conn, what, rows)
            prof.disable()
            print(f"\nprofile: driver tcp, {what}")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(12)
    finally:
        await conn.close()


async def prepare(dsn: str) -> None:
    conn = await driver.connect(dsn, sslmode="disable", allow_unencrypted_password=True)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


def run_loop(loop: str, coro: Awaitable[Any]) -> Any:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    return asyncio.run(coro)  # type: ignore[arg-type]


def main(dsn: str, ws_proxy: str, loops: list[str], repeats: int, profile_too: bool) -> None:
    run_loop("asyncio", prepare(dsn))
    print(f"\nbulk: {ROWS} rows fetched, copied out, read by cursor (prefetch {PREFETCH}); "
          f"{MANY} by executemany; {repeats} repeats; asyncpg {asyncpg.__version__}")  # fmt: skip
    table = []
    for loop in loops:
        table += report(run_loop(loop, measure(dsn, ws_proxy, repeats)), loop)
    print("\nbulk summary (operation, transport, loop, ours ms, asyncpg ms, ratio)")
    for what, transport, loop, ours, apg, ratio in table:
        print(f"  | {what} | {transport} | {loop} | {ours:.1f} | {apg:.1f} | {ratio:.2f} |")
    if profile_too:
        run_loop("asyncio", profile(dsn))
