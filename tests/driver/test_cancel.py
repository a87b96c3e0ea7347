"""Cancellation keeps the connection, nothing hangs, deadlines are hard (issues 12 and 18).

Against the real cluster over TCP and WebSocket, side by side with asyncpg where the behaviour
is asyncpg's; against a scripted server that ignores CancelRequests where the fault is easier to
script; and against a real backend stopped with SIGSTOP (a real server that does not answer).
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import driver
import driver.session
from tests.driver.conftest import Connect, ConnectArgs
from tests.driver.fakes import AUTH_OK, backend_key, ready

CANCEL_REQUEST_CODE = 80877102


async def until(cond: Callable[[], bool], what: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline} s: {what}")
        await asyncio.sleep(0.01)


def _canceled(mod_conn: Any) -> type[BaseException]:
    return (
        asyncpg.QueryCanceledError
        if isinstance(mod_conn, asyncpg.Connection)
        else driver.errors.QueryCanceledError
    )


# ---- the real cluster --------------------------------------------------------------------


async def test_task_cancel_keeps_the_connection(connect: Connect) -> None:
    conn = await connect()
    try:
        task = asyncio.ensure_future(conn.fetchval("select pg_sleep(30)"))
        await until_sleeping(connect, conn)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await conn.fetchval("select 41 + 1") == 42
        assert time.monotonic() - start < 5  # the server cancelled the sleep, not waited out
        assert not conn.is_closed()
    finally:
        await conn.close()


async def until_sleeping(connect: Connect, conn: Any) -> None:
    """Until ``conn``'s backend runs its pg_sleep (seen from another session)."""
    watcher = await connect()
    try:
        end = time.monotonic() + 10
        sql = "select count(*) from pg_stat_activity where pid = $1 and query like '%pg_sleep%'"
        while not await watcher.fetchval(sql, conn.get_server_pid()):
            assert time.monotonic() < end, "the query never started"
            await asyncio.sleep(0.02)
    finally:
        await watcher.close()


async def test_wait_for_and_timeout_keep_the_connection(connect: Connect) -> None:
    conn = await connect()
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.fetchval("select pg_sleep(30)"), 0.2)
        assert await conn.fetchval("select 1") == 1
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.execute("select pg_sleep(30)", timeout=0.2)
        assert time.monotonic() - start < 1.5
        assert await conn.fetch("select 2 as x") == [(2,)]
        with pytest.raises(ValueError, match="invalid timeout"):
            await conn.execute("select 1", timeout="a")
    finally:
        await conn.close()


async def test_close_during_another_tasks_query_ends_it_promptly(connect: Connect) -> None:
    conn = await connect()
    task = asyncio.ensure_future(conn.execute("select pg_sleep(30)"))
    await until_sleeping(connect, conn)
    start = time.monotonic()
    await asyncio.wait_for(conn.close(), 5)
    assert conn.is_closed()
    with pytest.raises(_canceled(conn)):
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - start < 5


async def test_a_failing_copy_output_keeps_the_connection(connect: Connect) -> None:
    conn = await connect()
    try:

        async def sink(data: bytes) -> None:
            raise RuntimeError("the sink failed")

        with pytest.raises(RuntimeError, match="the sink failed"):
            await conn.copy_from_query(
                "select repeat('a', 500) from generate_series(1, 5000)", output=sink
            )
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_copy_output_comes_in_chunks_and_is_checked_first(connect: Connect) -> None:
    conn = await connect()
    try:
        calls: list[int] = []

        async def sink(data: bytes) -> None:
            calls.append(len(data))

        tag = await conn.copy_from_query(
            "select repeat('a', 500) from generate_series(1, 5000)", output=sink
        )
        assert tag == "COPY 5000" and sum(calls) == 5000 * 501
        assert len(calls) < 500  # chunks, not rows (asyncpg: ~50)
        with pytest.raises(TypeError, match="output is expected to be a file-like object"):
            await conn.copy_from_query("select 1", output=1)
        assert await conn.fetchval("select 3") == 3
    finally:
        await conn.close()


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "file", "path", "aiter"])
async def test_copy_to_table_from_every_source(connect: Connect, kind: str, tmp_path: Path) -> None:
    data = b"".join(b"%d\t%s\n" % (i, b"x" * (i % 50)) for i in range(20_000))
    source: Any
    if kind == "bytes":
        source = data
    elif kind == "bytearray":
        source = bytearray(data)
    elif kind == "memoryview":
        source = memoryview(data)
    elif kind == "file":
        source = io.BytesIO(data)
    elif kind == "path":
        path = tmp_path / "rows.txt"
        path.write_bytes(data)
        source = path
    else:

        async def pieces() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 7000):
                yield data[i : i + 7000]

        source = pieces()
    conn = await connect()
    try:
        await conn.execute("create temp table t_src (id int, pad text)")
        if kind == "bytes" and isinstance(conn, asyncpg.Connection):
            # asyncpg takes bytes for a path (os.fspath accepts bytes); the driver sends them
            with pytest.raises(OSError):
                await conn.copy_to_table("t_src", source=data[:100])
            return
        assert await conn.copy_to_table("t_src", source=source) == "COPY 20000"
        got = await conn.fetchrow("select count(*), sum(id), sum(length(pad)) from t_src")
        assert tuple(got) == (20_000, sum(range(20_000)), sum(i % 50 for i in range(20_000)))
    finally:
        await conn.close()


async def test_async_listener_callbacks_are_awaited(connect: Connect) -> None:
    conn = await connect()
    sender = await connect()
    try:
        got: asyncio.Queue[str] = asyncio.Queue()

        async def on_notify(c: Any, pid: int, channel: str, payload: str) -> None:
            await asyncio.sleep(0)
            await got.put(payload)

        await conn.add_listener("chan_cancel", on_notify)
        await sender.execute("select pg_notify('chan_cancel', 'hello')")
        assert await asyncio.wait_for(got.get(), 5) == "hello"
        assert await conn.fetchval("select 5") == 5
    finally:
        await sender.close()
        await conn.close()


# ---- a server that ignores cancel requests: scripted, then a real stopped backend --------


@asynccontextmanager
async def silent_postgres() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A trust-auth server that never answers a query; the event is set when a CancelRequest
    arrives (and is ignored)."""
    cancelled = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            if length == 16 and struct.unpack("!I", body[:4])[0] == CANCEL_REQUEST_CODE:
                cancelled.set()
                return
            writer.write(AUTH_OK + backend_key() + ready())
            while await reader.read(65536):
                pass  # a query: never answered
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], cancelled
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


async def test_timeout_returns_at_its_deadline_when_the_server_ignores_the_cancel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(driver.session, "CANCEL_GRACE", 1.5)
    async with silent_postgres() as (port, cancelled):
        conn = await driver.connect(
            host="127.0.0.1", port=port, user="u", database="d", sslmode="disable",
            command_timeout=1.0,
        )  # fmt: skip
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.fetchval("select 1")
        assert time.monotonic() - start < 1.4  # at its deadline, not after the cancel
        await asyncio.wait_for(cancelled.wait(), 2)  # the cancel went on in the background
        # the next call waits for the drain within its own deadline, no longer
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.fetchval("select 2", timeout=0.2)
        assert time.monotonic() - start < 0.6
        # past the grace, the connection is given up: closed, never silently reused
        await until(conn.is_closed, "the connection closed after the cancel's grace", 5)
        with pytest.raises(driver.InterfaceError, match="closed"):
            await conn.fetchval("select 3")
        await conn.close()


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_stopped_backend_timeout_then_recovery(
    connect_args: ConnectArgs, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real fault: the backend process is stopped (SIGSTOP) while a query is sent. The
    timed-out call returns at its deadline; once the backend runs again the background cancel
    drains and the same connection works; stopped past the grace, the connection is closed."""
    conn = await driver.connect(**connect_args("trust_user", transport))
    pid = conn.get_server_pid()
    assert pid is not None
    try:
        os.kill(pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                await conn.fetchval("select 1", timeout=0.5)
            assert time.monotonic() - start < 0.9
        finally:
            os.kill(pid, signal.SIGCONT)
        assert await conn.fetchval("select 42", timeout=5) == 42
        monkeypatch.setattr(driver.session, "CANCEL_GRACE", 0.5)
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(TimeoutError):
                await conn.fetchval("select 1", timeout=0.3)
            await until(conn.is_closed, "closed once the cancel's grace passed", 5)
        finally:
            os.kill(pid, signal.SIGCONT)
        with pytest.raises(driver.InterfaceError):
            await conn.fetchval("select 1")
    finally:
        await conn.close()


async def test_close_is_bounded_by_its_timeout_when_the_server_ignores_the_cancel() -> None:
    async with silent_postgres() as (port, cancelled):
        conn = await driver.connect(
            host="127.0.0.1", port=port, user="u", database="d", sslmode="disable"
        )
        # a query in another task: close() cancels it, the server ignores that, and close's
        # deadline ends both (asyncpg's test_close_timeout_resolves_running_query)
        task = asyncio.ensure_future(conn.fetchval("select 1"))
        await until(lambda: conn._session.busy, "the query to start")
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.close(timeout=0.3)
        assert time.monotonic() - start < 1.0 and conn.is_closed()
        with pytest.raises(driver.Error):
            await asyncio.wait_for(task, 2)
        assert cancelled.is_set()


async def test_close_is_bounded_while_a_background_cancel_is_pending() -> None:
    async with silent_postgres() as (port, _cancelled):
        conn = await driver.connect(
            host="127.0.0.1", port=port, user="u", database="d", sslmode="disable"
        )
        with pytest.raises(TimeoutError):
            await conn.fetchval("select 1", timeout=0.05)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.close(timeout=0.2)  # asyncpg's test_close_times_out_pending_cancel
        assert time.monotonic() - start < 1.0 and conn.is_closed()


async def test_backend_terminated_mid_query_is_connection_does_not_exist(connect: Connect) -> None:
    """asyncpg's test_execute_script_interrupted_by_server: the server's reason is kept."""
    conn = await connect()
    other = await connect()
    try:
        task = asyncio.ensure_future(conn.execute("select pg_sleep(30)"))
        await until_sleeping(connect, conn)
        await other.execute("select pg_terminate_backend($1)", conn.get_server_pid())
        gone = (
            asyncpg.ConnectionDoesNotExistError
            if isinstance(conn, asyncpg.Connection)
            else driver.exceptions.ConnectionDoesNotExistError
        )
        with pytest.raises(gone, match="closed in the middle of operation: terminating connection"):
            await asyncio.wait_for(task, 5)
        assert conn.is_closed()
    finally:
        await other.close()
        await conn.close()
