"""connect(wait_ready=False) against the real server: the first operation carries the last
authentication message, reports the server's verdict as a typed error, never leaves a
connection half-open, and stays within connect's deadline."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import driver
from driver import errors
from driver.startup import forget_auth_methods
from tests.conftest import ProxyProcess
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster, free_port
from tools.procs import start_and_wait, stop
from tools.relay import CountingRelay


@pytest.fixture(autouse=True)
def _fresh_methods() -> Iterator[None]:
    forget_auth_methods()
    yield
    forget_auth_methods()


@pytest.fixture(scope="module")
def open_proxy() -> Iterator[str]:
    """A proxy of our own that may reach any loopback port (a silent stand-in for Postgres)."""
    port = free_port()
    env = {"LISTEN_PORT": f"127.0.0.1:{port}",
           "ALLOW_ADDR_REGEX": r"(127\.[0-9.]+|localhost):[0-9]+"}
    proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "listening", env=env)
    try:
        yield f"127.0.0.1:{port}/v2"
    finally:
        stop(proc)


@pytest.fixture
def marker_table(pg: Cluster) -> Iterator[str]:
    pg.psql("create table if not exists pipeline_marker (who text); "
            "truncate pipeline_marker; grant all on pipeline_marker to public")
    yield "pipeline_marker"
    pg.psql("drop table if exists pipeline_marker")


@pytest.mark.parametrize("role", ["scram_user", "md5_user", "clear_user"])
async def test_wrong_password_fails_the_first_operation_with_the_typed_error(
        pg: Cluster, proxy: ProxyProcess, transport: str, role: str, marker_table: str) -> None:
    target = proxy.port if transport == "ws" else pg.port
    async with CountingRelay("127.0.0.1", target) as relay:
        kw: dict[str, Any] = {"sslmode": "disable", "allow_unencrypted_password": True,
                              "password": "wrong", "wait_ready": False}
        if transport == "ws":
            kw.update(ws_proxy=f"127.0.0.1:{relay.port}/v2", use_secure_websocket=False)
        else:
            kw.update(port=relay.port)
        conn = await driver.connect(pg.dsn(role), **kw)  # returns before the verdict
        with pytest.raises(errors.InvalidPassword, match="password authentication failed"):
            await conn.execute(f"insert into {marker_table} values ($1)", role)
        assert conn.is_closed()
        with pytest.raises(driver.InterfaceError, match="InvalidPassword"):
            await conn.fetchval("select 1")
        await asyncio.wait_for(relay.last().closed.wait(), 10)  # nothing left open
    assert pg.psql(f"select count(*) from {marker_table}") == "0"  # the insert never ran


async def test_ready_reports_the_verdict_and_the_server_facts(connect_args: ConnectArgs,
                                                              transport: str) -> None:
    conn = await driver.connect(**connect_args("scram_user", transport, wait_ready=False))
    try:
        assert conn.get_server_pid() is None  # not confirmed yet
        await conn.ready()
        assert conn.get_server_pid() and conn.get_server_version().startswith("15")
        await conn.ready()  # once confirmed, free
        assert await conn.fetchval("select current_user") == "scram_user"
    finally:
        await conn.close()
    bad = await driver.connect(**connect_args("scram_user", transport, password="nope",
                                              wait_ready=False))  # fmt: skip
    with pytest.raises(errors.InvalidPassword):
        await bad.ready()
    assert bad.is_closed()


async def test_unknown_database_and_a_missing_password_are_typed_at_first_use(
        connect_args: ConnectArgs, transport: str) -> None:
    conn = await driver.connect(**connect_args("trust_user", transport, database="nope",
                                               wait_ready=False))  # fmt: skip
    with pytest.raises(errors.InvalidCatalogName):
        await conn.fetch("select 1")
    assert conn.is_closed()
    conn = await driver.connect(**connect_args("trust_user", transport, user="scram_user",
                                               wait_ready=False))  # trust_user's DSN: no password
    with pytest.raises(driver.InterfaceError, match="none was given"):
        await conn.fetch("select 1")
    assert conn.is_closed()


async def test_close_before_any_operation_ends_the_session(pg: Cluster,
                                                           proxy: ProxyProcess) -> None:
    async with CountingRelay("127.0.0.1", proxy.port) as relay:
        conn = await driver.connect(pg.dsn("scram_user"), sslmode="disable", wait_ready=False,
                                    ws_proxy=f"127.0.0.1:{relay.port}/v2",
                                    use_secure_websocket=False)  # fmt: skip
        await conn.close()
        await asyncio.wait_for(relay.last().closed.wait(), 10)
        assert bytes(relay.last().ws_up.messages[-1]).endswith(b"X\0\0\0\x04")  # Terminate


SIZES = [1, 100, 1_000, 16_000, 16_384, 16_500, 65_536, 100_000, 262_144]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("options", [
    pytest.param({"sslmode": "disable"}, id="plain"),
    pytest.param({"sslmode": "require"}, id="pg-tls"),
])
async def test_a_first_query_of_any_size_rides_the_last_auth_flight(
        connect_args: ConnectArgs, transport: str, size: int, options: dict[str, Any]) -> None:
    """1 byte to 256 KB of SQL after client-final: across WebSocket messages and TLS
    records. The statement is exactly ``size`` bytes (past a 1-byte ';', which is empty)."""
    sql = ";" if size == 1 else "select '" + "x" * (size - len("select ''")) + "'"
    assert len(sql) == size
    conn = await driver.connect(**connect_args("scram_user", transport, wait_ready=False,
                                               **options))  # fmt: skip
    try:
        if size == 1:
            assert await conn.execute(sql) == ""
        else:
            assert await conn.fetchval(sql) == "x" * (size - len("select ''"))
        assert conn.get_server_pid() is not None
    finally:
        await conn.close()


async def _silent_server() -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, read, never answer
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.fixture
async def silent() -> AsyncIterator[int]:
    server = await _silent_server()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_proxy_that_accepts_and_never_answers_fails_at_the_deadline(
        silent: int) -> None:
    with pytest.raises(TimeoutError, match=r"timed out after 0\.3 s"):
        await driver.connect(host="127.0.0.1", port=5432, user="u", password="p",
                             sslmode="disable", ws_proxy=f"127.0.0.1:{silent}/v2",
                             use_secure_websocket=False, wait_ready=False, timeout=0.3)


async def test_a_silent_database_behind_the_proxy_fails_at_the_deadline(
        silent: int, open_proxy: str) -> None:
    """With a password, connect() waits for server-first: its own deadline. With trust
    there is nothing to wait for, and the first query fails at connect's deadline."""
    kw: dict[str, Any] = {"host": "127.0.0.1", "port": silent, "user": "u", "database": "d",
                          "sslmode": "disable", "ws_proxy": open_proxy,
                          "use_secure_websocket": False, "wait_ready": False}
    with pytest.raises(TimeoutError, match=r"timed out after 0\.3 s"):
        await driver.connect(password="p", timeout=0.3, **kw)
    conn = await driver.connect(timeout=0.3, **kw)
    with pytest.raises(TimeoutError, match=r"timed out after 0\.3 s \(start-up not confirmed"):
        await conn.fetchval("select 1")
    assert conn.is_closed()
