"""Pool.expire_connections() and Pool.set_connect_args() against the real cluster."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import driver
from tests.driver import test_pool
from tests.driver.conftest import ConnectArgs
from tests.driver.test_pool import PoolFactory, backends, until
from tools.pgcluster import Cluster

# test_pool's fixtures, under their own names so that pytest finds them here too
make_pool = test_pool.make_pool
monitor = test_pool.monitor
_names = itertools.count()


async def _gone(monitor: driver.Connection, pids: set[int]) -> bool:
    rows = await monitor.fetch("select pid from pg_stat_activity where pid = any($1)", list(pids))
    return not rows


async def _pids(pool: driver.Pool, n: int) -> set[int | None]:
    """The backend pids of n connections held at once (so n distinct ones)."""
    held = [await pool.acquire() for _ in range(n)]
    try:
        return {c.get_server_pid() for c in held}
    finally:
        for conn in held:
            await pool.release(conn)


async def test_expire_closes_idle_now_and_lent_on_release(
    make_pool: PoolFactory, monitor: driver.Connection
) -> None:
    pool = await make_pool(init_size=2, min_size=0, max_size=2)
    lent, idle = await pool.acquire(), await pool.acquire()
    idle_pid, behind_idle, behind_lent = idle.get_server_pid(), idle._con, lent._con
    assert behind_idle is not None and behind_lent is not None  # the connections behind
    await pool.release(idle)
    old = await backends(monitor, pool)
    assert old == {lent.get_server_pid(), idle_pid}

    await pool.expire_connections()
    assert behind_idle.is_closed()  # closed before expire_connections() returned
    assert (pool.get_size(), pool.get_idle_size()) == (1, 0)
    assert await lent.fetchval("select 7") == 7  # its holder keeps using it until release
    await pool.release(lent)
    assert pool.get_size() == 0  # dropped (and closed in the background), not put back

    new = await _pids(pool, 2)
    assert len(new) == 2 and not new & old
    assert await pool.fetchval("select 8") == 8
    await until(lambda: _gone(monitor, old), "the expired backends have exited")
    assert behind_lent.is_closed()
    assert await backends(monitor, pool) == new


async def test_expire_replaces_every_idle_connection(
    make_pool: PoolFactory, monitor: driver.Connection
) -> None:
    pool = await make_pool(init_size=3, min_size=0, max_size=3)
    old = await backends(monitor, pool)
    assert len(old) == 3
    await pool.expire_connections()
    assert pool.get_size() == 0
    await until(lambda: _gone(monitor, old), "the expired backends have exited")
    new = await _pids(pool, 3)
    assert len(new) == 3 and not new & old
    await pool.expire_connections()  # again: the replacements are replaced in turn
    assert not await _pids(pool, 3) & (new | old)


async def test_a_connection_begun_before_expire_is_never_lent(make_pool: PoolFactory) -> None:
    opened: list[int | None] = []
    entered, gate = asyncio.Event(), asyncio.Event()

    async def init(conn: driver.Connection) -> None:
        opened.append(conn.get_server_pid())
        if len(opened) == 1:  # hold the first connection in the middle of its opening
            entered.set()
            await gate.wait()

    pool = await make_pool(min_size=0, max_size=1, init=init)

    async def take() -> driver.Connection:
        return await pool.acquire(timeout=10)

    task = asyncio.create_task(take())
    await entered.wait()
    await pool.expire_connections()
    gate.set()
    conn = await task
    try:
        assert len(opened) == 2 and conn.get_server_pid() == opened[1] != opened[0]
    finally:
        await pool.release(conn)
    assert pool.get_size() == 1


async def test_set_connect_args_applies_to_new_connections_only(
    make_pool: PoolFactory, connect_args: ConnectArgs, transport: str
) -> None:
    pool = await make_pool(init_size=1, min_size=0, max_size=2)
    old_name = pool.app_name  # type: ignore[attr-defined]
    new_name = f"pooltest_new_{next(_names)}"
    show = "select current_setting('application_name'), pg_backend_pid()"

    first = await pool.acquire()
    pool.set_connect_args(
        **connect_args("scram_user", transport, server_settings={"application_name": new_name})
    )
    second = await pool.acquire()  # opened now: the new arguments
    first_pid = first.get_server_pid()
    assert await first.fetchrow(show) == (old_name, first_pid)
    assert await second.fetchrow(show) == (new_name, second.get_server_pid())
    await pool.release(second)
    await pool.release(first)

    async with pool.acquire() as conn:  # the LIFO's top: the one opened before, unaffected
        assert conn.get_server_pid() == first_pid
        assert await conn.fetchval(show) == old_name
    await pool.expire_connections()
    names = await asyncio.gather(*(pool.fetchval(show) for _ in range(4)))
    assert names == [new_name] * 4


async def test_bad_connect_args_raise_and_change_nothing(
    make_pool: PoolFactory, monitor: driver.Connection
) -> None:
    pool = await make_pool(min_size=0, max_size=1)
    with pytest.raises(driver.InterfaceError, match="unknown connection argument"):
        pool.set_connect_args(no_such_argument=1)
    with pytest.raises(driver.InterfaceError, match="port"):
        pool.set_connect_args("postgres://u@localhost/db", port="not a port")
    with pytest.raises(driver.InterfaceError, match="DSN"):
        pool.set_connect_args("")
    # the pool still opens connections with its own arguments
    assert await pool.fetchval("select current_setting('application_name')") == pool.app_name  # type: ignore[attr-defined]
    await pool.close()
    with pytest.raises(driver.InterfaceError, match="closed"):
        await pool.expire_connections()


class _Initialised(driver.Connection):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.tag = "set"


async def test_connection_class_init_runs_in_connect_and_pool(
    pg: Cluster, make_pool: PoolFactory
) -> None:
    """asyncpg's connection_class: connect() builds the subclass, so its __init__ runs, for a
    connection of one's own and for each one a pool opens."""
    conn = await driver.connect(pg.dsn("trust_user"), connection_class=_Initialised)
    try:
        assert isinstance(conn, _Initialised) and conn.tag == "set"
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()
    pool = await make_pool(min_size=1, max_size=1, connection_class=_Initialised)
    async with pool.acquire() as lent:
        assert isinstance(lent, _Initialised) and lent.tag == "set"
    with pytest.raises(driver.InterfaceError, match="unknown connection argument"):
        pool.set_connect_args(connection_class=_Initialised)  # a pool option, not connect's


async def test_connection_class_must_be_a_connection(pg: Cluster) -> None:
    for bad in (object, int, "Connection"):
        with pytest.raises(driver.InterfaceError, match=r"subclass of driver\.Connection"):
            await driver.connect(pg.dsn("trust_user"), connection_class=bad)  # type: ignore[arg-type]
