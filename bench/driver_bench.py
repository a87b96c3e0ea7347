"""Driver speed, on demand: this driver (TCP, WebSocket) against asyncpg and psycopg.

    .venv/bin/python -m bench.driver_bench [--n 3000] [--connects 150] [--rounds 60] [--uvloop]
        [--profile] [--hop] [--only queries|bulk] [--repeats 5] [--loops asyncio,uvloop]
        [--profile-bulk]

One process, one private Postgres 15 + PostGIS cluster and one proxy process, both started
here. The UNESCO list (WHC_DATA, default ../shared/data/whc-sites-2021.csv) is loaded into a
table whose ``category`` is a Postgres ENUM, so every client meets a type it cannot know in
advance. Measured, per client, on an open connection: ``select 1`` and the 10-nearest-sites
KNN query (GiST on geography); and connect + first query. Clients run interleaved, round by
round, so background noise hits all alike. Round trips of the first KNN query are counted by
a TCP relay in front of the server. Prints medians, p95 and ratios to asyncpg; asserts nothing.
Then the bulk paths (``bench/bulk_bench.py``: 200k-row fetch, executemany, COPY out, cursor)
against asyncpg, on each loop of ``--loops``; ``--only bulk`` runs them alone (~2 min).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

import driver
from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop
from tools.relay import CountingRelay

from . import bulk_bench

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "whc-sites-2021.csv"
ROLE = "scram_user"
NEAREST = (
    "select id_no, name_en, category, st_distance(location, st_makepoint($1, $2)::geography) "
    "from bench_sites order by location <-> st_makepoint($1, $2)::geography limit 10"
)
SCHEMA = """
drop table if exists bench_sites;
drop type if exists bench_category;
create type bench_category as enum ('Cultural', 'Natural', 'Mixed');
create table bench_sites (
    id_no integer primary key, name_en text not null, category bench_category not null,
    states_name_en text, longitude float8, latitude float8,
    location geography(Point, 4326) not null
);
"""
INDEX = "create index on bench_sites using gist (location); analyze bench_sites"

Query = Callable[[str, tuple[Any, ...]], Awaitable[Any]]


@dataclass
class Client:
    """One contender: how to connect, how to run a query, how to close."""

    name: str
    connect: Callable[[], Awaitable[Any]]
    query: Callable[[Any, str, tuple[Any, ...]], Awaitable[Any]]
    close: Callable[[Any], Awaitable[Any]]
    samples: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # per-batch CPU s/query

    def add(self, what: str, seconds: float) -> None:
        self.samples.setdefault(what, []).append(seconds)


def read_sites(path: Path) -> list[tuple[Any, ...]]:
    """Rows with coordinates from the CSV (never copied into the repo)."""
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f):
            try:
                lon, lat = float(r["longitude"]), float(r["latitude"])
            except ValueError:
                continue
            rows.append((int(r["id_no"]), r["name_en"], r["category"], r["states_name_en"],
                         lon, lat))  # fmt: skip
    return rows


async def load(dsn: str, path: Path) -> int:
    conn = await driver.connect(dsn, sslmode="disable", allow_unencrypted_password=True)
    try:
        await conn.execute(SCHEMA)
        await conn.executemany(
            "insert into bench_sites values ($1, $2, $3::bench_category, $4, $5, $6, "
            "st_setsrid(st_makepoint($5, $6), 4326)::geography) on conflict do nothing",
            read_sites(path),
        )
        await conn.execute(INDEX)
        return int(await conn.fetchval("select count(*) from bench_sites"))
    finally:
        await conn.close()


def clients(pg: Cluster, ws_proxy: str) -> list[Client]:
    dsn = pg.dsn(ROLE)
    plain: dict[str, Any] = {"sslmode": "disable", "allow_unencrypted_password": True}

    async def drv_query(c: driver.Connection, sql: str, args: tuple[Any, ...]) -> Any:
        return await c.fetch(sql, *args)

    async def apg_query(c: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> Any:
        return await c.fetch(sql, *args)

    async def pg3_query(c: psycopg.AsyncConnection[Any], sql: str, args: tuple[Any, ...]) -> Any:
        cur = await c.execute(sql.replace("$1", "%(a)s").replace("$2", "%(b)s"),
                              {"a": args[0], "b": args[1]} if args else None)  # fmt: skip
        return await cur.fetchall()

    async def close(c: Any) -> None:
        await c.close()

    return [
        Client("driver tcp", lambda: driver.connect(dsn, **plain), drv_query, close),
        Client(
            "driver ws",
            lambda: driver.connect(dsn, ws_proxy=ws_proxy, use_secure_websocket=False, **plain),
            drv_query,
            close,
        ),
        Client("asyncpg tcp", lambda: asyncpg.connect(dsn, ssl=False), apg_query, close),
        Client(
            "psycopg tcp",
            lambda: psycopg.AsyncConnection.connect(dsn, sslmode="disable", autocommit=True),
            pg3_query,
            close,
        ),
    ]


async def connects(cl: Client) -> None:
    clock = time.perf_counter
    t0 = clock()
    conn = await cl.connect()
    await cl.query(conn, "select 1", ())
    cl.add("connect + select 1", clock() - t0)
    await cl.close(conn)


async def batch(
    cl: Client, conn: Any, what: str, sql: str, points: list[tuple[float, float]], k: int
) -> None:
    """k timed queries in a row; the client's CPU time (user + system) is kept per query too."""
    clock = time.perf_counter
    cpu0 = time.process_time()
    for i in range(k):
        args = points[i % len(points)] if points else ()
        t0 = clock()
        rows = await cl.query(conn, sql, args)
        cl.add(what, clock() - t0)
    cl.cpu.setdefault(what, []).append((time.process_time() - cpu0) / k)
    assert len(rows) == (10 if points else 1)


async def round_trips(pg: Cluster, proxy_port: int) -> dict[str, tuple[int, int]]:
    """Round trips of a first ``select 1`` and then a first KNN query on a fresh connection."""
    out: dict[str, tuple[int, int]] = {}
    point = (2.35, 48.85)
    async with (
        CountingRelay("127.0.0.1", pg.port) as tcp,
        CountingRelay("127.0.0.1", proxy_port) as ws,
    ):
        dsn = pg.dsn(ROLE).replace(f":{pg.port}/", f":{tcp.port}/")
        plain: dict[str, Any] = {"sslmode": "disable", "allow_unencrypted_password": True}
        cases: list[tuple[str, Callable[[], Awaitable[Any]], CountingRelay]] = [
            ("driver tcp", lambda: driver.connect(dsn, **plain), tcp),
            (
                "driver ws",
                lambda: driver.connect(
                    pg.dsn(ROLE),
                    ws_proxy=f"127.0.0.1:{ws.port}/v2",
                    use_secure_websocket=False,
                    **plain,
                ),
                ws,
            ),
            ("asyncpg tcp", lambda: asyncpg.connect(dsn, ssl=False), tcp),
        ]
        for name, connect, relay in cases:
            conn = await connect()
            rc = relay.last()
            start = rc.round_trips
            await conn.fetch("select 1")
            mid = rc.round_trips
            await conn.fetch(NEAREST, *point)
            out[name] = (mid - start, rc.round_trips - mid)
            await conn.close()
        pconn = await psycopg.AsyncConnection.connect(dsn, sslmode="disable", autocommit=True)
        rc = tcp.last()
        start = rc.round_trips
        await pconn.execute("select 1")
        mid = rc.round_trips
        await pconn.execute(NEAREST.replace("$1", "%(a)s").replace("$2", "%(b)s"),
                            {"a": point[0], "b": point[1]})  # fmt: skip
        out["psycopg tcp"] = (mid - start, rc.round_trips - mid)
        await pconn.close()
    return out


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1]


def report(cls: list[Client], rts: dict[str, tuple[int, int]]) -> None:
    base = {k: statistics.median(v) for k, v in cls[2].samples.items()}
    for what in ("select 1", "nearest 10", "connect + select 1"):
        print(f"\n{what}  (ms; ratio = median / asyncpg tcp median; cpu = this process, per op)")
        print(f"  {'client':<13}{'median':>9}{'p95':>9}{'min':>9}{'ratio':>8}{'cpu':>9}{'n':>7}")
        for cl in cls:
            xs = cl.samples[what]
            med = statistics.median(xs)
            cpu = f"{statistics.median(cl.cpu[what]) * 1e3:9.3f}" if what in cl.cpu else " " * 9
            print(f"  {cl.name:<13}{med * 1e3:9.3f}{p95(xs) * 1e3:9.3f}{min(xs) * 1e3:9.3f}"
                  f"{med / base[what]:8.2f}{cpu}{len(xs):7d}")  # fmt: skip
    print("\nround trips on a fresh connection: first `select 1`, then first KNN (enum column)")
    for name, (one, knn) in rts.items():
        print(f"  {name:<13}{one:>3}{knn:>4}")
    drv, ws = cls[0].samples["nearest 10"], cls[1].samples["nearest 10"]
    print(f"\ntargets: driver tcp / asyncpg = {statistics.median(drv) / base['nearest 10']:.2f} "
          f"(<= 1.3), driver ws / asyncpg tcp = {statistics.median(ws) / base['nearest 10']:.2f}"
          " (<= 1.75), on the nearest query")  # fmt: skip


async def run(args: argparse.Namespace, pg: Cluster, proxy_port: int) -> None:
    n = await load(pg.dsn(ROLE), Path(os.environ.get("WHC_DATA", DATA)))
    loop = type(asyncio.get_running_loop()).__module__
    print(f"loaded {n} sites; python {sys.version.split()[0]}, asyncpg {asyncpg.__version__}, "
          f"psycopg {psycopg.__version__}, loop {loop}")  # fmt: skip
    rnd = random.Random(7)
    points = [(rnd.uniform(-180, 180), rnd.uniform(-60, 70)) for _ in range(500)]
    cls = clients(pg, f"127.0.0.1:{proxy_port}/v2")
    conns = [await cl.connect() for cl in cls]
    for cl, conn in zip(cls, conns, strict=True):  # warm up: caches, type introspection
        for _ in range(50):
            await cl.query(conn, "select 1", ())
            await cl.query(conn, NEAREST, points[0])
    per = max(1, args.n // args.rounds)
    # Round by round, in a shuffled order, so load from elsewhere hits every client alike.
    for r in range(args.rounds):
        order = list(zip(cls, conns, strict=True))
        rnd.shuffle(order)
        for cl, conn in order:
            await batch(cl, conn, "select 1", "select 1", [], per)
            await batch(cl, conn, "nearest 10", NEAREST, points[r * per :] or points, per)
    for cl, conn in zip(cls, conns, strict=True):
        await cl.close(conn)
    for _ in range(args.connects):
        for cl in rnd.sample(cls, len(cls)):
            await connects(cl)
    report(cls, await round_trips(pg, proxy_port))
    if args.hop:
        await hop(cls, points, args.rounds)
    if args.profile:
        await profile(cls[0], points)


async def hop(cls: list[Client], points: list[tuple[float, float]], rounds: int) -> None:
    """The WebSocket path without the driver's protocol work: the same Bind/Execute/Sync bytes
    written on each connection's raw stream and read up to ReadyForQuery. Its difference
    between TCP and WebSocket is the proxy hop plus the client's WebSocket framing, nothing else."""
    from driver.protocol import messages as m

    conns = [await cl.connect() for cl in cls[:2]]
    reqs = []
    for conn in conns:
        await _raw_round_trip(conn._session._stream, m.parse("hop", NEAREST) + m.SYNC)
    for x, y in points[:100]:
        values = [repr(x).encode(), repr(y).encode()]
        reqs.append(m.bind("", "hop", values) + m.execute("", 0) + m.SYNC)
    samples: list[list[float]] = [[], []]
    clock = time.perf_counter
    for _ in range(rounds):
        for i in random.sample(range(2), 2):
            stream = conns[i]._session._stream
            for req in reqs:
                t0 = clock()
                await _raw_round_trip(stream, req)
                samples[i].append(clock() - t0)
    for conn in conns:
        await conn.close()
    print("\nsame KNN bytes on the raw streams (us): the WebSocket path without driver work")
    for name, xs in zip(("tcp stream", "ws stream"), samples, strict=True):
        print(f"  {name:<13}{statistics.median(xs) * 1e6:9.1f}{p95(xs) * 1e6:9.1f}"
              f"{min(xs) * 1e6:9.1f}")  # fmt: skip
    added = statistics.median(samples[1]) - statistics.median(samples[0])
    print(f"  added by the proxy hop + WebSocket framing: {added * 1e6:.1f} us median, "
          f"{(min(samples[1]) - min(samples[0])) * 1e6:.1f} us min")  # fmt: skip


async def _raw_round_trip(stream: Any, request: bytes) -> None:
    await stream.write(request)
    data = await stream.read(1 << 16)
    while not data.endswith(b"Z\0\0\0\x05I"):
        data += await stream.read(1 << 16)


async def profile(cl: Client, points: list[tuple[float, float]]) -> None:
    """Where this driver's client time goes on the KNN query (cProfile, by own time)."""
    import cProfile
    import pstats

    conn = await cl.connect()
    for p in points[:50]:
        await cl.query(conn, NEAREST, p)
    prof = cProfile.Profile()
    prof.enable()
    for i in range(3000):
        await cl.query(conn, NEAREST, points[i % len(points)])
    prof.disable()
    await cl.close(conn)
    print(f"\nprofile: {cl.name}, 3000 KNN queries")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="queries per client and kind")
    ap.add_argument("--connects", type=int, default=150, help="connects per client")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    ap.add_argument("--profile", action="store_true", help="cProfile the driver's KNN loop")
    ap.add_argument("--hop", action="store_true", help="raw KNN bytes on TCP vs WS streams")
    ap.add_argument("--only", choices=("queries", "bulk"), help="one section (default: both)")
    ap.add_argument("--repeats", type=int, default=5, help="bulk: timed runs per operation")
    ap.add_argument("--loops", default="asyncio,uvloop", help="bulk: event loops, in order")
    ap.add_argument("--profile-bulk", action="store_true", help="cProfile the bulk paths")
    args = ap.parse_args()
    pg = start_temp_cluster()
    proc = None
    try:
        port = free_port()
        env = {"LISTEN_PORT": f"127.0.0.1:{port}",
               "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:({pg.port}|\d+)"}  # fmt: skip
        proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "listening", env=env)
        if args.only != "bulk":
            bulk_bench.run_loop("uvloop" if args.uvloop else "asyncio", run(args, pg, port))
        if args.only != "queries":
            bulk_bench.main(pg.dsn(ROLE), f"127.0.0.1:{port}/v2", args.loops.split(","),
                            args.repeats, args.profile_bulk)  # fmt: skip
    finally:
        if proc is not None:
            stop(proc)
        destroy(pg)


if __name__ == "__main__":
    main()
