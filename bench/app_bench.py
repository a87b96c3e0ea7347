"""How fast the app is, on demand (not a test): `.venv/bin/python -m bench.app_bench`.

Starts a private cluster (PostGIS preloaded, as in the demo), the real proxy, loads the shared
UNESCO CSV (WHC_DATA), then runs each server variant in its own uvicorn process and drives it
with a small keep-alive HTTP/1.1 client on loopback (much cheaper than the server, so the
server is what is measured). Prints, in one run:

  * cached hits (one warm cell) vs. a constant FastAPI endpoint on the same server (ceiling),
    for a repeated point and for a new point of the warm cell on every request;
  * cold cells (every request a new cell) through our driver + proxy, pool mode, vs. the same
    app with asyncpg over TCP;
  * the same cold cells in connect-per-request mode, for both drivers;
  * a fresh connection's first-query cost: `select 1`, any PostGIS function (library load),
    a geography distance (PostGIS's per-backend PROJ setup) and the nearest query, without and
    with `shared_preload_libraries = 'postgis-3'`, and through PgBouncer (transaction pooling,
    backends stay warm while clients still connect per request).

Targets: cached >= 0.8x constant; cold (pool) >= 0.7x asyncpg.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 32
ROUNDS = 4


# --- server side (runs in a child process) --------------------------------------------------


def serve(variant: str, port: int, dsn: str, ws_proxy: str, mode: str) -> None:
    import asyncpg
    import uvicorn

    from app.main import create_app
    from app.settings import Settings

    settings = Settings.model_validate(
        {
            "database_url": dsn,
            "ws_proxy": ws_proxy,
            "ws_secure": False,
            "db_mode": mode,
            "pool_size": 10,
            "pool_min_size": 10 if mode == "pool" else 0,
        }
    )
    if variant == "asyncpg":

        async def pool_factory(d: str, **kw: Any) -> Any:
            kw.pop("ws_proxy"), kw.pop("use_secure_websocket")
            return await asyncpg.create_pool(d, ssl=False, **kw)

        async def connect(d: str, **kw: Any) -> Any:
            return await asyncpg.connect(d, ssl=False)

        app = create_app(settings, pool_factory=pool_factory, connect=connect)
    else:
        app = create_app(settings)

    @app.get("/bench/constant")
    async def constant() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="info", access_log=False, proxy_headers=False
    )


# --- client side ----------------------------------------------------------------------------


async def _client(port: int, paths: list[str], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for path in paths:
            t = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}")
            latencies.append(time.perf_counter() - t)
    finally:
        writer.close()


async def drive(port: int, paths: list[str]) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms) for `paths` spread over CONCURRENCY clients."""
    shares = [paths[i::CONCURRENCY] for i in range(CONCURRENCY)]
    latencies: list[float] = []
    t = time.perf_counter()
    await asyncio.gather(*(_client(port, s, latencies) for s in shares if s))
    elapsed = time.perf_counter() - t
    q = statistics.quantiles(latencies, n=100)
    return len(paths) / elapsed, q[49] * 1e3, q[98] * 1e3


def cold_paths(n: int, offset: int) -> list[str]:
    """n distinct cells over Europe (dense: real work for the candidate query)."""
    out = []
    for i in range(n):
        j = i + offset
        lat, lon = 36.0 + (j % 1500) * 0.01, -9.0 + (j // 1500) * 0.013
        out.append(f"/api/nearest?lat={lat:.3f}&lon={lon:.3f}")
    return out


class Server:
    def __init__(self, variant: str, dsn: str, ws_proxy: str, mode: str, tree: Path = ROOT) -> None:
        from tools.pgcluster import free_port
        from tools.procs import start_and_wait

        self.port = free_port()
        # -P: the server imports from `tree` (PYTHONPATH), never from the current directory
        argv = [
            sys.executable,
            "-P",
            "-m",
            "bench.app_bench",
            "--serve",
            variant,
            "--port",
            str(self.port),
            "--dsn",
            dsn,
            "--ws-proxy",
            ws_proxy,
            "--mode",
            mode,
        ]
        self.proc, _ = start_and_wait(
            argv, "Uvicorn running on", env={"PYTHONPATH": str(tree)}, timeout=60
        )

    def stop(self) -> None:
        from tools.procs import stop

        stop(self.proc)


def row(label: str, figures: tuple[float, float, float], base: float | None = None) -> str:
    rps, p50, p99 = figures
    ratio = f"  {rps / base:5.2f}x" if base else ""
    return f"  {label:44s} {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms{ratio}"


FIRST_QUERIES = {
    "select 1": ("SELECT 1", ()),
    # any PostGIS function: pays for loading the library into the backend
    "geometry": ("SELECT ST_AsText(ST_MakePoint(1, 2))", ()),
    # the first geography distance also sets up PROJ for SRID 4326 in the backend
    "geography": (
        "SELECT 'SRID=4326;POINT(1 2)'::geography <-> 'SRID=4326;POINT(2 3)'::geography",
        (),
    ),
}


def start_pgbouncer(pg: Any, base: Path) -> tuple[Any, int]:
    """PgBouncer (transaction pooling) in front of `pg` for scram_user: clients connect per
    request, backends stay warm. Returns the process and its port."""
    from tools.pgcluster import _pg_user, free_port
    from tools.procs import start_and_wait

    prefix, uid, gid = _pg_user()
    secret = pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_user'")
    port = free_port()
    base.mkdir(parents=True, exist_ok=True)
    (base / "users.txt").write_text(f'"scram_user" "{secret}"\n')
    (base / "pgbouncer.ini").write_text(
        f"[databases]\ntestdb = host=127.0.0.1 port={pg.port} dbname=testdb\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"auth_type = scram-sha-256\nauth_file = {base / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 10\nmax_client_conn = 200\n"
        "unix_socket_dir =\nignore_startup_parameters = extra_float_digits,IntervalStyle\n"
    )
    if uid is not None:
        for f in (base, base / "users.txt", base / "pgbouncer.ini"):
            os.chown(f, uid, gid or -1)
    proc, _ = start_and_wait(
        [*prefix, "pgbouncer", str(base / "pgbouncer.ini")], "process up", timeout=30
    )
    return proc, port


async def first_query_costs(
    targets: dict[str, tuple[str, str]], reps: int = 40
) -> dict[tuple[str, str, str], float]:
    """Median ms of connect, and of the first query on the fresh backend, per target and
    client, with the targets and queries interleaved so that all see the same machine load.
    """
    import asyncpg

    import driver
    from app.sites import NEAREST_SQL

    queries = {**FIRST_QUERIES, "nearest": (NEAREST_SQL, (12.49, 41.89, 10))}
    samples: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(reps):
        for target, (dsn, ws_proxy) in targets.items():
            cache = 0 if "pgbouncer" in target else 100  # no named statements across backends
            clients: dict[str, Callable[[], Awaitable[Any]]] = {
                "asyncpg/TCP": functools.partial(
                    asyncpg.connect, dsn, ssl=False, statement_cache_size=cache
                ),
                "driver/proxy": functools.partial(
                    driver.connect,
                    dsn,
                    ws_proxy=ws_proxy,
                    use_secure_websocket=False,
                    statement_cache_size=cache,
                ),
            }
            for client, connect in clients.items():
                for label, (sql, args) in queries.items():
                    t = time.perf_counter()
                    conn = await connect()
                    t1 = time.perf_counter()
                    await conn.fetch(sql, *args)
                    t2 = time.perf_counter()
                    await conn.close()
                    samples.setdefault((target, client, "connect"), []).append((t1 - t) * 1e3)
                    samples.setdefault((target, client, label), []).append((t2 - t1) * 1e3)
    return {k: statistics.median(v) for k, v in samples.items()}


async def http_figures(dsn: str, proxy: str) -> None:
    """Run the HTTP scenarios and print one line each."""
    print(
        f"app benchmark: {CONCURRENCY} keep-alive clients on loopback, 1 uvicorn worker, "
        f"best of {ROUNDS} alternating rounds"
    )
    # The machine may be busy: every pair is measured in alternating rounds and each
    # figure is the best round, so both sides of a ratio see the same conditions.
    results: dict[str, tuple[float, float, float]] = {}

    def keep(name: str, figures: tuple[float, float, float]) -> None:
        if name not in results or figures[0] > results[name][0]:
            results[name] = figures

    servers = {v: Server(v, dsn, proxy, "pool") for v in ("driver", "asyncpg")}
    try:
        drv, apg = servers["driver"].port, servers["asyncpg"].port
        hit = "/api/nearest?lat=41.8902&lon=12.4922"
        await drive(drv, ["/bench/constant"] * 2000 + [hit] * 2000)  # warm-up
        await drive(apg, cold_paths(300, 90000))
        for r in range(ROUNDS):
            keep("constant", await drive(drv, ["/bench/constant"] * 5000))
            keep("cached", await drive(drv, [hit] * 5000))
            # same warm cell, a new point of it on every request: the re-rank path
            moving = [
                f"/api/nearest?lat={41.8852 + (r * 5000 + i) * 1.5e-7:.8f}&lon=12.4922"
                for i in range(5000)
            ]
            keep("cached cell, new point", await drive(drv, moving))
            cold = cold_paths(800, r * 800)
            keep("cold driver pool", await drive(drv, cold))
            keep("cold asyncpg pool", await drive(apg, cold))
    finally:
        for srv in servers.values():
            srv.stop()
    servers = {v: Server(v, dsn, proxy, "connect") for v in ("driver", "asyncpg")}
    try:
        for r in range(ROUNDS):
            cold = cold_paths(300, 50000 + r * 300)
            for v, srv in servers.items():
                keep(f"cold {v} connect", await drive(srv.port, cold))
    finally:
        for srv in servers.values():
            srv.stop()

    c = results["constant"][0]
    a = results["cold asyncpg pool"][0]
    print(row("constant endpoint (ceiling)", results["constant"]))
    print(row("cached hit (vs constant; target >= 0.8x)", results["cached"], c))
    print(row("cached cell, new point each request", results["cached cell, new point"], c))
    print(row("cold cell, driver+proxy pool (vs asyncpg; >= 0.7x)", results["cold driver pool"], a))
    print(row("cold cell, asyncpg TCP pool", results["cold asyncpg pool"]))
    print(
        row(
            "cold cell, driver+proxy connect-per-request",
            results["cold driver connect"],
            results["cold asyncpg connect"][0],
        )
    )
    print(row("cold cell, asyncpg TCP connect-per-request", results["cold asyncpg connect"]))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def ab_figures(dsn: str, proxy: str, other: Path, rounds: int) -> None:
    """This tree's app (A) against the app of another checkout (B, e.g. main's worktree), the
    same scenarios alternated round by round; prints the median of the rounds per scenario.

    Besides requests/s (wall clock, which other load on the machine moves a lot), it reports
    the server process's CPU time per request, which such load disturbs much less.
    """
    print(
        f"A/B: A = {ROOT}, B = {other}; {CONCURRENCY} keep-alive clients, 1 uvicorn worker "
        f"each, {rounds} alternating rounds, medians"
    )
    servers = {
        "A": Server("driver", dsn, proxy, "pool", ROOT),
        "B": Server("driver", dsn, proxy, "pool", other),
    }
    samples: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
        hit = "/api/nearest?lat=41.8902&lon=12.4922"
        for srv in servers.values():  # warm-up, and the hit's cell in each server's cache
            await drive(srv.port, ["/bench/constant"] * 1000 + [hit] * 2000)
        for r in range(rounds):
            moving = [
                f"/api/nearest?lat={41.8852 + (r * 3000 + i) * 1.5e-7:.8f}&lon=12.4922"
                for i in range(3000)
            ]
            scenarios = {
                "constant endpoint": ["/bench/constant"] * 3000,
                "cached hit": [hit] * 3000,
                "cached cell, new point": moving,
                "no coordinates (default place)": ["/api/nearest"] * 3000,
                "cold cell (pool)": cold_paths(400, r * 400),
            }
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for name, paths in scenarios.items():
                for side in order:
                    pid = servers[side].proc.pid
                    before = cpu_seconds(pid)
                    rps, _, _ = await drive(servers[side].port, paths)
                    used = cpu_seconds(pid) - before
                    samples.setdefault((name, side), []).append(rps)
                    cpu.setdefault((name, side), []).append(used / len(paths) * 1e6)
    finally:
        for srv in servers.values():
            srv.stop()
    print(
        f"  {'scenario':32s} {'A req/s':>8s} {'B req/s':>8s}   A/B  "
        f"{'A cpu us/req':>12s} {'B cpu us/req':>12s}  A-B us"
    )
    for name in dict.fromkeys(n for n, _ in samples):
        a = statistics.median(samples[(name, "A")])
        b = statistics.median(samples[(name, "B")])
        ca = statistics.median(cpu[(name, "A")])
        cb = statistics.median(cpu[(name, "B")])
        print(f"  {name:32s} {a:8.0f} {b:8.0f} {a / b:6.3f} {ca:12.1f} {cb:12.1f} {ca - cb:+7.1f}")


async def main(
    first_query_only: bool = False, against: Path | None = None, rounds: int = ROUNDS
) -> None:
    from app.load import replace_sites
    from app.sources import read_file, validate
    from tools.pgcluster import destroy, start_temp_cluster
    from tools.procs import start_and_wait, stop

    data = Path(os.environ.get("WHC_DATA", ROOT.parent / "shared/data/whc-sites-2021.csv"))
    sites, _ = validate(read_file(data))
    clusters = {"preloaded": start_temp_cluster(shared_preload_libraries="'postgis-3'")}
    if against is None:
        clusters["default"] = start_temp_cluster()
    procs = []
    try:
        ws = {}
        for name, pg in clusters.items():
            from tools.pgcluster import free_port

            port = free_port()
            proc, _ = start_and_wait(
                [sys.executable, "-m", "proxy"],
                "listening",
                env={
                    "LISTEN_PORT": f"127.0.0.1:{port}",
                    "ALLOW_ADDR_REGEX": r"127\.0\.0\.1:\d+",
                    "PYTHONPATH": str(ROOT),
                },
            )
            procs.append(proc)
            ws[name] = f"127.0.0.1:{port}/v2"
            import asyncpg

            conn = await asyncpg.connect(pg.dsn("scram_user"), ssl=False)
            try:
                await replace_sites(conn, sites)
            finally:
                await conn.close()

        pg, proxy = clusters["preloaded"], ws["preloaded"]
        dsn = pg.dsn("scram_user")

        if against is not None:
            await ab_figures(dsn, proxy, against, rounds)
            return
        if not first_query_only:
            await http_figures(dsn, proxy)

        print("fresh backend, first query on it (median ms, 40 new connections each):")
        targets = {name: (c_.dsn("scram_user"), ws[name]) for name, c_ in clusters.items()}
        bouncer, bport = start_pgbouncer(
            clusters["preloaded"], clusters["preloaded"].base / "pgbouncer"
        )
        procs.append(bouncer)
        targets["pgbouncer"] = (
            targets["preloaded"][0].replace(f":{clusters['preloaded'].port}/", f":{bport}/"),
            ws["preloaded"],
        )
        costs = await first_query_costs(targets)
        print(
            f"  {'server':9s} {'client':13s} {'connect':>8s} "
            + " ".join(f"{q:>10s}" for q in (*FIRST_QUERIES, "nearest"))
        )
        for name in targets:
            for client in ("asyncpg/TCP", "driver/proxy"):
                cells = " ".join(
                    f"{costs[(name, client, q)]:10.2f}" for q in (*FIRST_QUERIES, "nearest")
                )
                print(f"  {name:9s} {client:13s} {costs[(name, client, 'connect')]:8.2f} {cells}")
    finally:
        for proc in procs:
            stop(proc)
        for pg_ in clusters.values():
            destroy(pg_)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int)
    parser.add_argument("--dsn")
    parser.add_argument("--ws-proxy")
    parser.add_argument("--mode", default="pool")
    parser.add_argument(
        "--first-query-only", action="store_true", help="only the fresh-backend first-query table"
    )
    parser.add_argument(
        "--against", type=Path, help="A/B only: this tree's app against the app of that checkout"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    ns = parser.parse_args()
    if ns.serve:
        serve(ns.serve, ns.port, ns.dsn, ns.ws_proxy, ns.mode)
    else:
        asyncio.run(main(ns.first_query_only, ns.against, ns.rounds))
