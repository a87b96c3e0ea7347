"""Failures surface as typed errors, at the call that awaits them, within their deadlines."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

import driver
from driver import errors
from tests.conftest import ProxyProcess
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster, refused_port


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A loopback TCP server that accepts and then never says a word."""
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        done.set()
        server.close()
        await server.wait_closed()


@pytest.fixture
def loop_errors() -> Iterator[list[dict[str, object]]]:
    """Whatever reaches the event loop's exception handler during the test."""
    loop = asyncio.get_event_loop()
    seen: list[dict[str, object]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    yield seen
    loop.set_exception_handler(old)


async def test_wrong_password(connect_args: ConnectArgs, transport: str) -> None:
    args = connect_args("scram_user", transport, password="wrong")
    with pytest.raises(errors.InvalidPassword, match="password authentication failed"):
        await driver.connect(**args)


async def test_md5_wrong_password(connect_args: ConnectArgs, transport: str) -> None:
    with pytest.raises(errors.InvalidPassword):
        await driver.connect(**connect_args("md5_user", transport, password="wrong"))


async def test_unknown_database(connect_args: ConnectArgs, transport: str) -> None:
    with pytest.raises(errors.InvalidCatalogName):
        await driver.connect(**connect_args("trust_user", transport, database="nope"))


async def test_closed_port_is_a_transport_error_naming_the_target() -> None:
    with refused_port() as port:
        start = time.monotonic()
        with pytest.raises(driver.TransportError, match=f"127.0.0.1:{port}"):
            await driver.connect(host="127.0.0.1", port=port, user="x", sslmode="disable")
    assert time.monotonic() - start < 5


async def test_unresponsive_host_times_out_within_connect_timeout(silent_server: int) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{silent_server}.*0.5 s"):
        await driver.connect(
            host="127.0.0.1", port=silent_server, user="x", sslmode="disable", connect_timeout=0.5
        )
    assert time.monotonic() - start < 3


async def test_proxy_refusing_the_address(proxy: ProxyProcess, pg: Cluster) -> None:
    # The proxy's allow-list admits only the cluster's port.
    with (
        refused_port() as port,
        pytest.raises(driver.TransportError, match=r"proxy refused .*address=127.0.0.1:\d+"),
    ):
        await driver.connect(
            host="127.0.0.1", port=port, user="x", sslmode="disable", connect_timeout=5,
            ws_proxy=proxy.ws_proxy, use_secure_websocket=False,
        )  # fmt: skip


async def test_proxy_not_listening(pg: Cluster) -> None:
    with (
        refused_port() as port,
        pytest.raises(driver.TransportError, match=f"ws://127.0.0.1:{port}"),
    ):
        await driver.connect(
            pg.dsn("trust_user"), sslmode="disable", ws_proxy=f"127.0.0.1:{port}/v2",
            use_secure_websocket=False,
        )  # fmt: skip


async def test_server_closing_mid_query(
    connect_args: ConnectArgs, transport: str, loop_errors: list[dict[str, object]]
) -> None:
    victim = await driver.connect(**connect_args("trust_user", transport))
    pid = victim.get_server_pid()
    async with await driver.connect(**connect_args("trust_user", "tcp")) as killer:

        async def kill_when_active() -> None:
            active = "select state = 'active' from pg_stat_activity where pid = $1"
            while not await killer.fetchval(active, pid):
                pass  # each probe is a round trip; the victim's query starts meanwhile
            await killer.fetchval("select pg_terminate_backend($1)", pid)

        results = await asyncio.gather(
            victim.fetchval("select pg_sleep(30)"), kill_when_active(), return_exceptions=True
        )
    exc = results[0]
    assert isinstance(exc, driver.ConnectionLostError)
    assert "127.0.0.1" in str(exc) and "terminating connection" in str(exc)
    assert not exc.unsent  # the query was running: not safe to retry
    if transport == "ws":
        assert "ws://127.0.0.1" in str(exc)  # names the proxy URL too
    assert victim.is_closed()
    await victim.close()
    assert loop_errors == []


async def test_backend_terminated_while_idle_is_noticed_at_next_use(
    connect_args: ConnectArgs, transport: str, loop_errors: list[dict[str, object]]
) -> None:
    victim = await driver.connect(**connect_args("trust_user", transport))
    pid = victim.get_server_pid()
    async with await driver.connect(**connect_args("trust_user", "tcp")) as killer:
        assert await killer.fetchval("select pg_terminate_backend($1, 5000)", pid) is True
    with pytest.raises(driver.ConnectionLostError) as info:
        await victim.fetchval("select 1")
    assert info.value.unsent  # the server was gone before it read our query
    assert "terminating connection" in str(info.value)  # the server's own reason
    with pytest.raises(driver.InterfaceError, match="closed"):
        await victim.fetchval("select 1")
    await victim.close()
    assert loop_errors == []


async def test_empty_and_malformed_dsn_fail_at_once() -> None:
    with pytest.raises(driver.InterfaceError, match="empty DSN"):
        await driver.connect("")
    with pytest.raises(driver.InterfaceError, match="postgres://"):
        await driver.connect("mysql://u@h/db")
    with pytest.raises(driver.InterfaceError, match="port"):
        await driver.connect("postgres://u@h:notaport/db")


async def test_websocket_without_proxy_fails_at_once(pg: Cluster) -> None:
    with pytest.raises(driver.InterfaceError, match="ws_proxy"):
        await driver.connect(pg.dsn("trust_user"), transport="websocket")


async def test_close_is_bounded_and_idempotent(connect_args: ConnectArgs, transport: str) -> None:
    conn = await driver.connect(**connect_args("trust_user", transport))
    start = time.monotonic()
    await conn.close(timeout=2)
    await conn.close()
    assert time.monotonic() - start < 2.5
    assert conn.is_closed()
    with pytest.raises(driver.InterfaceError, match="closed"):
        await conn.fetch("select 1")


async def test_connection_from_another_loop_is_refused(connect_args: ConnectArgs) -> None:
    conn = await driver.connect(**connect_args("trust_user", "tcp"))
    caught: list[BaseException] = []

    def other_thread() -> None:
        try:
            asyncio.run(conn.fetchval("select 1"))
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert len(caught) == 1 and isinstance(caught[0], driver.InterfaceError)
    assert "different event loop" in str(caught[0])
    assert await conn.fetchval("select 1") == 1
    await conn.close()


async def test_listening_connection_terminated_while_idle(
    connect_args: ConnectArgs, transport: str, loop_errors: list[dict[str, object]]
) -> None:
    victim = await driver.connect(**connect_args("trust_user", transport))
    await victim.add_listener("chan", lambda *_: None)
    reader = victim._session._reader
    assert reader is not None
    async with await driver.connect(**connect_args("trust_user", "tcp")) as killer:
        await killer.fetchval("select pg_terminate_backend($1, 5000)", victim.get_server_pid())
    async with asyncio.timeout(10):
        await asyncio.wait({reader})  # the reader saw the FATAL and EOF, and raised nothing
    assert victim.is_closed()
    with pytest.raises(driver.ConnectionLostError) as info:
        await victim.fetchval("select 1")
    assert info.value.unsent and "terminating connection" in str(info.value)
    with pytest.raises(driver.InterfaceError, match="closed"):
        await victim.fetchval("select 1")
    await victim.close()
    assert loop_errors == []
