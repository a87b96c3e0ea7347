"""A flood of closed-loop HTTP/1.1 clients, each on its own loopback address: the overload
that tests/deploy/test_front.py asserts on and bench/overload_bench.py measures.

Each client keeps one keep-alive connection busy (its next request goes out as soon as the
answer is in, even after a 503: a worse client than a browser honouring Retry-After) and opens
a new one when the server closes. A request's latency runs from the moment the client starts it
to the end of the answer, the connect included when it opens a connection. Every client has its
own source address in 127.0.0.0/8 (all local on Linux), as many clients on the internet would,
so the front's per-address limits are not what is measured.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


def source_address(net: int, i: int) -> str:
    """The i-th client's address in 127.`net`.0.0/16."""
    return f"127.{net}.{i // 250}.{1 + i % 250}"


@dataclass
class Tally:
    """Outcomes and latencies (seconds) of every request of a flood."""

    ok: list[float] = field(default_factory=list)
    shed: list[float] = field(default_factory=list)  # 503 with Retry-After
    shed_bodies: dict[bytes, int] = field(default_factory=dict)  # their bodies, counted
    limited: list[float] = field(default_factory=list)  # 429 with Retry-After
    bare_503: int = 0
    other: dict[int, int] = field(default_factory=dict)  # any other status
    errors: list[str] = field(default_factory=list)  # refused, reset, past the timeout
    slowest: float = 0.0  # of every request, whatever its outcome
    connects: list[float] = field(default_factory=list)  # how long each connect took
    last_ok_body: bytes = b""

    def took(self, seconds: float) -> None:
        self.slowest = max(self.slowest, seconds)

    def past(self, seconds: float) -> int:
        return sum(1 for t in (*self.ok, *self.shed, *self.limited) if t > seconds)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_connection(
    host: str,
    port: int,
    src: str,
    request: bytes,
    until: float,
    request_timeout_s: float,
    tally: Tally,
) -> None:
    """Requests on one connection until `until` or until the server closes it."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(request_timeout_s):
            reader, writer = await asyncio.open_connection(host, port, local_addr=(src, 0))
        tally.connects.append(time.monotonic() - start)
    except (OSError, TimeoutError) as exc:
        tally.errors.append(f"connect: {exc!r}")
        tally.took(time.monotonic() - start)
        return
    try:
        while time.monotonic() < until:
            async with asyncio.timeout(request_timeout_s):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                length = 0
                for line in lower.split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
            took = time.monotonic() - start
            tally.took(took)
            status = int(head.split(b" ", 2)[1])
            retry_after = b"\r\nretry-after:" in lower
            if status == 200:
                tally.ok.append(took)
                tally.last_ok_body = body
            elif status == 503 and retry_after:
                tally.shed.append(took)
                tally.shed_bodies[body] = tally.shed_bodies.get(body, 0) + 1
            elif status == 429 and retry_after:
                tally.limited.append(took)
            elif status == 503:
                tally.bare_503 += 1
            else:
                tally.other[status] = tally.other.get(status, 0) + 1
            if b"\r\nconnection: close" in lower:
                return  # uvicorn's own 503 closes the connection
            start = time.monotonic()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        tally.errors.append(repr(exc))
        tally.took(time.monotonic() - start)
    finally:
        writer.close()


async def flood(
    host: str,
    port: int,
    request: bytes,
    *,
    connections: int,
    seconds: float,
    request_timeout_s: float,
    net: int = 1,
) -> Tally:
    """`connections` closed-loop clients, from 127.`net`.x.y, for `seconds`."""
    tally = Tally()
    until = time.monotonic() + seconds

    async def client(src: str) -> None:
        while time.monotonic() < until:
            await one_connection(host, port, src, request, until, request_timeout_s, tally)

    await asyncio.gather(*(client(source_address(net, i)) for i in range(connections)))
    return tally
