"""connect(wait_ready=False) against the real server: the first operation carries the last
authentication message, reports the server's verdict as a typed error, never leaves a
connection half-open, and stays within connect's deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import driver
from driver import errors
from driver.connect import forget_auth_methods
from tests.conftest import ProxyProcess
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster
from tools.relay import CountingRelay


@pytest.fixture(autouse=True)
def _fresh_methods() -> Iterator[None]:
    forget_auth_methods()
    yield
    forget_auth_methods()


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


@pytest.mark.parametrize("sslmode", ["allow", "prefer"])
async def test_sslmode_fallbacks_still_happen_inside_connect(
        connect_args: ConnectArgs, transport: str, sslmode: str) -> None:
    """clear_user's password may not cross a WebSocket proxy in clear (the default policy):
    with sslmode=allow the attempt in clear is refused and connect() retries with TLS, so an
    attempt that another may follow never returns before the server has answered. Over
    direct TCP the attempt in clear sends it, as libpq does."""
    conn = await driver.connect(**connect_args("clear_user", transport, sslmode=sslmode,
                                               allow_unencrypted_password=False,
                                               wait_ready=False))  # fmt: skip
    try:
        row = await conn.fetchrow("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        assert row is not None and row["ssl"] is (transport == "ws" or sslmode == "prefer")
    finally:
        await conn.close()


async def test_an_attempt_that_may_be_retried_waits_for_the_servers_first_answer() -> None:
    """A stand-in server refuses the first connection as pg_hba.conf would (28000) and
    accepts the second, in clear after answering SSLRequest with 'N'. Trust is predicted (no
    password), which alone would let connect() return at once: with sslmode=allow it must
    not, or the refusal would reach the first query instead of the retry with TLS."""
    from tests.driver import fakes as f

    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(8)
        seen.append(head)
        if len(seen) == 1:
            writer.write(f.error("28000", "no pg_hba.conf entry, no encryption", "FATAL"))
        else:
            writer.write(b"N")
            await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big") - 4)
            writer.write(f.STARTUP_DONE)
            assert (await reader.readexactly(1)) == b"Q"
            await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big") - 4)
            writer.write(f.command_complete("SELECT 0") + f.ready())
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await driver.connect(host="127.0.0.1", port=port, user="u", database="d",
                                    sslmode="allow", wait_ready=False, timeout=5)
        assert await conn.execute("select") == "SELECT 0"
        await conn.close()
    finally:
        server.close()
        await server.wait_closed()
    assert len(seen) == 2 and seen[1] == (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


@pytest.mark.parametrize("size", [1, 16_500, 262_144])
async def test_the_first_query_shares_the_client_final_message(pg: Cluster, proxy: ProxyProcess,
                                                               size: int) -> None:
    """Over the WebSocket without Postgres TLS the relay can read the messages: the SCRAM
    client-final (a 'p' message) and the whole first query travel in ONE flight (one write;
    a query over 64 KiB is carried in several WebSocket messages), however large the query."""
    marker = ("zq7" * size)[: max(3, size - len("select ''"))]
    async with CountingRelay("127.0.0.1", proxy.port) as relay:
        conn = await driver.connect(pg.dsn("scram_user"), sslmode="disable", wait_ready=False,
                                    ws_proxy=f"127.0.0.1:{relay.port}/v2",
                                    use_secure_websocket=False)  # fmt: skip
        try:
            assert await conn.fetchval(f"select '{marker}'") == marker
        finally:
            await conn.close()
        relayed = relay.last()
    messages, flights = iter(relayed.ws_up.messages), []
    for _, count in relayed.up_flights():  # the bytes of each client flight, unframed
        flights.append(b"".join(next(messages) for _ in range(count)))
    [flight] = [f for f in flights if marker.encode() in f]
    assert flight.startswith(b"p") and b"c=biws,r=" in flight  # client-final, then the query
