"""One-shot "connect + nearest query" over SQL over HTTP vs the WebSocket, on a slow link.

    .venv/bin/python -m bench.sqlhttp_bench [--n 20] [--delay-ms 10]

Starts its own cluster (PostGIS preloaded as in the demo; a synthetic grid of sites, never the
UNESCO list) and one proxy serving both the WebSocket relay and POST /sql. Prints figures;
asserts nothing.

Every contender reaches the proxy through its own delay relay (bench.connect_bench's, in a
process of its own): each chunk is delivered ``--delay-ms`` after it arrived, per direction,
so one round trip costs 2 x delay. The relay accepts the TCP connection itself without delay,
so a cold TCP connect costs nothing here: on a real link add one round trip (and one more for
TLS 1.3) to the "new TCP connection" lines. Contenders take turns, one query each per round:

- driver.http, kept alive: one client, each query one POST on the same connection;
- driver.http, new TCP connection: a new client per query;
- this driver over the WebSocket: connect (wait_ready=False: the query rides the last
  authentication flight) + query + close, with a pipelined password and with SCRAM;
- Neon's neon() (tests/proxy/js/node_modules, bench/neon_http.mjs) through our /sql: node's
  fetch keeps its connection alive; the first request of the process is reported apart.

The HTTP contenders are served by warm pooled backends; each WebSocket connect starts a new
backend, which also pays PostGIS's set-up on its first geography query (see README).

Then (unless ``--skip-app``) the app's cold cells (every request a new cell, so every request
queries the database) in ``DB_MODE=http`` vs ``DB_MODE=pool``, with bench.app_bench's client
and server (UNESCO list from WHC_DATA, loaded into the bench's own cluster, PostGIS preloaded),
no added delay, best of alternating rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.connect_bench import NEON_JS_DIR, DelayRelay, p95
from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop

ROOT = Path(__file__).resolve().parents[1]
WARMUPS = 2
PROBE = (2.3522, 48.8566)
NEAREST = """
SELECT id_no, name_en, ST_Y(location::geometry) AS latitude,
       ST_X(location::geometry) AS longitude,
       location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography AS distance
FROM whc_sites
ORDER BY location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography
LIMIT 10
"""
# Synthetic sites on a grid (the same shape as the Pyodide tests'): never rows of the list.
SITES_SQL = """
INSERT INTO whc_sites (id_no, name_en, category, states_name_en, iso_code, date_inscribed,
                       location)
SELECT i, 'Site ' || i, (ARRAY['Cultural','Natural','Mixed'])[1 + i % 3], 'Testland', 'tl',
       1978 + i % 40,
       ST_SetSRID(ST_MakePoint(-170 + (i % 40) * 8.6 + i * 0.0013,
                               -60 + (i / 40) * 4.8 + i * 0.0007), 4326)::geography
FROM generate_series(1, 1200) AS i;
GRANT SELECT ON whc_sites TO scram_user, clear_user;
"""


@dataclass
class Contender:
    name: str
    once: Callable[[], Awaitable[int]]  # runs one query, returns its row count
    wall_ms: list[float] = field(default_factory=list)

    def line(self, rt_ms: float) -> str:
        med = statistics.median(self.wall_ms)
        return (
            f"{self.name:<52} {min(self.wall_ms):6.1f} {med:6.1f} {p95(self.wall_ms):6.1f} "
            f"{med / rt_ms:6.2f}"
        )


def relay_port(relay: DelayRelay) -> int:
    return int(relay.ws_proxy.split("/")[0].rsplit(":", 1)[1])


async def latency(pg: Cluster, ws_port: int, sql_port: int, args: argparse.Namespace) -> None:
    import driver
    import driver.http

    scram, clear = pg.dsn("scram_user"), pg.dsn("clear_user")
    with contextlib.ExitStack() as stack:

        def relay(port: int) -> DelayRelay:
            return stack.enter_context(DelayRelay(port, args.delay_ms))

        kept_url = f"http://127.0.0.1:{relay_port(relay(sql_port))}/sql"
        cold_url = f"http://127.0.0.1:{relay_port(relay(sql_port))}/sql"
        ws_clear, ws_scram = relay(ws_port).ws_proxy, relay(ws_port).ws_proxy
        kept = driver.http.connect(scram, endpoint=kept_url)

        async def http_kept() -> int:
            return len(await kept.fetch(NEAREST, *PROBE))

        async def http_cold() -> int:
            async with driver.http.connect(scram, endpoint=cold_url) as client:
                return len(await client.fetch(NEAREST, *PROBE))

        def ws(dsn: str, proxy: str, **kw: object) -> Callable[[], Awaitable[int]]:
            async def once() -> int:
                conn = await driver.connect(
                    dsn, ws_proxy=proxy, use_secure_websocket=False, sslmode="disable",
                    wait_ready=False, **kw,  # type: ignore[arg-type]
                )  # fmt: skip
                try:
                    return len(await conn.fetch(NEAREST, *PROBE))
                finally:
                    await conn.close()

            return once

        contenders = [
            Contender("driver.http   kept-alive connection", http_kept),
            Contender("driver.http   new TCP connection (+1 RT on a real link)", http_cold),
            Contender(
                "driver WS     pipelined password, wait_ready=False",
                ws(clear, ws_clear, pipeline_connect="password", allow_unencrypted_password=True),
            ),
            Contender("driver WS     SCRAM, wait_ready=False", ws(scram, ws_scram)),
        ]
        for c in contenders:
            for _ in range(WARMUPS):
                assert await c.once() == 10
        for _ in range(args.n):
            for c in contenders:
                t0 = time.perf_counter()
                assert await c.once() == 10
                c.wall_ms.append((time.perf_counter() - t0) * 1000)
        await kept.close()
        neon = await neon_http(scram, f"http://127.0.0.1:{relay_port(relay(sql_port))}/sql", args)
    rt_ms = 2 * args.delay_ms
    print(
        f"\nOne-shot nearest query (10 rows, PostGIS KNN), {args.delay_ms:g} ms added per "
        f"direction (1 round trip = {rt_ms:g} ms); n={args.n} after {WARMUPS} warm-ups"
    )
    print(f"{'':<52} {'min':>6} {'median':>6} {'p95':>6} {'~RTs':>6}")
    for c in contenders:
        print(c.line(rt_ms))
    if neon is not None:
        later = neon["wall_ms"][1:]
        med = statistics.median(later)
        print(
            f"{'neon() (node fetch) kept-alive, through our /sql':<52} {min(later):6.1f} "
            f"{med:6.1f} {p95(later):6.1f} {med / rt_ms:6.2f}"
        )
        first = neon["wall_ms"][0]
        print(f"{'neon() first request of the process (cold TCP)':<52} {first:6.1f}")


async def neon_http(dsn: str, url: str, args: argparse.Namespace) -> dict[str, list[float]] | None:
    node = shutil.which("node")
    if not node or not (NEON_JS_DIR / "node_modules" / "@neondatabase").is_dir():
        print(f"Neon's driver is not under {NEON_JS_DIR}/node_modules (or no node): not run")
        return None
    env = {
        **os.environ,
        "NEON_JS_DIR": str(NEON_JS_DIR),
        "DSN": dsn,
        "SQL_URL": url,
        "N": str(args.n),
        "LON": str(PROBE[0]),
        "LAT": str(PROBE[1]),
    }
    proc = await asyncio.create_subprocess_exec(
        node, str(ROOT / "bench" / "neon_http.mjs"), env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    if proc.returncode:
        raise RuntimeError(f"neon_http.mjs exited {proc.returncode}")
    data: dict[str, list[float]] = json.loads(out.decode().strip().splitlines()[-1])
    assert data["rows"] == 10  # type: ignore[comparison-overlap]
    return data


async def app_figures(rounds: int) -> None:
    """The app's cold-cell requests/s, DB_MODE=http vs pool, against one proxy."""
    import asyncpg

    from app.load import replace_sites
    from app.sources import read_file, validate
    from bench.app_bench import CONCURRENCY, Server, cold_paths, drive, row

    data = Path(os.environ.get("WHC_DATA", ROOT.parent / "shared/data/whc-sites-2021.csv"))
    sites, _ = validate(read_file(data))
    pg = start_temp_cluster(shared_preload_libraries="'postgis-3'")
    ws_port, sql_port = free_port(), free_port()
    env = {
        "LISTEN_PORT": f"127.0.0.1:{ws_port}",
        "SQL_HTTP_LISTEN": f"127.0.0.1:{sql_port}",
        "SQL_HTTP_RATE_LIMIT": "0",
        "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{pg.port}",
        "LOG_CONN_INFO": "false",
    }
    proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "wsproxy listening", env=env)
    servers: dict[str, Server] = {}
    try:
        conn = await asyncpg.connect(pg.dsn("scram_user"), ssl=False)
        try:
            await replace_sites(conn, sites)
        finally:
            await conn.close()
        os.environ["SQL_HTTP_ENDPOINT"] = f"http://127.0.0.1:{sql_port}/sql"  # read by Settings
        dsn, ws = pg.dsn("scram_user"), f"127.0.0.1:{ws_port}/v2"
        servers = {mode: Server("driver", dsn, ws, mode) for mode in ("pool", "http")}
        best: dict[str, tuple[float, float, float]] = {}
        for srv in servers.values():
            await drive(srv.port, cold_paths(300, 90000))  # warm-up: pools, imports
        for r in range(rounds):
            cold = cold_paths(800, r * 800)
            for mode, srv in servers.items():
                figures = await drive(srv.port, cold)
                if mode not in best or figures[0] > best[mode][0]:
                    best[mode] = figures
    finally:
        for srv in servers.values():
            srv.stop()
        stop(proc)
        destroy(pg)
    print(
        f"\nThe app, cold cells (each request a new cell: one nearest query), {CONCURRENCY} "
        f"keep-alive clients, 1 uvicorn worker, best of {rounds} alternating rounds, no delay"
    )
    print(row("DB_MODE=pool (driver pool, WebSocket proxy)", best["pool"]))
    print(row("DB_MODE=http (driver.http, proxy's /sql)", best["http"], best["pool"][0]))


async def run(args: argparse.Namespace) -> None:
    pg = start_temp_cluster(shared_preload_libraries="'postgis-3'")  # as the demo's
    pg.psql((ROOT / "sql" / "schema.sql").read_text())
    pg.psql(SITES_SQL)
    ws_port, sql_port = free_port(), free_port()
    env = {
        "LISTEN_PORT": f"127.0.0.1:{ws_port}",
        "SQL_HTTP_LISTEN": f"127.0.0.1:{sql_port}",
        "SQL_HTTP_RATE_LIMIT": "0",
        "ALLOW_ADDR_REGEX": rf"(127\.0\.0\.1|localhost):{pg.port}",
        "LOG_CONN_INFO": "false",
    }
    proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "wsproxy listening", env=env)
    try:
        await latency(pg, ws_port, sql_port, args)
    finally:
        stop(proc)
        destroy(pg)
    if not args.skip_app:
        await app_figures(args.app_rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="timed queries per contender")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="added per direction")
    parser.add_argument("--skip-app", action="store_true", help="no app cold-cell figures")
    parser.add_argument("--app-rounds", type=int, default=4, help="alternating app rounds")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
