"""Relay speed, on demand: throughput and added latency for direct TCP, our proxy, websockify.

    .venv/bin/python -m bench.proxy_bench [--mb 200] [--up-mb 100] [--rounds 5] [--pings 3000]

Throughput: one ~200 MB result (`repeat('x', 1000000)` rows) streamed from a private
Postgres, read by a minimal blocking client that only skips frame headers, so the client is
never the bottleneck. Upload: ~100 MB of 1 MB CopyData messages (frames built once) sent to
`COPY sink FROM STDIN WHERE false`, timed until ReadyForQuery. Latency: Sync -> ReadyForQuery
ping-pong (the smallest Postgres round trip), median and p99. Contenders are interleaved round
by round so background load hits all alike; "added" is a median minus direct TCP's. The proxy
runs twice, on uvloop and on the standard library's loop (EVENT_LOOP), when uvloop is
installed. Prints ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import functools
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop

READY = b"Z\x00\x00\x00\x05I"
SYNC = b"S\x00\x00\x00\x04"
BUF = 1 << 20


def startup_message(user: str) -> bytes:
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0testdb\0\0"
    return struct.pack("!I", len(body) + 4) + body


def query_message(sql: str) -> bytes:
    body = sql.encode() + b"\0"
    return b"Q" + struct.pack("!I", len(body) + 4) + body


class Direct:
    """Plain TCP to Postgres."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(BUF)
        self.view = memoryview(self.buf)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_repeated(self, data: bytes, times: int) -> None:
        """Send one message `times` times (as `times` frames over a WebSocket)."""
        for _ in range(times):
            self.sock.sendall(data)

    def read_until_ready(self) -> int:
        """Read until a chunk ends with ReadyForQuery; returns bytes read."""
        total, tail = 0, b""
        while True:
            n = self.sock.recv_into(self.buf)
            if n == 0:
                raise EOFError
            total += n
            tail = (tail + bytes(self.view[max(0, n - 6) : n]))[-6:]
            if tail == READY:
                return total

    def close(self) -> None:
        self.sock.close()


class WebSocket(Direct):
    """A WebSocket client reduced to what the benchmark needs: masked sends, header skipping."""

    def __init__(self, port: int, path: str, subprotocol: str | None = None) -> None:
        super().__init__(port)
        key = base64.b64encode(os.urandom(16)).decode()
        proto = f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{proto}\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("upgrade refused")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(head.decode(errors="replace"))
        self.pending = head.split(b"\r\n\r\n", 1)[1]

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.frame(data))

    def send_repeated(self, data: bytes, times: int) -> None:
        frame = self.frame(data)  # masked once: the client's CPU stays out of the figure
        for _ in range(times):
            self.sock.sendall(frame)

    @staticmethod
    def frame(data: bytes) -> bytes:
        """A masked final binary frame (clients must mask, RFC 6455 5.3)."""
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x82, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x82, 0xFE, n)
        else:
            head = struct.pack("!BBQ", 0x82, 0xFF, n)
        mask = os.urandom(4)
        key = int.from_bytes(mask * (n // 4 + 1), "big") >> (8 * (4 - n % 4))
        masked = (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")
        return head + mask + masked

    def read_until_ready(self) -> int:
        """Walk frames: headers are parsed, payloads only counted (and their last 6 bytes kept)."""
        total, tail = 0, b""
        data: bytes | memoryview = self.pending
        pos, left, counting = 0, 0, True  # left: payload bytes still due in this frame
        while True:
            while pos < len(data):
                if left:
                    take = min(left, len(data) - pos)
                    if counting:
                        tail = (tail + bytes(data[max(pos, pos + take - 6) : pos + take]))[-6:]
                        total += take
                    pos += take
                    left -= take
                    if not left and counting and tail == READY:
                        self.pending = bytes(data[pos:])
                        return total
                    continue
                avail = len(data) - pos
                if avail < 2:
                    break
                n = data[pos + 1] & 0x7F
                need = 2 + (2 if n == 126 else 8 if n == 127 else 0)
                if avail < need:
                    break
                if n == 126:
                    n = struct.unpack_from("!H", data, pos + 2)[0]
                elif n == 127:
                    n = struct.unpack_from("!Q", data, pos + 2)[0]
                counting = (data[pos] & 0x0F) < 0x8  # pings/pongs/close are not Postgres bytes
                pos += need
                left = n
            rest = bytes(data[pos:])
            got = self.sock.recv_into(self.buf)
            if got == 0:
                raise EOFError
            data = rest + self.view[:got] if rest else self.view[:got]
            pos = 0


def cpu_seconds(pid: int | None) -> float:
    """CPU time of a process and its live descendants (websockify forks per connection)."""
    if pid is None:
        return 0.0
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except FileNotFoundError:
        pass
    return total


@dataclass
class Result:
    name: str
    cpu_ms_per_100mb: float
    best_mbps: float
    median_mbps: float
    upload_mbps: float
    upload_cpu_ms_per_100mb: float
    median_us: float
    p99_us: float
    min_us: float


Contender = tuple[str, Callable[[], Direct], int | None]  # name, client factory, relay pid


def copy_data(size: int) -> bytes:
    """One CopyData message holding one text row of `size` bytes (newline included)."""
    return b"d" + struct.pack("!I", size + 4) + b"x" * (size - 1) + b"\n"


def measure(
    contenders: list[Contender], mb: int, rounds: int, pings: int, up_mb: int = 0
) -> list[Result]:
    """Interleave the contenders round by round, so background load hits them all alike."""
    clients = []
    for _, factory, _pid in contenders:
        client = factory()
        client.send(startup_message("trust_user"))
        client.read_until_ready()
        client.send(query_message("create temp table sink (x text)"))
        client.read_until_ready()
        clients.append(client)
    sql = query_message(f"select repeat('x', 1000000) from generate_series(1, {mb})")
    copy_in, row = query_message("copy sink from stdin where false"), copy_data(1_000_000)
    rates: list[list[float]] = [[] for _ in clients]
    up_rates: list[list[float]] = [[] for _ in clients]
    rtts: list[list[float]] = [[] for _ in clients]
    cpu = [0.0 for _ in clients]
    up_cpu = [0.0 for _ in clients]
    moved = [0 for _ in clients]
    for _ in range(rounds):
        for i, client in enumerate(clients):
            pid = contenders[i][2]
            c0, t0 = cpu_seconds(pid), time.perf_counter()
            client.send(sql)
            got = client.read_until_ready()
            rates[i].append(got / (time.perf_counter() - t0) / 1e6)
            cpu[i] += cpu_seconds(pid) - c0
            moved[i] += got
        for i, client in enumerate(clients):
            if not up_mb:
                break
            pid = contenders[i][2]
            c0, t0 = cpu_seconds(pid), time.perf_counter()
            client.send(copy_in)  # pipelined: Postgres reads the rows after its CopyInResponse
            client.send_repeated(row, up_mb)
            client.send(b"c\x00\x00\x00\x04")  # CopyDone
            client.read_until_ready()
            up_rates[i].append(up_mb * len(row) / (time.perf_counter() - t0) / 1e6)
            up_cpu[i] += cpu_seconds(pid) - c0
        for _ in range(pings // rounds):  # one ping each in turn: load noise hits all alike
            for i, client in enumerate(clients):
                t0 = time.perf_counter_ns()
                client.send(SYNC)
                client.read_until_ready()
                rtts[i].append((time.perf_counter_ns() - t0) / 1000)
    results = []
    for i, (name, _, _pid) in enumerate(contenders):
        clients[i].close()
        rate, rtt = rates[i], sorted(rtts[i])
        results.append(
            Result(
                name,
                cpu[i] * 1000 / (moved[i] / 1e8),
                max(rate),
                statistics.median(rate),
                statistics.median(up_rates[i]) if up_mb else 0.0,
                up_cpu[i] * 1000 / (up_mb * rounds * len(row) / 1e8) if up_mb else 0.0,
                statistics.median(rtt),
                rtt[int(len(rtt) * 0.99)],
                rtt[0],
            )
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=200, help="rows of 1 MB to stream")
    ap.add_argument("--up-mb", type=int, default=100, help="1 MB rows to upload (0: skip)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median shown)")
    ap.add_argument("--pings", type=int, default=3000, help="latency round trips")
    args = ap.parse_args()

    pg: Cluster = start_temp_cluster()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wsfy_port = free_port()
        contenders: list[Contender] = [("direct TCP", lambda: Direct(pg.port), None)]
        for loop in _event_loops():
            port = free_port()
            env = {
                "LISTEN_PORT": f"127.0.0.1:{port}",
                "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{pg.port}",
                "LOG_CONN_INFO": "false",
                "EVENT_LOOP": loop,
            }
            proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "listening", env=env)
            procs.append(proc)
            contenders.append(
                (
                    f"proxy/{loop}",
                    functools.partial(WebSocket, port, f"/v2?address=127.0.0.1:{pg.port}"),
                    proc.pid,
                )
            )
        websockify = shutil.which("websockify") or str(Path(sys.executable).parent / "websockify")
        if Path(websockify).exists():
            wproc = subprocess.Popen(
                [websockify, f"127.0.0.1:{wsfy_port}", f"127.0.0.1:{pg.port}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            procs.append(wproc)
            _wait_port(wsfy_port)
            contenders.append(
                ("websockify", lambda: WebSocket(wsfy_port, "/", subprotocol="binary"), wproc.pid)
            )
        else:
            print("websockify not found; skipping it")
        results = measure(contenders, args.mb, args.rounds, args.pings, args.up_mb)
    finally:
        for p in procs:
            stop(p)
        destroy(pg)

    direct = results[0]
    by_name = {r.name: r for r in results}
    print(
        f"\n{'':14} {'best MB/s':>10} {'median':>7} {'x direct':>9} "
        f"{'rtt med us':>11} {'p99 us':>8} {'min us':>7} {'added us':>9} {'added min':>10} "
        f"{'relay CPU ms/100MB':>19}"
    )
    for r in results:
        print(
            f"{r.name:14} {r.best_mbps:10.0f} {r.median_mbps:7.0f} "
            f"{r.median_mbps / direct.median_mbps:9.2f} {r.median_us:11.1f} {r.p99_us:8.1f} "
            f"{r.min_us:7.1f} {r.median_us - direct.median_us:9.1f} "
            f"{r.min_us - direct.min_us:10.1f} {r.cpu_ms_per_100mb:19.0f}"
        )
    if args.up_mb:
        print(
            f"\nupload (COPY FROM STDIN) {'median MB/s':>12} {'x direct':>9} "
            f"{'relay CPU ms/100MB':>19}"
        )
        for r in results:
            print(
                f"{r.name:24} {r.upload_mbps:12.0f} {r.upload_mbps / direct.upload_mbps:9.2f} "
                f"{r.upload_cpu_ms_per_100mb:19.0f}"
            )
    ours = by_name.get("proxy/uvloop") or by_name["proxy/asyncio"]
    if "websockify" in by_name:
        wsfy = by_name["websockify"]
        print(
            f"\n{ours.name} vs websockify: throughput x{ours.median_mbps / wsfy.median_mbps:.2f}, "
            f"added latency {ours.median_us - direct.median_us:.1f} us vs "
            f"{wsfy.median_us - direct.median_us:.1f} us"
        )


def _event_loops() -> list[str]:
    """The loops to run the proxy on: uvloop (the default when installed) and asyncio's own."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["uvloop", "asyncio"]


def _wait_port(port: int, within: float = 20) -> None:
    """websockify logs to stdout in odd ways; wait for its socket to accept instead."""
    import socket

    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    main()
