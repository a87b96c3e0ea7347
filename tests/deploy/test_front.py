"""The hardened front (deploy/nginx/nginx.conf) against a real nginx in front of the real app,
and the limits uvicorn itself offers when it faces clients alone (`python -m app.serve`).

Memory is the RSS of the serving processes, read from /proc; every wait has a deadline.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import DB, ROOT
from tests.app.server import uvicorn_server
from tests.deploy.front import Front, running_front
from tools.pgcluster import free_port
from tools.procs import start_and_wait, stop

HUGE = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def app_base(sample_db: DB) -> Iterator[str]:
    with uvicorn_server(sample_db.settings(trusted_proxies="127.0.0.1/32")) as base:
        yield base


@pytest.fixture(scope="module")
def front(app_base: str) -> Iterator[Front]:
    upstream = app_base.removeprefix("http://")
    with running_front("127.0.0.1", free_port(), [upstream]) as f:
        yield f


def _status_line(sock: socket.socket, deadline: float) -> bytes:
    """Read until the end of the response head (or EOF) before `deadline`."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _send_huge_header(host: str, port: int) -> tuple[bytes, int, float]:
    """Stream a 64 MiB header value; returns the response head, bytes sent and seconds taken."""
    sock = socket.create_connection((host, port), timeout=10)
    sent = 0
    stop_sending = threading.Event()

    def pump() -> None:
        nonlocal sent
        chunk = b"a" * 65536
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while sent < HUGE and not stop_sending.is_set():
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the server closed: what we want

    start = time.monotonic()
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    head = _status_line(sock, start + 30)
    took = time.monotonic() - start
    stop_sending.set()
    sock.close()
    t.join(10)
    return head, sent, took


def test_front_serves_the_app(front: Front) -> None:
    r = httpx.get(f"{front.url}/api/nearest", params={"lat": 37.77, "lon": -122.41}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["nearestSites"][0]["name_en"] == "Invented bay site"
    # the client's own X-Forwarded-For is overwritten by the front, not trusted
    r = httpx.get(f"{front.url}/api/nearest", headers={"X-Forwarded-For": "81.2.69.142"},
                  timeout=10)
    assert r.status_code == 200 and "default" in r.json()["location"]


def test_front_refuses_a_64_mib_header_quickly_with_bounded_memory(front: Front) -> None:
    # the first one warms a fresh worker (about 4 MiB touched once, whatever the request)
    head, _, _ = _send_huge_header(front.host, front.port)
    assert head.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), head[:200]
    before = front.rss_kib()
    for _ in range(3):
        head, sent, took = _send_huge_header(front.host, front.port)
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
            accepted = []
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
    proc, _ = start_and_wait([sys.executable, "-m", "app.serve"], "Uvicorn running on",
                             env=full, timeout=60)
    return proc, port


def test_uvicorn_alone_refuses_a_64_mib_header_with_bounded_memory(sample_db: DB) -> None:
    proc, port = _serve(sample_db)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        pid = proc.pid  # type: ignore[attr-defined]
        head, _, _ = _send_huge_header("127.0.0.1", port)  # warm-up, as for nginx
        assert head.startswith(b"HTTP/1.1 400"), head[:200]
        before = _rss_kib(pid)
        for _ in range(3):
            head, sent, took = _send_huge_header("127.0.0.1", port)
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

