"""The hardened front (deploy/nginx/nginx.conf) against a real nginx in front of the real app,
and the limits uvicorn itself offers when it faces clients alone (`python -m app.serve`).

Memory is the RSS of the serving processes, read from /proc; every wait has a deadline.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import DB, ROOT
from tests.app.server import uvicorn_server
from tests.deploy.flood import flood, percentile, source_address
from tests.deploy.front import CONF_DIR, Front, running_front, server_params
from tests.hugeheader import HUGE, send_huge_header
from tools.pgcluster import free_port
from tools.procs import start_and_wait, stop


@pytest.fixture(scope="module")
def app_base(sample_db: DB) -> Iterator[str]:
    with uvicorn_server(sample_db.settings(trusted_proxies="127.0.0.1/32")) as base:
        yield base


@pytest.fixture(scope="module")
def front(app_base: str) -> Iterator[Front]:
    upstream = app_base.removeprefix("http://")
    with running_front("127.0.0.1", free_port(), [upstream]) as f:
        yield f


def test_front_serves_the_app(front: Front) -> None:
    r = httpx.get(f"{front.url}/api/nearest", params={"lat": 37.77, "lon": -122.41}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["nearestSites"][0]["name_en"] == "Invented bay site"
    # the client's own X-Forwarded-For is overwritten by the front, not trusted
    r = httpx.get(
        f"{front.url}/api/nearest", headers={"X-Forwarded-For": "81.2.69.142"}, timeout=10
    )
    assert r.status_code == 200 and "default" in r.json()["location"]


def test_front_refuses_a_64_mib_header_quickly_with_bounded_memory(front: Front) -> None:
    # the first one warms a fresh worker (about 4 MiB touched once, whatever the request)
    head, _, _ = send_huge_header(front.host, front.port)
    assert head.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), head[:200]
    before = front.rss_kib()
    for _ in range(3):
        head, sent, took = send_huge_header(front.host, front.port)
        assert head.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), head[:200]
        assert took < 3.0, took
        assert sent < HUGE  # refused long before the header ended
    grown = front.rss_kib() - before
    assert grown < 2 * 1024, f"nginx workers grew by {grown} KiB over three 64 MiB headers"


def test_front_cuts_off_a_trickled_header_section(front: Front) -> None:
    """One byte every 0.25 s never completes the head: the connection ends at the 5 s timeout."""
    sock = socket.create_connection((front.host, front.port), timeout=10)
    start = time.monotonic()
    closed_at = None
    payload = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"b" * 1000
    try:
        for byte in payload:
            sock.sendall(bytes([byte]))
            sock.settimeout(0.25)
            try:
                if sock.recv(1024) == b"":
                    closed_at = time.monotonic()
                    break
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed_at = time.monotonic()
                break
            if time.monotonic() - start > 20:
                break
    except (BrokenPipeError, ConnectionResetError):
        closed_at = time.monotonic()
    finally:
        sock.close()
    assert closed_at is not None, "still open after 20 s"
    assert 4.0 < closed_at - start < 9.0, closed_at - start


def test_front_refuses_a_large_body_with_413(front: Front) -> None:
    r = httpx.post(f"{front.url}/api/nearest", content=b"x" * (1024 * 1024), timeout=10)
    assert r.status_code == 413
    assert r.json() == {"detail": "request body too large"}


def test_front_caps_connections_per_address_with_429() -> None:
    """64 requests in progress from one address fill its share; the next gets 429 at once.

    The upstream here holds every request (accepts, never answers) so that requests stay in
    progress; the limit under test is nginx's.
    """
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(256)
    upstream = f"127.0.0.1:{stalled.getsockname()[1]}"
    socks: list[socket.socket] = []
    with running_front("127.0.0.1", free_port(), [upstream]) as f:
        try:
            for _ in range(64):
                s = socket.create_connection((f.host, f.port), timeout=10)
                s.sendall(b"GET /api/nearest HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
            # the requests are in progress once nginx has connected upstream for each
            accepted: list[socket.socket] = []
            stalled.settimeout(10)
            while len(accepted) < 64:
                accepted.append(stalled.accept()[0])
            start = time.monotonic()
            r = httpx.get(f"{f.url}/api/nearest", timeout=10)
            assert time.monotonic() - start < 2.0
            assert r.status_code == 429
            assert r.headers["retry-after"] == "1"
            assert "too many" in r.json()["detail"]
            for a in accepted:
                a.close()
        finally:
            for s in socks:
                s.close()
            stalled.close()


def _max_conns() -> int:
    params = dict(p.split("=", 1) for p in server_params(CONF_DIR / "app-servers.conf").split())
    return int(params["max_conns"])


def test_front_sheds_past_the_upstream_bound_with_503_at_once() -> None:
    """With `max_conns` requests in flight to the replica, the next one (from anyone) gets 503
    + Retry-After at once, and the replica never sees it.

    The upstream holds every request (accepts, never answers); the clients have addresses of
    their own, so the per-address cap is not what answers.
    """
    bound = _max_conns()
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(bound + 16)
    upstream = f"127.0.0.1:{stalled.getsockname()[1]}"
    socks: list[socket.socket] = []
    accepted: list[socket.socket] = []
    with running_front("127.0.0.1", free_port(), [upstream]) as f:
        try:
            for i in range(bound):
                s = socket.create_connection(
                    (f.host, f.port), timeout=10, source_address=(source_address(3, i), 0)
                )
                s.sendall(b"GET /api/nearest HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
            stalled.settimeout(10)
            while len(accepted) < bound:
                accepted.append(stalled.accept()[0])
            start = time.monotonic()
            r = httpx.get(f"{f.url}/api/nearest", timeout=10)
            assert time.monotonic() - start < 2.0
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.json()["detail"] == "service temporarily unavailable"
            # nginx answered without connecting: nothing waits in the replica's accept queue
            stalled.setblocking(False)
            with pytest.raises(BlockingIOError):
                accepted.append(stalled.accept()[0])
            # one request finishes: its slot is free again and a new request is admitted
            # (nginx frees the slot just after it forwards the answer: ask until it is)
            accepted.pop().sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            stalled.settimeout(10)
            deadline = time.monotonic() + 10
            for i in range(1000):
                s = socket.create_connection(
                    (f.host, f.port), timeout=10, source_address=(source_address(4, i), 0)
                )
                socks.append(s)
                s.sendall(b"GET /api/nearest HTTP/1.1\r\nHost: x\r\n\r\n")
                ready, _, _ = select.select([stalled, s], [], [], deadline - time.monotonic())
                if stalled in ready:
                    break
                assert s in ready, "neither admitted nor shed in 10 s"
                assert s.recv(65536).startswith(b"HTTP/1.1 503"), "not admitted, not shed"
                assert time.monotonic() < deadline, "the finished request's slot stays taken"
            else:
                raise AssertionError("1,000 requests shed after a slot was freed")
            accepted.append(stalled.accept()[0])
        finally:
            for s in socks + accepted:
                s.close()
            stalled.close()


@pytest.fixture
def flooded_front(sample_db: DB) -> Iterator[Front]:
    """The real front before `python -m app.serve` with one worker, both as subprocesses."""
    proc, port = _serve(sample_db, WORKERS="1")
    try:
        with running_front("127.0.0.1", free_port(), [f"127.0.0.1:{port}"]) as f:
            yield f
    finally:
        stop(proc)  # type: ignore[arg-type]


FLOOD_CONNECTIONS = 300
FLOOD_SECONDS = 4.0
# What a client may wait, answered or shed, on this shared 2-core machine (unloaded, the
# slowest of the flood takes under 1 s; bench/overload_bench.py has the figures). Without the
# front's bound the replica holds all 300 requests, serves some connections before others, and
# the unluckiest wait as long as the flood lasts.
BOUND_S = 2.5
FRONT_REASON = "the servers are busy or unreachable"  # deploy/nginx/nginx.conf, @unavailable


async def test_front_bounds_the_wait_under_a_flood_and_recovers(flooded_front: Front) -> None:
    """300 clients hammer one cached cell for 4 s: each request is answered or shed with 503 +
    Retry-After (by the front), none waits past the bound, and right after the flood the app
    answers normally."""
    f = flooded_front
    request = b"GET /api/nearest?lat=37.77&lon=-122.41 HTTP/1.1\r\nHost: x\r\n\r\n"
    async with httpx.AsyncClient(base_url=f.url, timeout=10) as client:
        r = await client.get("/api/nearest", params={"lat": 37.77, "lon": -122.41})
        assert r.status_code == 200, r.text  # the cell is cached: the flood is on the hot path
        t = await flood(
            f.host,
            f.port,
            request,
            connections=FLOOD_CONNECTIONS,
            seconds=FLOOD_SECONDS,
            request_timeout_s=2 * BOUND_S,
            net=2,
        )
        summary = (
            f"{len(t.ok)} answered (p99 {percentile(t.ok, 0.99):.2f} s), {len(t.shed)} shed "
            f"(p99 {percentile(t.shed, 0.99):.2f} s), slowest {t.slowest:.2f} s, "
            f"{t.bare_503} bare 503, other {t.other}, {len(t.errors)} errors {t.errors[:3]}"
        )
        print(f"flood through the front: {summary}")
        assert not t.errors and not t.other and not t.bare_503 and not t.limited, summary
        assert t.ok and t.shed, summary  # both happened: the bound was reached and held
        # the front shed them (its body), before they reached the app
        assert {json.loads(b)["reason"] for b in t.shed_bodies} == {FRONT_REASON}, summary
        assert t.slowest < BOUND_S, summary
        assert json.loads(t.last_ok_body)["nearestSites"][0]["name_en"] == "Invented bay site"
        # right after: the cached cell, and a new one that reaches the database
        r = await client.get("/api/nearest", params={"lat": 37.77, "lon": -122.41})
        assert r.status_code == 200, r.text
        r = await client.get("/api/nearest", params={"lat": 10.5, "lon": 20.5})
        assert r.status_code == 200 and r.json()["nearestSites"], r.text


# --- uvicorn alone: `python -m app.serve`, the image's command ------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _serve(db: DB, **env: str) -> tuple[object, int]:
    port = free_port()
    full = {
        "PYTHONPATH": str(ROOT),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        "DATABASE_URL": db.dsn(),
        "WS_PROXY": db.ws_proxy,
        "WS_SECURE": "false",
        **env,
    }
    proc, _ = start_and_wait(
        [sys.executable, "-m", "app.serve"], "Uvicorn running on", env=full, timeout=60
    )
    return proc, port


def test_uvicorn_alone_refuses_a_64_mib_header_with_bounded_memory(sample_db: DB) -> None:
    proc, port = _serve(sample_db)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        pid = proc.pid  # type: ignore[attr-defined]
        head, _, _ = send_huge_header("127.0.0.1", port)  # warm-up, as for nginx
        assert head.startswith(b"HTTP/1.1 400"), head[:200]
        before = _rss_kib(pid)
        for _ in range(3):
            head, sent, took = send_huge_header("127.0.0.1", port)
            assert head.startswith(b"HTTP/1.1 400"), head[:200]
            assert took < 3.0 and sent < HUGE
        grown = _rss_kib(pid) - before
        assert grown < 4 * 1024, f"uvicorn grew by {grown} KiB over three 64 MiB headers"
    finally:
        stop(proc)  # type: ignore[arg-type]


def test_uvicorn_alone_caps_connections_with_503(sample_db: DB) -> None:
    proc, port = _serve(sample_db, LIMIT_CONCURRENCY="4")
    idle: list[socket.socket] = []
    try:
        for _ in range(4):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        # uvicorn counts a connection once it has been set up: wait for all four
        deadline = time.monotonic() + 10
        while True:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            if r.status_code == 503 or time.monotonic() > deadline:
                break
        assert r.status_code == 503
        for s in idle:
            s.close()
        idle.clear()
        deadline = time.monotonic() + 10
        while (r := httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)).status_code != 200:
            assert time.monotonic() < deadline, "still refusing after the idle ones left"
        assert json.loads(r.text) == {"status": "ok"}
    finally:
        for s in idle:
            s.close()
        stop(proc)  # type: ignore[arg-type]
