"""A client that streams a 64 MiB header value while it reads: the oversized-header attack
that both the app served alone (tests/app/test_app_demo.py) and the nginx front
(tests/deploy/test_front.py) must refuse quickly."""

from __future__ import annotations

import socket
import threading
import time

HUGE = 64 * 1024 * 1024


def read_head(sock: socket.socket, deadline: float) -> bytes:
    """Read until the end of the response head (or EOF, a reset, the deadline)."""
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


def send_huge_header(host: str, port: int) -> tuple[bytes, int, float]:
    """Stream a 64 MiB header value while reading; returns the response head, the bytes sent
    before the server stopped reading, and the seconds until the response came."""
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
            pass  # the server closed the connection: what we want

    start = time.monotonic()
    writer = threading.Thread(target=pump, daemon=True)
    writer.start()
    try:
        head = read_head(sock, start + 30)
        took = time.monotonic() - start
    finally:
        stop_sending.set()
        sock.close()
        writer.join(10)
    return head, sent, took
