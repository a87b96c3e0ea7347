"""Tail latency under overload, on demand (not a test): `.venv/bin/python -m bench.overload_bench`.

1,000 keep-alive connections hammer one cached cell of /api/nearest for a fixed time, against
two ways of serving the same app on the same machine:

  * before: the former image command, one uvicorn worker (httptools), no load shedding;
  * after:  `python -m app.serve` as the image runs it: one worker per core, h11 with its
            header bound, and app/shedding.py answering 503 + Retry-After when a worker has
            more requests waiting than MAX_QUEUED_REQUESTS or one waits past QUEUE_TIMEOUT_S.

Prints per variant: answered requests and their p50 / p99 / max latency, 503s (with and
without Retry-After), and errors. Everything runs on loopback against a private cluster with
invented sites; the client is one asyncio process of raw HTTP/1.1, cheap next to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.pgcluster import destroy, free_port, start_temp_cluster  # noqa: E402
from tools.procs import start_and_wait, stop  # noqa: E402

SITES_SQL = """
INSERT INTO whc_sites (id_no, name_en, category, states_name_en, iso_code, date_inscribed,
                       location)
SELECT i, 'Invented site ' || i, (ARRAY['Cultural','Natural','Mixed'])[1 + i % 3],
       'Inventia', 'iv', 1978 + i % 40,
       ST_SetSRID(ST_MakePoint(-170 + (i % 20) * 17.3 + i * 0.013,
                               -60 + (i / 20) * 11.1 + i * 0.007), 4326)::geography
FROM generate_series(1, 1200) AS i;
"""
REQUEST = b"GET /api/nearest?lat=48.85&lon=2.35 HTTP/1.1\r\nHost: bench\r\n\r\n"


class Tally:
    def __init__(self) -> None:
        self.ok: list[float] = []
        self.shed_retry: list[float] = []
        self.shed_bare: list[float] = []
        self.errors = 0


async def _one_client(port: int, until: float, tally: Tally) -> None:
    """A closed-loop client: when the server closes the connection (uvicorn's own 503 does),
    it connects again at once, as an impatient client would."""
    while time.monotonic() < until:
        await _one_connection(port, until, tally)


async def _one_connection(port: int, until: float, tally: Tally) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        tally.errors += 1
        return
    try:
        while time.monotonic() < until:
            start = time.monotonic()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            took = time.monotonic() - start
            status = int(head.split(b" ", 2)[1])
            if status == 200:
                tally.ok.append(took)
            elif status == 503 and b"retry-after" in head.lower():
                tally.shed_retry.append(took)
            elif status == 503:
                tally.shed_bare.append(took)
                break  # uvicorn's own 503 closes the connection
            else:
                tally.errors += 1
            if b"connection: close" in head.lower():
                break
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        tally.errors += 1
    finally:
        writer.close()


async def drive(port: int, connections: int, seconds: float) -> Tally:
    tally = Tally()
    # warm the cell first: the point is the cached path under overload
    await _one_connection(port, time.monotonic() + 0.5, Tally())
    until = time.monotonic() + seconds
    await asyncio.gather(*(_one_client(port, until, tally) for _ in range(connections)))
    return tally


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def report(name: str, t: Tally, seconds: float) -> None:
    ms = 1000.0
    print(
        f"{name:7s} answered {len(t.ok):6d} ({len(t.ok) / seconds:6.0f}/s)  "
        f"p50 {_pct(t.ok, 0.5) * ms:7.1f} ms  p99 {_pct(t.ok, 0.99) * ms:7.1f} ms  "
        f"max {max(t.ok, default=float('nan')) * ms:7.1f} ms  | "
        f"503+Retry-After {len(t.shed_retry):6d} (p99 {_pct(t.shed_retry, 0.99) * ms:.1f} ms)  "
        f"bare 503 {len(t.shed_bare)}  errors {t.errors}"
    )
    if t.ok:
        print(f"        median of answered {statistics.median(t.ok) * ms:.1f} ms, "
              f"past 1 s: {sum(1 for x in t.ok if x > 1.0)}, past 10 s: "
              f"{sum(1 for x in t.ok if x > 10.0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--only", choices=["before", "after"], default=None)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the `after` server, e.g. QUEUE_TIMEOUT_S=0.1")
    args = parser.parse_args()

    pg = start_temp_cluster(shared_preload_libraries="'postgis-3'")
    procs = []
    try:
        pg.psql((ROOT / "sql" / "schema.sql").read_text())
        pg.psql(SITES_SQL)
        pg.psql("GRANT SELECT ON whc_sites TO scram_user")
        proxy_port = free_port()
        proxy, _ = start_and_wait(
            [sys.executable, "-m", "proxy"], "listening",
            env={"LISTEN_PORT": f"127.0.0.1:{proxy_port}",
                 "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{pg.port}"},
        )
        procs.append(proxy)
        base_env = {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": pg.dsn(),
            "WS_PROXY": f"127.0.0.1:{proxy_port}/v2",
            "WS_SECURE": "false",
        }
        variants = {
            "before": ([sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
                        "--host", "127.0.0.1", "--port", "{port}", "--no-access-log",
                        "--no-proxy-headers", "--no-server-header"],
                       {"MAX_ACTIVE_REQUESTS": "0"}),
            "after": ([sys.executable, "-m", "app.serve"],
                      {"HOST": "127.0.0.1", **dict(kv.split("=", 1) for kv in args.set)}),
        }
        if args.only:
            variants = {args.only: variants[args.only]}
        for name, (argv, extra) in variants.items():
            port = free_port()
            env = {**base_env, **extra, "PORT": str(port)}
            proc, _ = start_and_wait([a.replace("{port}", str(port)) for a in argv],
                                     "Application startup complete", env=env, timeout=60)
            try:
                tally = asyncio.run(drive(port, args.connections, args.seconds))
            finally:
                stop(proc)
            report(name, tally, args.seconds)
    finally:
        for p in procs:
            stop(p)
        destroy(pg)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
