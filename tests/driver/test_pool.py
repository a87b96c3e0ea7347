"""The pool against the real cluster, over TCP and over WebSocket through the proxy."""

from __future__ import annotations

import asyncio
import inspect
import io
import itertools
import logging
import math
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

import driver
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster

PoolFactory = Callable[..., Awaitable[driver.Pool]]
_names = itertools.count()


@pytest.fixture
async def monitor(connect_args: ConnectArgs) -> AsyncIterator[driver.Connection]:
    """A connection outside every pool, to look at the server's side of things."""
    conn = await driver.connect(**connect_args("trust_user", "tcp"))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def make_pool(
    connect_args: ConnectArgs, transport: str, pg: Cluster
) -> AsyncIterator[Callable[..., Awaitable[driver.Pool]]]:
    """Pools tagged with their own application_name, terminated and cleaned up afterwards."""
    made: list[tuple[driver.Pool, str]] = []

    async def make(**kwargs: Any) -> driver.Pool:
        name = f"pooltest_{next(_names)}"
        args = {**connect_args("scram_user", transport), "application_name": name, **kwargs}
        pool = await driver.create_pool(**args)
        pool.app_name = name  # type: ignore[attr-defined]
        made.append((pool, name))
        return pool

    yield make
    for pool, name in made:
        pool.terminate()
        pg.psql(f"select pg_terminate_backend(pid, 5000) from pg_stat_activity "
                f"where application_name = '{name}'")  # fmt: skip


async def backends(monitor: driver.Connection, pool: driver.Pool) -> set[int]:
    rows = await monitor.fetch(
        "select pid from pg_stat_activity where application_name = $1",
        pool.app_name,  # type: ignore[attr-defined]
    )
    return {r["pid"] for r in rows}


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 10.0) -> None:
    """Poll the server's state (each check is a round trip, which paces the loop)."""
    async with asyncio.timeout(within):
        while not await check():
            pass
    assert await check(), what


def kill(pg: Cluster, pool: driver.Pool) -> int:
    """Terminate the pool's backends and wait until they have exited."""
    out = pg.psql(
        "select count(*) from (select pg_terminate_backend(pid, 5000) from pg_stat_activity "
        f"where application_name = '{pool.app_name}') t"  # type: ignore[attr-defined]
    )
    return int(out)


async def test_create_pool_await_and_async_with(
    make_pool: PoolFactory, monitor: driver.Connection, connect_args: ConnectArgs, transport: str
) -> None:
    pool = await make_pool(min_size=2, max_size=3)
    assert (pool.get_size(), pool.get_idle_size()) == (2, 2)
    assert (pool.get_min_size(), pool.get_max_size()) == (2, 3)
    assert len(await backends(monitor, pool)) == 2
    assert await pool.fetchval("select 40 + $1", 2) == 42
    await pool.close()
    assert pool.get_size() == 0 and pool.is_closing()
    await until(lambda: _empty(monitor, pool), "backends left after close()")
    with pytest.raises(driver.InterfaceError, match="closed"):
        await pool.fetchval("select 1")

    args = connect_args("scram_user", transport)
    async with driver.create_pool(**args, min_size=1, max_size=2) as p2:
        assert p2.get_size() == 1
        assert await p2.fetchval("select current_user") == "scram_user"
    assert p2.get_size() == 0


async def _empty(monitor: driver.Connection, pool: driver.Pool) -> bool:
    return not await backends(monitor, pool)


def test_defaults_are_asyncpgs_and_acquire_timeout_is_finite() -> None:
    params = inspect.signature(driver.Pool).parameters
    assert params["min_size"].default == 10 and params["max_size"].default == 10
    assert params["max_inactive_connection_lifetime"].default == 300.0
    assert math.isfinite(params["acquire_timeout"].default)


async def test_bad_arguments_fail_at_creation() -> None:
    with pytest.raises(driver.InterfaceError, match="min_size"):
        driver.create_pool("postgresql://u@127.0.0.1/db", min_size=3, max_size=2)
    with pytest.raises(ValueError, match="init_size is smaller than min_size"):
        driver.create_pool("postgresql://u@127.0.0.1/db", init_size=1, min_size=2)
    with pytest.raises(driver.InterfaceError, match="unknown connection argument"):
        driver.create_pool("postgresql://u@127.0.0.1/db", no_such_option=1)


async def test_acquire_forms_and_lifo(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=0, max_size=2)
    async with pool.acquire() as a:
        assert await a.fetchval("select 1") == 1
        b = await pool.acquire()
        assert b is not a and pool.get_size() == 2
    b_pid = b.get_server_pid()
    await pool.release(b)
    await pool.release(b)  # asyncpg: releasing twice is harmless
    assert (pool.get_size(), pool.get_idle_size()) == (2, 2)
    # The one released last comes out first (LIFO keeps a warm connection busy), through
    # a new proxy: the released one stays cut off.
    c = await pool.acquire()
    assert c is not b and c.get_server_pid() == b_pid
    await pool.release(c)
    assert pool.get_idle_size() == 2


async def test_shortcuts(make_pool: PoolFactory, transport: str) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    table = f"pool_shortcuts_{transport}"
    await pool.execute(f"drop table if exists {table}; create table {table} (k int, v text)")
    try:
        await pool.executemany(f"insert into {table} values ($1, $2)", [(1, "a"), (2, "b")])
        assert await pool.execute(f"update {table} set v = $1 where k = 2", "B") == "UPDATE 1"
        rows = await pool.fetch(f"select k, v from {table} order by k")
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "B")]
        row = await pool.fetchrow(f"select * from {table} where k = $1", 1)
        assert row is not None and row["v"] == "a"
        assert await pool.fetchval(f"select k, v from {table} where k = 2", column=1) == "B"
        assert await pool.fetchrow(f"select * from {table} where false") is None
        with pytest.raises(driver.errors.UndefinedTable):
            await pool.fetch("select * from no_such_table_here")
    finally:
        await pool.execute(f"drop table {table}")


async def test_gather_50_calls_over_5_connections(
    make_pool: PoolFactory, monitor: driver.Connection
) -> None:
    pool = await make_pool(min_size=0, max_size=5)
    pids = await asyncio.gather(
        *(pool.fetchrow("select $1::int, pg_backend_pid(), pg_sleep(0.001)", i) for i in range(50))
    )
    assert [r[0] for r in pids if r is not None] == list(range(50))
    assert 1 <= len({r[1] for r in pids if r is not None}) <= 5
    assert pool.get_size() <= 5
    assert len(await backends(monitor, pool)) <= 5


async def test_release_resets_session_but_keeps_statement_cache(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as conn:
        pid = conn.get_server_pid()
        assert await conn.fetchval("select $1::int + 1", 1) == 2  # a cached named statement
        await conn.execute("create temp table pool_tmp (x int)")
        await conn.execute("set search_path to pg_catalog; listen pool_chan")
        await conn.execute("select pg_advisory_lock(4242)")
        await conn.execute("declare c cursor with hold for select 1")
        await conn.execute("begin; set local statement_timeout = 1234")
        assert conn.is_in_transaction()
    async with pool.acquire() as again:
        assert again.get_server_pid() == pid  # same session, cleaned
        assert not again.is_in_transaction()
        assert await again.fetchval("show search_path") == '"$user", public'
        assert await again.fetchval("select count(*) from pg_listening_channels()") == 0
        locks = "select count(*) from pg_locks where locktype = 'advisory' and pid = $1"
        assert await again.fetchval(locks, pid) == 0
        assert await again.fetchval("select count(*) from pg_cursors where name <> ''") == 0
        assert await again.fetchval("select to_regclass('pool_tmp') is null") is True
        prepared = await again.fetchval("select count(*) from pg_prepared_statements")
        assert prepared >= 1
        assert await again.fetchval("select $1::int + 1", 41) == 42  # cache still consistent


async def test_release_rolls_back_a_failed_transaction(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as conn:
        await conn.execute("begin")
        with pytest.raises(driver.errors.DivisionByZero):
            await conn.execute("select 1/0")
    assert await pool.fetchval("select 7") == 7


async def test_timed_out_acquire_leaks_nothing(
    make_pool: PoolFactory, monitor: driver.Connection
) -> None:
    pool = await make_pool(min_size=0, max_size=2, acquire_timeout=0.05)
    held = [await pool.acquire(timeout=10), await pool.acquire(timeout=10)]
    with pytest.raises(TimeoutError, match="max_size=2: 2 lent"):
        await pool.acquire()  # the pool's default deadline
    with pytest.raises(TimeoutError):
        await pool.acquire(timeout=0)
    assert (pool.get_size(), pool.get_idle_size()) == (2, 0)
    for conn in held:
        await pool.release(conn)
    assert (pool.get_size(), pool.get_idle_size()) == (2, 2)
    both = [await pool.acquire(timeout=5), await pool.acquire(timeout=5)]
    assert {c.get_server_pid() for c in both} == await backends(monitor, pool)
    for conn in both:
        await pool.release(conn)


async def test_cancelled_acquire_leaks_nothing(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    held = await pool.acquire()

    # Cancelled while queued.
    waiter = asyncio.create_task(_take(pool))
    await _until_waiting(pool, waiter)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    # Cancelled just after the connection was handed over, before it ran.
    waiter = asyncio.create_task(_take(pool))
    await _until_waiting(pool, waiter)
    await pool.release(held)  # hands the connection to the waiter...
    waiter.cancel()  # ...which is cancelled before it can resume: it must pass it back
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (pool.get_size(), pool.get_idle_size()) == (1, 1)
    assert await pool.fetchval("select 1", timeout=5) == 1

    # Cancelled just after a freed slot (not a connection) was handed over.
    held = await pool.acquire()
    waiter = asyncio.create_task(_take(pool))
    await _until_waiting(pool, waiter)
    held.terminate()
    await pool.release(held)  # broken: dropped, and its slot goes to the waiter...
    waiter.cancel()  # ...which must pass the slot on when cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with pool.acquire(timeout=10) as conn:
        assert await conn.fetchval("select 2") == 2


async def _take(pool: driver.Pool) -> driver.Connection:
    return await pool.acquire(timeout=30)


async def _until_waiting(pool: driver.Pool, task: asyncio.Task[Any]) -> None:
    """Let the loop run until the task is parked on the pool (no clock involved)."""
    for _ in range(1000):
        if any(not f.done() for f in pool._slots.waiters):
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{task} never queued on the pool")


async def test_cancel_and_timeouts_at_any_point_leak_nothing(
    make_pool: PoolFactory, monitor: driver.Connection
) -> None:
    """Deadlines landing anywhere (connecting, pinging, querying) keep the count exact."""
    pool = await make_pool(min_size=0, max_size=3, ping_after_idle=0)
    for i in range(40):
        deadline = i * 0.00025
        tasks = [
            asyncio.create_task(asyncio.wait_for(pool.fetchval("select 1"), deadline))
            for _ in range(4)
        ]
        await asyncio.gather(*tasks, return_exceptions=True)
        assert pool.get_size() <= 3
    async with asyncio.timeout(10):
        got = await asyncio.gather(*(pool.fetchval("select $1::int", n) for n in range(6)))
    assert got == list(range(6))
    await until(lambda: _same(monitor, pool), "the server's backends match the pool's connections")


async def _same(monitor: driver.Connection, pool: driver.Pool) -> bool:
    server = len(await backends(monitor, pool))  # first, so every check yields to the loop
    lent = pool.get_size() - pool.get_idle_size()
    return not pool._tasks and not pool._slots.opening and not lent and pool.get_size() == server


async def test_terminated_idle_backends_are_never_handed_out(
    make_pool: PoolFactory, pg: Cluster
) -> None:
    # ping_after_idle=None: no checks, so the never-sent query is retried on a new connection.
    pool = await make_pool(min_size=3, max_size=3, ping_after_idle=None)
    before = {await pool.fetchval("select pg_backend_pid()")}
    assert kill(pg, pool) == 3
    assert await pool.fetchval("select 1") == 1
    assert await pool.fetchval("select pg_backend_pid()") not in before
    rows = await asyncio.gather(*(pool.fetchval("select 2") for _ in range(6)))
    assert rows == [2] * 6

    # The default check: a connection idle for a while (here: any while) is pinged first.
    pool = await make_pool(min_size=2, max_size=2, ping_after_idle=0)
    assert kill(pg, pool) == 2
    async with pool.acquire() as conn:
        assert await conn.fetchval("select 3") == 3


async def test_broken_connection_is_replaced(make_pool: PoolFactory, pg: Cluster) -> None:
    pool = await make_pool(min_size=1, max_size=1, ping_after_idle=None)
    async with pool.acquire() as conn:
        assert kill(pg, pool) == 1
        with pytest.raises(driver.ConnectionLostError, match="lost"):
            await conn.fetchval("select 1")
        # as asyncpg: the pool took the dead connection back at once
        with pytest.raises(driver.InterfaceError, match="released back to the pool"):
            conn.is_closed()
        assert pool.get_size() == pool.get_idle_size()  # none lent (the floor may refill)
    async with pool.acquire(timeout=10) as fresh:
        assert fresh is not conn and not fresh.is_closed()
        assert await fresh.fetchval("select 4") == 4
    assert pool.get_size() == 1


async def test_other_event_loop_is_refused(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)

    def elsewhere() -> BaseException | None:
        try:
            asyncio.run(pool.fetchval("select 1"))
        except BaseException as exc:  # handed back to the test
            return exc
        return None

    exc = await asyncio.to_thread(elsewhere)
    assert isinstance(exc, driver.InterfaceError) and "different event loop" in str(exc)
    assert (pool.get_size(), pool.get_idle_size()) == (1, 1)
    assert await pool.fetchval("select 5") == 5


async def test_close_terminates_a_stuck_query(
    make_pool: PoolFactory, monitor: driver.Connection
) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    running = asyncio.Event()

    async def stuck() -> None:
        async with pool.acquire() as conn:
            running.set()
            await conn.fetchval("select pg_sleep(60)")

    task = asyncio.create_task(stuck())
    await running.wait()
    async with asyncio.timeout(10):  # bounded: close(timeout=0.2) must not wait for the sleep
        await pool.close(timeout=0.2)
    assert pool.get_size() == 0
    with pytest.raises(driver.ConnectionLostError):
        await task
    # The server stops too: the query is cancelled and the backend, its client gone, exits.
    await until(lambda: _empty(monitor, pool), "the stuck backend is gone")


async def test_terminate_closes_everything_at_once(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=2, max_size=2)
    conn = await pool.acquire()
    pool.terminate()
    assert pool.get_size() == 0 and pool.is_closing()
    with pytest.raises(driver.Error):
        await conn.fetchval("select 1")
    await pool.release(conn)  # after terminate(), giving it back is a no-op


async def test_hooks_and_max_queries(make_pool: PoolFactory) -> None:
    calls: list[str] = []

    async def init(conn: driver.Connection) -> None:
        calls.append("init")
        await conn.execute("set application_name = 'pool_inited'")

    async def setup(conn: driver.Connection) -> None:
        calls.append("setup")

    async def reset(conn: driver.Connection) -> None:
        calls.append("reset")
        await conn.execute("reset all")

    pool = await make_pool(min_size=0, max_size=1, max_queries=2, init=init, setup=setup,
                           reset=reset)  # fmt: skip
    pids = []
    for _ in range(3):
        conn = await pool.acquire()
        pids.append(conn.get_server_pid())
        await pool.release(conn)
    assert pids[0] == pids[1] != pids[2]  # replaced after two uses
    assert calls == ["init", "setup", "reset", "setup", "init", "setup", "reset"]


async def test_idle_connections_expire(make_pool: PoolFactory, monitor: driver.Connection) -> None:
    pool = await make_pool(
        init_size=2, min_size=0, max_size=2, max_inactive_connection_lifetime=0.1
    )
    assert pool.get_size() == 2
    await until(lambda: _empty(monitor, pool), "idle connections closed after their lifetime")
    assert pool.get_size() == 0
    assert await pool.fetchval("select 6") == 6  # reopened on demand


class TaggedConnection(driver.Connection):
    async def whoami(self) -> str:
        return str(await self.fetchval("select current_user"))


async def test_connection_class(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, connection_class=TaggedConnection)
    async with pool.acquire() as conn:
        assert isinstance(conn, TaggedConnection)
        assert await conn.whoami() == "scram_user"
    with pytest.raises(driver.InterfaceError, match="subclass"):
        await make_pool(connection_class=object)


async def test_failing_hooks_leak_nothing(make_pool: PoolFactory) -> None:
    async def bad_init(conn: driver.Connection) -> None:
        await conn.execute("select no_such_column")

    pool = await make_pool(min_size=0, max_size=1, init=bad_init)
    for _ in range(2):  # the slot comes back each time
        with pytest.raises(driver.errors.UndefinedColumn):
            await pool.fetchval("select 1")
    assert pool.get_size() == 0

    async def bad_setup(conn: driver.Connection) -> None:
        raise RuntimeError("setup refused")

    pool = await make_pool(init_size=1, min_size=0, max_size=1, setup=bad_setup)
    with pytest.raises(RuntimeError, match="setup refused"):
        await pool.acquire(timeout=5)
    assert pool.get_size() == 0  # asyncpg: a connection whose setup failed is closed
    await pool.close()
    assert pool.get_size() == 0


async def test_close_wakes_waiters(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    held = await pool.acquire()
    behind = held._con  # the connection behind the proxy
    assert behind is not None
    waiter = asyncio.create_task(_take(pool))
    await _until_waiting(pool, waiter)
    closing = asyncio.create_task(pool.close(timeout=10))
    with pytest.raises(driver.InterfaceError, match="closing"):
        await waiter
    await pool.release(held)  # the holder returns it: close() finishes without terminating
    await closing
    assert pool.get_size() == 0 and behind.is_closed()


async def test_refused_connections_fail_at_open_and_leak_nothing(
    connect_args: ConnectArgs, transport: str
) -> None:
    args = {**connect_args("scram_user", transport), "password": "wrong"}
    with pytest.raises(driver.errors.InvalidPassword):
        await driver.create_pool(**args, min_size=2, max_size=2)
    pool = await driver.create_pool(**args, min_size=0, max_size=1)
    try:
        for _ in range(2):  # at acquire, not at the first query; the slot comes back
            with pytest.raises(driver.errors.InvalidPassword):
                await pool.acquire(timeout=10)
        assert pool.get_size() == 0
    finally:
        await pool.close()


async def test_pool_accepts_and_ignores_wait_ready(pg: Cluster) -> None:
    """connect()'s wait_ready must not make create_pool refuse its arguments; the pool
    confirms every connection anyway, so a bad password still fails at creation."""
    async with driver.create_pool(
        pg.dsn("scram_user"), min_size=1, max_size=1, sslmode="disable",
        allow_unencrypted_password=True, wait_ready=False,
    ) as pool:  # fmt: skip
        assert await pool.fetchval("select 1") == 1
    bad = pg.dsn("scram_user").replace("scr%40m", "wrong")
    with pytest.raises(driver.errors.InvalidPassword):
        await driver.create_pool(bad, min_size=1, max_size=1, sslmode="disable", wait_ready=False)


# ---- asyncpg 0.32's contract: init_size, min_size as a floor, connect=, release and init
# races, close() cut short; asyncpg's own argument checks side by side


async def until_true(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Wait for a pool-side condition with a deadline (the pool has no event for its size)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polled: no event to wait on
            await asyncio.sleep(0.01)
    assert check(), what


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"init_size": 1, "min_size": 2, "max_size": 5}, "init_size is smaller than min_size"),
        ({"init_size": 3, "min_size": 3, "max_size": 2}, "min_size is greater than max_size"),
        ({"init_size": 5, "min_size": 1, "max_size": 3}, "init_size is greater than max_size"),
        ({"init_size": -1, "min_size": 0, "max_size": 3}, "init_size is expected to be greater"),
        ({"max_size": 0, "min_size": 0}, "max_size is expected to be greater than zero"),
        ({"max_queries": 0}, "max_queries is expected to be greater than zero"),
        ({"max_inactive_connection_lifetime": -1}, "max_inactive_connection_lifetime is"),
    ],
)
def test_size_checks_are_asyncpgs(sizes: dict[str, int], message: str) -> None:
    url = "postgresql://u@127.0.0.1/db"
    with pytest.raises(ValueError, match=message) as theirs:
        asyncpg.create_pool(url, **sizes)
    with pytest.raises(ValueError, match=message) as ours:
        driver.create_pool(url, **sizes)
    assert isinstance(ours.value, driver.InterfaceError)
    assert str(ours.value) == str(theirs.value)


async def test_init_size_and_floor(make_pool: PoolFactory) -> None:
    pool = await make_pool(
        init_size=3, min_size=1, max_size=3, max_inactive_connection_lifetime=0.2
    )
    assert (pool.get_init_size(), pool.get_min_size(), pool.get_max_size()) == (3, 1, 3)
    assert (pool.get_size(), pool.get_idle_size()) == (3, 3)
    held = [await pool.acquire() for _ in range(3)]
    assert pool.get_idle_size() == 0
    for conn in held:
        await pool.release(conn)
    await until_true(lambda: pool.get_size() == 1, "idle connections above the floor expire")
    kept = await pool.acquire()
    assert await kept.fetchval("select 42") == 42  # the floor's connection still works
    await pool.release(kept)
    # it stays: the floor never expires
    await asyncio.sleep(0.5)  # longer than the lifetime: nothing to wait for but time
    assert pool.get_size() == 1


async def test_min_size_zero_drains(make_pool: PoolFactory) -> None:
    pool = await make_pool(
        init_size=2, min_size=0, max_size=2, max_inactive_connection_lifetime=0.1
    )
    assert pool.get_size() == 2
    await until_true(lambda: pool.get_size() == 0, "min_size=0 lets every idle connection go")


async def test_floor_refilled_after_loss(
    make_pool: PoolFactory, monitor: driver.Connection
) -> None:
    pool = await make_pool(init_size=2, min_size=2, max_size=2, max_queries=1)
    first = await backends(monitor, pool)
    assert len(first) == 2
    async with pool.acquire() as conn:
        conn.terminate()  # lost while lent
    async with pool.acquire() as conn:  # max_queries=1: closed on release
        assert await conn.fetchval("select 1") == 1
    await until_true(lambda: pool.get_size() == 2, "the floor is restored in the background")
    now = await backends(monitor, pool)
    assert len(now) == 2 and len(now & first) <= 1


async def test_floor_retries_while_the_server_refuses(
    connect_args: ConnectArgs, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    offline = False
    tried = asyncio.Event()

    async def connect(*args: Any, **kwargs: Any) -> driver.Connection:
        if offline:
            tried.set()
            raise OSError("server temporarily unavailable")
        return await driver.connect(*args, **kwargs)

    args = connect_args("scram_user", transport)
    async with driver.create_pool(**args, min_size=1, max_size=1, connect=connect) as pool:
        offline = True
        with caplog.at_level(logging.WARNING, logger="driver.pool"):
            async with pool.acquire() as conn:
                conn.terminate()
            await asyncio.wait_for(tried.wait(), 5)
        assert pool.get_size() == 0
        assert "min_size floor" in caplog.text
        offline = False
        await until_true(lambda: pool.get_size() == 1, "reconnected once the server is back")
        assert await pool.fetchval("select 42") == 42


async def test_connect_callback_must_return_a_connection(
    connect_args: ConnectArgs, transport: str
) -> None:
    async def bad_connect(*args: Any, **kwargs: Any) -> Any:
        return 1

    with pytest.raises(driver.InterfaceError, match="expected pool connect callback"):
        await driver.create_pool(**connect_args("scram_user", transport), connect=bad_connect)


async def test_release_rules(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    other = await make_pool(min_size=1, max_size=1)
    conn = await pool.acquire()
    with pytest.raises(driver.InterfaceError, match="is not a member of this pool"):
        await other.release(conn)
    await pool.release(conn)
    await pool.release(conn)  # twice: nothing happens, as asyncpg
    assert pool.get_idle_size() == 1
    ctx = pool.acquire()
    async with ctx:
        with pytest.raises(driver.InterfaceError, match="already acquired"):
            await ctx.__aenter__()


async def test_init_races(connect_args: ConnectArgs, transport: str) -> None:
    args = connect_args("scram_user", transport)
    pool = driver.create_pool(**args, min_size=1, max_size=1)
    first = asyncio.ensure_future(pool.__aenter__())
    await asyncio.sleep(0)  # let it start
    with pytest.raises(driver.InterfaceError, match="being initialized in another task"):
        await pool.__aenter__()
    with pytest.raises(driver.InterfaceError, match="being initialized, but not yet ready"):
        await pool.fetchval("select 1")
    await first
    assert await pool.fetchval("select 1") == 1
    await pool.close()
    # a pool used without being awaited starts itself (lazily), whoever comes first
    lazy = driver.create_pool(**args, min_size=1, max_size=2)
    assert list(await asyncio.gather(lazy.fetchval("select 1"), lazy.fetchval("select 2"))) == [
        1,
        2,
    ]
    await lazy.close()


async def test_close_cut_short_terminates(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    held = await pool.acquire()
    behind = held._con  # the connection behind the proxy
    assert behind is not None
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.close(timeout=None), 0.1)
    assert pool.is_closing() and behind.is_closed() and pool.get_size() == 0
    with pytest.raises(driver.InterfaceError, match="released back to the pool"):
        held.is_closed()  # as asyncpg: a terminated pool takes its lent connections back
    await pool.release(held)  # harmless after terminate


async def test_copy_shortcuts(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    table = f"pool_copy_{pool.app_name}"  # type: ignore[attr-defined]
    await pool.execute(f"create table {table} (a int, b text)")
    try:
        status = await pool.copy_records_to_table(table, records=[(1, "x"), (2, "y")])
        assert status == "COPY 2"
        await pool.copy_to_table(table, source=io.BytesIO(b"3\tz\n"))
        out = io.BytesIO()
        await pool.copy_from_query(f"select a from {table} order by a", output=out)
        assert out.getvalue() == b"1\n2\n3\n"
        out = io.BytesIO()
        await pool.copy_from_table(table, output=out, columns=["b"])
        assert sorted(out.getvalue().split()) == [b"x", b"y", b"z"]
    finally:
        await pool.execute(f"drop table {table}")


@pytest.mark.parametrize("kind", ["notification", "log"])
async def test_listeners_left_on_release_warn_as_asyncpg(
    make_pool: PoolFactory, pg: Cluster, kind: str
) -> None:
    def callback(*args: Any) -> None:
        pass

    async def leave_one(con: Any) -> None:
        if kind == "notification":
            await con.add_listener("pool_dangling", callback)
        else:
            con.add_log_listener(callback)

    mine = await make_pool(min_size=1, max_size=1)
    theirs = await asyncpg.create_pool(pg.dsn("trust_user"), min_size=1, max_size=1, ssl=False)
    message = f"Connection.* is being released to the pool but has 1 active {kind} listener$"
    try:
        cases: list[tuple[Any, type[Warning]]] = [
            (mine, driver.errors.InterfaceWarning),
            (theirs, asyncpg.InterfaceWarning),
        ]
        for pool, warning in cases:
            with pytest.warns(warning, match=message):
                async with pool.acquire() as con:
                    await leave_one(con)
            with warnings.catch_warnings():  # the reset forgot it: the next borrower is clean
                warnings.simplefilter("error")
                async with pool.acquire() as con:
                    await con.execute("notify pool_dangling")
    finally:
        await theirs.close()


async def test_lent_connection_methods_carry_asyncpg_docs(make_pool: PoolFactory) -> None:
    """asyncpg's test_pool_13: the lent connection's methods are Connection's, docs and all."""
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as con:
        assert con.execute.__name__ == "execute"
        assert con.execute.__doc__ is not None
        assert con.execute.__doc__.startswith("Execute an SQL command")
        assert str(inspect.signature(con.execute))[1:] in str(
            inspect.signature(driver.Connection.execute)
        )


async def test_release_deadline_is_the_acquire_timeout_as_asyncpg(make_pool: PoolFactory) -> None:
    """release(timeout=None) bounds the reset by the lending acquire()'s timeout (asyncpg's
    rule), not by the pool's reset_timeout; an explicit timeout wins."""

    async def slow_reset(conn: driver.Connection) -> None:
        await conn.execute("select pg_sleep(1.5)")

    pool = await make_pool(min_size=0, max_size=1, reset=slow_reset, reset_timeout=30)
    loop = asyncio.get_running_loop()
    conn = await pool.acquire(timeout=0.3)
    pid = conn.get_server_pid()
    start = loop.time()
    await pool.release(conn)  # the reset overruns 0.3 s: the connection is dropped
    assert loop.time() - start < 1.2 and pool.get_size() == 0  # (closed in the background)
    conn = await pool.acquire(timeout=0.3)
    assert conn.get_server_pid() != pid
    behind = conn._con  # the connection behind the proxy
    assert behind is not None
    start = loop.time()
    await pool.release(conn, timeout=10)  # explicit: the reset finishes, the connection stays
    assert loop.time() - start >= 1.5 and pool.get_size() == 1 and not behind.is_closed()
