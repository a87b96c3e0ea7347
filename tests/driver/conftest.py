"""Fixtures for driver tests: connection arguments per role and per transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest

import driver
from tests.conftest import ProxyProcess, running_proxy
from tools.pgcluster import Cluster

ROLES = ("trust_user", "clear_user", "md5_user", "scram_user")
TRANSPORTS = ("tcp", "ws")

ConnectArgs = Callable[..., dict[str, Any]]
Connect = Callable[..., Awaitable[Any]]


@pytest.fixture(scope="session")
def connect_args(pg: Cluster, proxy: ProxyProcess) -> ConnectArgs:
    """Keyword arguments for driver.connect() for a role over a transport.

    Plain TCP and the WebSocket run without TLS here (TLS has its own tests); password roles
    then need allow_unencrypted_password, since the driver refuses to send a password in clear
    by default.
    """

    def make(role: str = "scram_user", transport: str = "tcp", **extra: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "dsn": pg.dsn(role),
            "sslmode": "disable",
            "allow_unencrypted_password": True,
        }
        if transport == "ws":
            args.update(ws_proxy=proxy.ws_proxy, use_secure_websocket=False)
        args.update(extra)
        return args

    return make


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def conn(
    connect_args: ConnectArgs, transport: str, role: str
) -> AsyncIterator[driver.Connection]:
    """A connection for each auth role over each transport: the query suite runs 8 times."""
    c = await driver.connect(**connect_args(role, transport))
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture(scope="session")
def open_proxy() -> Iterator[str]:
    """A proxy that may reach any loopback port: for relays in front of Postgres, silent
    stand-in servers, or the cluster under another name (the session proxy reaches only the
    cluster). Its ``ws_proxy`` value."""
    with running_proxy(r"(127\.[0-9.]+|localhost|\[::1\]):[0-9]+") as p:
        yield p.ws_proxy


@pytest.fixture
async def dconn(connect_args: ConnectArgs, transport: str) -> AsyncIterator[driver.Connection]:
    """The trust role over each transport, for tests that compare with asyncpg (``apg``)."""
    c = await driver.connect(**connect_args("trust_user", transport))
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def apg(pg: Cluster) -> AsyncIterator[asyncpg.Connection]:
    """asyncpg itself on the same cluster and role, side by side with ``dconn``."""
    c = await asyncpg.connect(pg.dsn("trust_user"), ssl=False)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture(params=["tcp", "ws", "asyncpg"])
def connect(request: pytest.FixtureRequest, connect_args: ConnectArgs, pg: Cluster) -> Connect:
    """The driver over each transport, and asyncpg itself on the same cluster (the reference):
    one test body, run against all three, for behaviour that must match asyncpg's."""
    mode = str(request.param)
    if mode == "asyncpg":
        return lambda **kw: asyncpg.connect(pg.dsn("trust_user"), ssl=False, **kw)
    return lambda **kw: driver.connect(**connect_args("trust_user", mode, **kw))
