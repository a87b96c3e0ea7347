"""Tail latency under overload, on demand (not a test): `.venv/bin/python -m bench.overload_bench`.

1,000 keep-alive connections, each from its own loopback address (127.1.x.y: many clients,
as on the internet, so the front's per-address limits are not what is measured), hammer one
cached cell of /api/nearest for a fixed time, against three ways of serving the same app on the
same machine:

  * before:  the former image command, one uvicorn worker (httptools), no load shedding;
  * uvicorn: `python -m app.serve` alone, as the image runs it: one worker per core, h11 with
             its header bound, uvicorn's connection limit, and app/shedding.py;
  * front:   the documented production shape: Debian's nginx with deploy/nginx/nginx.conf as
             committed (its bounded upstream sheds with 503 + Retry-After) in front of
             `python -m app.serve`.

A request's latency runs from the moment the client starts it to the end of the answer,
including the connect when it opens a new connection (a client that is closed on and
reconnects pays for it). The clients are closed-loop: each sends its next request as soon as
it has the answer, even after a 503 (a worse client than a browser honouring Retry-After).

Prints per variant: answered requests and their p50 / p99 / max latency, sheds (503 with
Retry-After; 429 with Retry-After from the front's per-address limits) with their p99 / max,
bare 503s, errors (refused or reset connections, other statuses, requests past --timeout) and
how many requests of any kind took longer than 1 s and 10 s. Everything runs on loopback
against a private cluster with invented sites; the client is one process of raw HTTP/1.1 on
uvloop, cheap next to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.deploy.flood import Tally, flood, one_connection, percentile  # noqa: E402
from tests.deploy.front import running_front  # noqa: E402
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


async def drive(port: int, connections: int, seconds: float, request_timeout_s: float) -> Tally:
    # warm the cell first: the point is the cached path under overload
    warm, deadline = Tally(), time.monotonic() + 30
    while not warm.ok:
        assert time.monotonic() < deadline, f"no answer to the warm-up: {warm}"
        await one_connection(
            "127.0.0.1", port, "127.0.0.1", REQUEST, time.monotonic() + 0.5, request_timeout_s, warm
        )
    return await flood(
        "127.0.0.1",
        port,
        REQUEST,
        connections=connections,
        seconds=seconds,
        request_timeout_s=request_timeout_s,
    )


def report(name: str, t: Tally, seconds: float) -> None:
    ms = 1000.0
    print(
        f"{name:8s} answered {len(t.ok):6d} ({len(t.ok) / seconds:5.0f}/s)  "
        f"p50 {percentile(t.ok, 0.5) * ms:6.0f}  p99 {percentile(t.ok, 0.99) * ms:6.0f}  "
        f"max {max(t.ok, default=float('nan')) * ms:6.0f} ms | "
        f"503+RA {len(t.shed):6d} (p99 {percentile(t.shed, 0.99) * ms:5.0f}, "
        f"max {max(t.shed, default=float('nan')) * ms:5.0f} ms)  "
        f"429+RA {len(t.limited)}  bare 503 {t.bare_503}  "
        f"errors {len(t.errors) + sum(t.other.values())} {t.other or ''}| "
        f"past 1 s {t.past(1.0)}, past 10 s {t.past(10.0)}, slowest {t.slowest:.1f} s",
        flush=True,
    )
    print(
        f"         {len(t.connects)} connects: p99 {percentile(t.connects, 0.99) * ms:.0f} ms, "
        f"max {max(t.connects, default=float('nan')) * ms:.0f} ms"
    )
    for kind in sorted({e.split("(", 1)[0] for e in t.errors}):
        print(f"         {sum(e.startswith(kind) for e in t.errors)} x {kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="a request past it: error")
    parser.add_argument(
        "--only", action="append", choices=["before", "uvicorn", "front"], default=[]
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an app setting for `python -m app.serve` (uvicorn, front), e.g. WORKERS=1",
    )
    args = parser.parse_args()
    try:
        import uvloop

        run: Callable[[Coroutine[Any, Any, Tally]], Tally] = uvloop.run
    except ImportError:
        run = asyncio.run

    pg = start_temp_cluster(shared_preload_libraries="'postgis-3'")
    procs = []
    try:
        pg.psql((ROOT / "sql" / "schema.sql").read_text())
        pg.psql(SITES_SQL)
        pg.psql("GRANT SELECT ON whc_sites, whc_dataset TO scram_user")
        proxy_port = free_port()
        proxy, _ = start_and_wait(
            [sys.executable, "-m", "proxy"],
            "listening",
            env={
                "LISTEN_PORT": f"127.0.0.1:{proxy_port}",
                "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{pg.port}",
            },
        )
        procs.append(proxy)
        base_env = {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": pg.dsn(),
            "WS_PROXY": f"127.0.0.1:{proxy_port}/v2",
            "WS_SECURE": "false",
        }
        serve_env = {"HOST": "127.0.0.1", **dict(kv.split("=", 1) for kv in args.set)}
        before_argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--no-access-log",
            "--no-proxy-headers",
            "--no-server-header",
        ]

        @contextmanager
        def app(argv: list[str], extra: dict[str, str]) -> Iterator[int]:
            port = free_port()
            proc, _ = start_and_wait(
                [a.replace("{port}", str(port)) for a in argv],
                "Application startup complete",
                env={**base_env, **extra, "PORT": str(port)},
                timeout=60,
            )
            try:
                yield port
            finally:
                stop(proc)

        @contextmanager
        def front() -> Iterator[int]:
            with app([sys.executable, "-m", "app.serve"], serve_env) as app_port:
                port = free_port()
                with running_front("127.0.0.1", port, [f"127.0.0.1:{app_port}"]):
                    yield port

        variants: dict[str, Callable[[], AbstractContextManager[int]]] = {
            "before": lambda: app(before_argv, {"MAX_ACTIVE_REQUESTS": "0"}),
            "uvicorn": lambda: app([sys.executable, "-m", "app.serve"], serve_env),
            "front": front,
        }
        for name in args.only or list(variants):
            with variants[name]() as port:
                tally = run(drive(port, args.connections, args.seconds, args.timeout))
            report(name, tally, args.seconds)
    finally:
        for p in procs:
            stop(p)
        destroy(pg)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
