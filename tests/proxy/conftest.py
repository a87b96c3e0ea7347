"""Fixtures for the proxy: extra proxy processes with their own settings, a scriptable TCP
target that counts what reaches it, and a bare WebSocket client that can misbehave."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from websockets.utils import apply_mask

from tools.pgcluster import Cluster, free_port

ROOT = Path(__file__).resolve().parents[2]


class ProxyProc:
    """A `python -m proxy` child whose stderr is kept, so tests can wait on its log lines."""

    def __init__(self, env: dict[str, str], args: list[str] | None = None) -> None:
        self.port = free_port()
        self.env = {"LISTEN_PORT": f"127.0.0.1:{self.port}", **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "proxy", *(args or [])],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_for("listening")

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<exited>")
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 20, start: int = 0) -> str:
        """Block until a log line (from index `start`) matches `pattern`; return it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if rx.search(line):
                        return line
                if "<exited>" in self.lines and not rx.search("<exited>"):
                    raise AssertionError(f"proxy exited: {self.lines[-15:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no log line /{pattern}/: {self.lines[-15:]}")
                self._cond.wait(left)

    async def await_line(self, pattern: str, within: float = 20, start: int = 0) -> str:
        return await asyncio.to_thread(self.wait_for, pattern, within, start)

    def mark(self) -> int:
        """Index to pass as `start`, so a wait ignores what was logged before."""
        with self._cond:
            return len(self.lines)

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def url(self, address: str | None = None, path: str = "/v2") -> str:
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?address={address}" if address else "")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the proxy; an unexpected traceback in its log fails the test that used it."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.wait_for("<exited>", 10)  # every line read
        assert "Traceback" not in self.log, self.log[-3000:]
        return self.proc.returncode


@pytest.fixture
def proxy_factory() -> Iterator[type[ProxyProc]]:
    """Start extra proxies inside one test; all are stopped at its end."""
    started: list[ProxyProc] = []

    class Tracked(ProxyProc):
        def __init__(self, env: dict[str, str], args: list[str] | None = None) -> None:
            super().__init__(env, args)
            started.append(self)

    yield Tracked
    for p in started:
        p.stop()


class Target:
    """A loopback TCP server standing in for a database: it records every connection.

    Listening on 127.0.0.1, 127.0.0.2 and ::1 on one port lets the deny-list tests refuse
    some loopback addresses and still prove, with a control connection, that others pass.
    """

    def __init__(self) -> None:
        self.port = 0
        self.accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.count = 0
        self.servers: list[asyncio.Server] = []

    async def start(self) -> None:
        for _ in range(20):
            port = free_port()
            try:
                for host in ("127.0.0.1", "127.0.0.2", "::1"):
                    self.servers.append(await asyncio.start_server(self._on, host, port))
            except OSError:
                await self.close()
                continue
            self.port = port
            return
        raise RuntimeError("no common free port")

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count += 1
        await self.accepted.put((reader, writer))

    async def next(self, within: float = 10) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(within):
            return await self.accepted.get()

    async def close(self) -> None:
        for s in self.servers:
            s.close()
        self.servers.clear()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tgt() -> AsyncIterator[Target]:
    """A target shared by one module's tests (its proxies stay up for the whole module)."""
    t = Target()
    await t.start()
    yield t
    await t.close()


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    await t.start()
    yield t
    await t.close()
    while not t.accepted.empty():
        t.accepted.get_nowait()[1].close()


class RawWS:
    """A minimal hand-written WebSocket client: it can stop reading, skip pongs, send text,
    set any Host header, and shows every frame the proxy sends (pings included)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(
        cls, port: int, path: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1"
    ) -> tuple[int, bytes, RawWS]:
        """Returns (HTTP status, response head+body start, client)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {
            "Host": host,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
            **(headers or {}),
        }
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        writer.write(head.encode() + b"\r\n")
        resp = await reader.readuntil(b"\r\n\r\n")
        status = int(resp.split(b" ", 2)[1])
        return status, resp, cls(reader, writer)

    def send_frame(self, payload: bytes, opcode: int = 2) -> None:
        self.writer.write(self.frame(payload, opcode))

    @staticmethod
    def frame(payload: bytes, opcode: int = 2) -> bytes:
        """A final masked client frame (RFC 6455 5.2)."""
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        return head + mask + apply_mask(payload, mask)

    async def read_frame(self) -> tuple[int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    def close(self) -> None:
        self.writer.close()


def pg_startup(user: str, database: str = "testdb") -> bytes:
    """StartupMessage ("Message Formats"): protocol 3.0 and key/value pairs."""
    body = (
        struct.pack("!I", 196608)
        + b"".join(
            k.encode() + b"\0" + v.encode() + b"\0"
            for k, v in (("user", user), ("database", database))
        )
        + b"\0"
    )
    return struct.pack("!I", len(body) + 4) + body


def pg_query(sql: str) -> bytes:
    body = sql.encode() + b"\0"
    return b"Q" + struct.pack("!I", len(body) + 4) + body


@pytest.fixture
def pg_target_regex(pg: Cluster) -> str:
    return rf"(127\.0\.0\.1|localhost|\[::1\]):{pg.port}"


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")
