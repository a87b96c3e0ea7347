"""Session fixtures shared by every test: the private PostgreSQL cluster and the real proxy."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tools.pgbouncer import Bouncer, start_pgbouncer
from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    """A private PostgreSQL 15 + PostGIS cluster with TLS and one role per auth method."""
    cluster = start_temp_cluster()
    try:
        yield cluster
    finally:
        destroy(cluster)


class ProxyProcess:
    def __init__(self, port: int, proc: object, sql_port: int | None = None) -> None:
        self.port = port
        self.proc = proc
        self.host = "127.0.0.1"
        self.sql_port = sql_port  # SQL over HTTP (POST /sql), when enabled

    @property
    def sql_url(self) -> str:
        assert self.sql_port is not None, "this proxy has no SQL_HTTP_LISTEN"
        return f"http://{self.host}:{self.sql_port}/sql"

    @property
    def ws_proxy(self) -> str:
        """The driver's `ws_proxy` setting for this proxy (use with use_secure_websocket=False)."""
        return f"{self.host}:{self.port}/v2"

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v2"


@contextmanager
def running_proxy(allow_addr_regex: str, **settings: str) -> Iterator[ProxyProcess]:
    """The real proxy process on a free loopback port, allowed to reach only what the regex
    admits (``settings``: more of its environment, e.g. TLS_CERT); stopped (SIGTERM, bounded)
    on exit."""
    port, sql_port = free_port(), free_port()
    env = {
        "LISTEN_PORT": f"127.0.0.1:{port}",
        "SQL_HTTP_LISTEN": f"127.0.0.1:{sql_port}",
        "ALLOW_ADDR_REGEX": allow_addr_regex,
        **settings,
    }
    proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "wsproxy listening", env=env)
    try:
        yield ProxyProcess(port, proc, sql_port if env["SQL_HTTP_LISTEN"] else None)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def proxy(pg: Cluster) -> Iterator[ProxyProcess]:
    """The real proxy process, allowed to reach only the private cluster."""
    with running_proxy(rf"(127\.0\.0\.1|localhost|\[::1\]):{pg.port}") as p:
        yield p


@pytest.fixture(scope="session")
def pgbouncer(pg: Cluster) -> Iterator[Bouncer]:
    """Debian's pgbouncer in transaction pooling mode in front of the private cluster."""
    bouncer = start_pgbouncer(pg)
    try:
        yield bouncer
    finally:
        bouncer.stop()
