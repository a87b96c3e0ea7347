"""Connect + first result on demand: latency over a slow link, round trips, CPU per connect.

    .venv/bin/python -m bench.connect_bench [--n 20] [--delay-ms 10] [--cpu-n 40]

Starts its own cluster and proxy. Prints figures; asserts nothing.

Latency. A delay relay (tools/relay.CountingRelay, in a process of its own so that neither its
work nor the GIL touches the client being timed) sits between the client and the WebSocket
proxy and delivers every chunk ``--delay-ms`` after it arrived, per direction: a timestamped
queue each way, so order is kept and chunks in flight never wait behind each other's delay.
One round trip then costs 2 x delay (the loopback TCP handshake with the relay is not delayed:
round trips are counted after the TCP connect, as issue 4 counts them). For each contender:
min, median and p95 of connect + ``select 1``, the round trips that implies (median / 2 x
delay), the round trips the relay counted (see ``exchanges``) and the client's CPU per
connect. Contenders take turns, one connect each per round, so that load from elsewhere on
the machine hits them alike: this driver over the WebSocket (trust, SCRAM, pipelined
password, Postgres TLS 1.3 with SCRAM-PLUS or a pipelined password) and
@neondatabase/serverless (from tests/proxy/js/node_modules, through bench/neon_connect.mjs)
through the same proxy and relay.

CPU. Each contender runs in a fresh process: ``time.process_time`` around connect + ``select
1`` + close, the first connect of the process apart from the later ones (the first pays for
lazy imports, SSL context set-up and, unless cached, PBKDF2). No added delay; SCRAM-SHA-256
with the server's 4096 iterations; this driver vs asyncpg.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop
from tools.relay import DOWN, UP, CountingRelay, RelayedConnection

ROOT = Path(__file__).resolve().parents[1]
NEON_JS_DIR = Path(os.environ.get("NEON_JS_DIR", ROOT / "tests" / "proxy" / "js"))
WARMUPS = 2  # per latency contender, not reported: imports, JIT, first SSL context
NEON_WARMUPS = 2  # made by bench/neon_connect.mjs in each run before the timed connect


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# -- the delay relay, as a child process ------------------------------------------------------


async def relay_main(target_port: int, delay_ms: float) -> list[int]:
    """Run a delaying CountingRelay until SIGTERM; return per-connection round trips."""
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    async with CountingRelay("127.0.0.1", target_port, delay=delay_ms / 1000) as relay:
        print(f"relay listening {relay.port}", file=sys.stderr, flush=True)
        await done.wait()
        return [exchanges(c) for c in relay.connections]


def exchanges(conn: RelayedConnection) -> int:
    """Round trips until the first result: the server's answers (the WebSocket upgrade's
    included) before the client's last flight that carried data, which is its Terminate.
    Closing is not counted, however a client does it: Neon's sends Terminate and the proxy
    answers with a close frame; ours sends Terminate and a close frame together, and with TLS
    the server may answer its close_notify with one of its own."""
    flights = conn.flights
    last = max((i for i, (d, _, m) in enumerate(flights) if d == UP and m), default=len(flights))
    return sum(1 for d, _, _ in flights[:last] if d == DOWN)


class DelayRelay:
    """``with DelayRelay(proxy_port, delay_ms) as r:`` connect to ``r.ws_proxy``; then
    ``r.round_trips`` holds one count per relayed connection."""

    def __init__(self, target_port: int, delay_ms: float) -> None:
        self.args = [str(target_port), str(delay_ms)]
        self.round_trips: list[int] = []

    def __enter__(self) -> DelayRelay:
        fd, name = tempfile.mkstemp(prefix="relay-", suffix=".json")
        os.close(fd)
        self.stats = Path(name)
        argv = [sys.executable, "-m", "bench.connect_bench", "--relay", *self.args, name]
        self.proc, lines = start_and_wait(argv, "relay listening")
        self.ws_proxy = f"127.0.0.1:{lines[-1].split()[-1]}/v2"
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)
        text = self.stats.read_text()
        self.stats.unlink()
        self.round_trips = json.loads(text) if text else []


# -- latency over the delayed link -----------------------------------------------------------


@dataclass
class Contender:
    """One way to connect: this driver with ``kw``, or Neon's driver when ``kw`` is None."""

    name: str
    role: str
    kw: dict[str, Any] | None = None
    pipeline: bool = False  # Neon's pipelineConnect: "password"
    relay: DelayRelay | None = None
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def round_trips(self) -> list[int]:
        counts = self.relay.round_trips if self.relay else []
        if self.kw is None:  # each node run makes 2 warm-up connects, then the timed one
            return counts[NEON_WARMUPS :: NEON_WARMUPS + 1]
        return counts[WARMUPS:]

    def line(self, rt_ms: float) -> str:
        wall = statistics.median(self.wall_ms)
        rts = sorted(set(self.round_trips()))
        counted = "/".join(map(str, rts)) if rts else "-"
        return (
            f"{self.name:<50} {min(self.wall_ms):6.1f} {wall:6.1f} {p95(self.wall_ms):6.1f} "
            f"{wall / rt_ms:6.1f} {counted:>6} {statistics.median(self.cpu_ms):6.2f}"
        )


async def ours(c: Contender, dsn: str) -> tuple[float, float]:
    """One connect + first result with this driver: (wall ms, this process's CPU ms)."""
    import driver

    assert c.relay is not None and c.kw is not None
    t0, c0 = time.perf_counter(), time.process_time()
    conn = await driver.connect(dsn, ws_proxy=c.relay.ws_proxy, use_secure_websocket=False,
                                **c.kw)  # fmt: skip
    await conn.fetchval("select 1")
    t1, c1 = time.perf_counter(), time.process_time()
    await conn.close()
    return (t1 - t0) * 1000, (c1 - c0) * 1000


async def neon(c: Contender, dsn: str, node: str) -> tuple[float, float]:
    """One timed connect + first result by bench/neon_connect.mjs, after its 2 warm-ups
    (module loading and JIT are not what is measured): (wall ms, Node's process CPU ms)."""
    assert c.relay is not None
    env = {
        **os.environ,
        "NEON_JS_DIR": str(NEON_JS_DIR),
        "DSN": dsn,
        "N": "1",
        "WS_PROXY": c.relay.ws_proxy,
        "PIPELINE": "password" if c.pipeline else "false",
    }
    proc = await asyncio.create_subprocess_exec(
        node, str(ROOT / "bench" / "neon_connect.mjs"), env=env, stdout=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    if proc.returncode:
        raise RuntimeError(f"neon_connect.mjs exited {proc.returncode}")
    data = json.loads(out.decode().strip().splitlines()[-1])
    return data["wall_ms"][0], data["cpu_ms"][0]


async def latency(pg: Cluster, proxy_port: int, args: argparse.Namespace) -> None:
    """All contenders take turns, one connect each per round, so that load from elsewhere on
    the machine spreads over all of them alike."""
    assert pg.certs is not None
    tls = {"sslmode": "verify-full", "sslrootcert": str(pg.certs.ca_cert)}
    clear = {"sslmode": "disable", "allow_unencrypted_password": True}
    pipelined = {"pipeline_connect": "password"}
    contenders = [
        Contender("this driver  WS, trust", "trust_user", {"sslmode": "disable"}),
        Contender("this driver  WS, SCRAM", "scram_user", {"sslmode": "disable"}),
        Contender("this driver  WS, pipelined password", "clear_user", {**clear, **pipelined}),
        Contender("this driver  WS, PG TLS 1.3, SCRAM-PLUS", "scram_user", tls),
        Contender("this driver  WS, PG TLS 1.3, pipelined password", "clear_user",
                  {**tls, **pipelined}),
        # the first query rides the last authentication flight (connect() returns early)
        Contender("this driver  WS, trust, wait_ready=False", "trust_user",
                  {"sslmode": "disable", "wait_ready": False}),
        Contender("this driver  WS, SCRAM, wait_ready=False", "scram_user",
                  {"sslmode": "disable", "wait_ready": False}),
        Contender("this driver  WS, pipelined password, wait_ready=False", "clear_user",
                  {**clear, **pipelined, "wait_ready": False}),
        Contender("this driver  WS, PG TLS 1.3, SCRAM-PLUS, wait_ready=False", "scram_user",
                  {**tls, "wait_ready": False}),
    ]  # fmt: skip
    node = shutil.which("node")
    if node and (NEON_JS_DIR / "node_modules" / "@neondatabase").is_dir():
        contenders += [
            Contender("Neon JS      WS, trust", "trust_user"),
            Contender("Neon JS      WS, SCRAM", "scram_user"),
            Contender("Neon JS      WS, pipelined password", "clear_user", pipeline=True),
        ]
    else:
        print(f"Neon's driver is not under {NEON_JS_DIR}/node_modules (or no node): not run")
    with contextlib.ExitStack() as stack:
        for c in contenders:
            c.relay = stack.enter_context(DelayRelay(proxy_port, args.delay_ms))
        for c in contenders:
            for _ in range(WARMUPS if c.kw is not None else 0):
                await ours(c, pg.dsn(c.role))
        for _ in range(args.n):
            for c in contenders:
                dsn = pg.dsn(c.role)
                wall, cpu = await (ours(c, dsn) if c.kw is not None else neon(c, dsn, node or ""))
                c.wall_ms.append(wall)
                c.cpu_ms.append(cpu)
    rt_ms = 2 * args.delay_ms
    print(
        f"\nConnect + `select 1`, {args.delay_ms:g} ms added per direction between client and "
        f"proxy (1 round trip = {rt_ms:g} ms); n={args.n}, after {WARMUPS} warm-ups; PG TLS is "
        "verify-full"
    )
    print(f"{'':<50} {'min':>6} {'median':>6} {'p95':>6} {'~RTs':>6} {'RTs':>6} {'CPU':>6}")
    print(f"{'':<50} {'ms':>6} {'ms':>6} {'ms':>6} {'implied':>6} {'counted':>6} {'ms':>6}")
    for c in contenders:
        print(c.line(rt_ms))


# -- CPU per connect, each contender in a fresh process -------------------------------------


async def cpu_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in the child: time the first connect of this process, then ``n`` more."""
    c0 = time.process_time()
    if spec["client"] == "asyncpg":
        import ssl

        import asyncpg

        ctx = ssl.create_default_context(cafile=spec["ca"])

        async def once() -> None:
            conn = await asyncpg.connect(spec["dsn"], ssl=ctx)
            await conn.fetchval("select 1")
            await conn.close()
    else:
        import driver

        async def once() -> None:
            conn = await driver.connect(spec["dsn"], **spec["kw"])
            await conn.fetchval("select 1")
            await conn.close()

    imports = time.process_time() - c0
    cpu: list[float] = []
    for _ in range(spec["n"] + 1):
        c0 = time.process_time()
        await once()
        cpu.append((time.process_time() - c0) * 1000)
    uncached: list[float] = []  # later connects that still pay PBKDF2 (this driver only)
    clear = getattr(sys.modules.get("driver.auth.scram"), "clear_key_cache", None)
    while clear is not None and len(uncached) < spec["n"]:
        clear()
        c0 = time.process_time()
        await once()
        uncached.append((time.process_time() - c0) * 1000)
    return {"import_ms": imports * 1000, "first_ms": cpu[0], "later_ms": cpu[1:],
            "uncached_ms": uncached}  # fmt: skip


def cpu(pg: Cluster, proxy_port: int, n: int) -> None:
    assert pg.certs is not None
    ca = str(pg.certs.ca_cert)
    verifier = pg.psql("select rolpassword from pg_authid where rolname = 'scram_user'")
    iterations = verifier.split("$")[1].split(":")[0]  # SCRAM-SHA-256$<iterations>:<salt>$...
    print(
        f"\nCPU per connect + `select 1` + close (time.process_time, a fresh process each, "
        f"no added delay); SCRAM-SHA-256 with {iterations} iterations"
    )
    print("(later: the same process again, SCRAM keys cached; no cache: later, with the key")
    print("cache cleared before each connect, so PBKDF2 runs again)")
    print(f"{'':<52} {'import':>7} {'first':>7} {'later':>7} {'later':>7} {'no cache':>8}")
    print(f"{'':<52} {'ms':>7} {'ms':>7} {'median':>7} {'p95':>7} {'median':>8}")
    ws = {"ws_proxy": f"127.0.0.1:{proxy_port}/v2", "use_secure_websocket": False}
    tls = {"sslmode": "verify-full", "sslrootcert": ca}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("this driver  TCP, no TLS, SCRAM", {"kw": {"sslmode": "disable"}}),
        ("this driver  TCP, TLS 1.3 verify-full, SCRAM-PLUS", {"kw": tls}),
        ("this driver  WS, PG TLS 1.3 verify-full, SCRAM-PLUS", {"kw": {**tls, **ws}}),
        ("asyncpg      TCP, TLS 1.3 verify-full, SCRAM", {"client": "asyncpg"}),
    ]
    for name, extra in cases:
        spec = {"client": "driver", "dsn": pg.dsn("scram_user"), "ca": ca, "n": n, **extra}
        out = subprocess.run([sys.executable, "-m", "bench.connect_bench", "--cpu-child",
                              json.dumps(spec)], capture_output=True, text=True, timeout=600,
                             check=True, cwd=ROOT)  # fmt: skip
        data = json.loads(out.stdout.strip().splitlines()[-1])
        later, uncached = data["later_ms"], data["uncached_ms"]
        nocache = f"{statistics.median(uncached):8.2f}" if uncached else f"{'-':>8}"
        print(
            f"{name:<52} {data['import_ms']:7.1f} {data['first_ms']:7.2f} "
            f"{statistics.median(later):7.2f} {p95(later):7.2f} {nocache}",
            flush=True,
        )


# -- entry point -----------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    pg = start_temp_cluster()
    proxy_port = free_port()
    env = {
        "LISTEN_PORT": f"127.0.0.1:{proxy_port}",
        "ALLOW_ADDR_REGEX": rf"(127\.0\.0\.1|localhost):{pg.port}",
        "LOG_CONN_INFO": "false",
    }
    proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "listening", env=env)
    try:
        await latency(pg, proxy_port, args)
        cpu(pg, proxy_port, args.cpu_n)
    finally:
        stop(proc)
        destroy(pg)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="timed connects per latency contender")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="added per direction")
    parser.add_argument("--cpu-n", type=int, default=40, help="later connects per CPU contender")
    parser.add_argument("--relay", nargs=3, metavar=("PORT", "DELAY_MS", "STATS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--cpu-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        port, delay, stats = args.relay
        Path(stats).write_text(json.dumps(asyncio.run(relay_main(int(port), float(delay)))))
    elif args.cpu_child:
        print(json.dumps(asyncio.run(cpu_child(json.loads(args.cpu_child)))))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
