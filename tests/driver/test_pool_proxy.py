"""What Pool.acquire() lends: a PoolConnectionProxy, side by side with asyncpg's.

Each test body runs three times on the same cluster: the driver over TCP, over WebSocket
through the proxy, and asyncpg 0.32 itself (the reference); the same assertions hold for all.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import asyncpg.pool
import pytest

import driver
import driver.pool
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster

PoolFactory = Callable[..., Awaitable[Any]]

RELEASED = "cannot call Connection.{}(): connection has been released back to the pool"


@pytest.fixture(params=["tcp", "ws", "asyncpg"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lib(mode: str) -> types.ModuleType:
    """The library under test: ``driver`` or ``asyncpg`` (same public names)."""
    return asyncpg if mode == "asyncpg" else driver


@pytest.fixture
async def make_pool(
    mode: str, connect_args: ConnectArgs, pg: Cluster
) -> AsyncIterator[PoolFactory]:
    """Pools of the library under test on the trust role, terminated afterwards."""
    made: list[Any] = []

    async def make(**kwargs: Any) -> Any:
        if mode == "asyncpg":
            pool = await asyncpg.create_pool(pg.dsn("trust_user"), ssl=False, **kwargs)
        else:
            pool = await driver.create_pool(**connect_args("trust_user", mode), **kwargs)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.terminate()


@pytest.fixture
def connect_bare(mode: str, connect_args: ConnectArgs, pg: Cluster) -> Callable[[], Awaitable[Any]]:
    """A connection of the library under test outside any pool."""
    if mode == "asyncpg":
        return lambda: asyncpg.connect(pg.dsn("trust_user"), ssl=False)
    return lambda: driver.connect(**connect_args("trust_user", mode))


async def test_lent_object_is_a_proxy_and_a_connection(
    make_pool: PoolFactory, lib: types.ModuleType, connect_bare: Callable[[], Awaitable[Any]]
) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    async with pool.acquire() as con:
        assert type(con).__name__ == "PoolConnectionProxy"
        assert type(con) is lib.pool.PoolConnectionProxy
        assert isinstance(con, lib.Connection)
        assert isinstance(con, lib.pool.PoolConnectionProxy)
        assert isinstance(con, lib.connection.Connection)
        assert re.fullmatch(r"<PoolConnectionProxy <.+> 0x[0-9a-f]+>", repr(con))
    con = await pool.acquire()
    assert type(con) is lib.pool.PoolConnectionProxy
    await pool.release(con)
    # what connect() returns is a Connection, not a proxy
    bare = await connect_bare()
    try:
        assert isinstance(bare, lib.Connection)
        assert not isinstance(bare, lib.pool.PoolConnectionProxy)
    finally:
        await bare.close()


async def test_proxy_forwards_connection_methods(
    make_pool: PoolFactory, lib: types.ModuleType
) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    heard: list[tuple[bool, str]] = []
    got_notification = asyncio.Event()
    async with pool.acquire() as con:

        def listener(c: Any, pid: int, channel: str, payload: str) -> None:
            heard.append((c is con, payload))  # asyncpg hands callbacks the proxy
            got_notification.set()

        assert isinstance(con.get_server_pid(), int)
        assert not con.is_closed() and not con.is_in_transaction()
        assert await con.fetchval("select $1::int + 1", 41) == 42
        assert await con.execute("create temp table proxy_t (a int)") == "CREATE TABLE"
        assert await con.copy_records_to_table("proxy_t", records=[(1,), (2,)]) == "COPY 2"
        async with con.transaction():
            assert con.is_in_transaction()
            assert [r["a"] async for r in con.cursor("select a from proxy_t order by a")] == [1, 2]
        stmt = await con.prepare("select count(*) from proxy_t")
        assert await stmt.fetchval() == 2
        assert [tuple(r) for r in await con.fetch("select a from proxy_t order by a")] == [
            (1,),
            (2,),
        ]
        assert con.get_server_version().major >= 15
        await con.add_listener("proxy_chan", listener)
        await con.execute("notify proxy_chan, 'hi'")
        async with asyncio.timeout(5):
            await got_notification.wait()
        await con.remove_listener("proxy_chan", listener)
        assert con.execute.__name__ == "execute"
        assert con.execute.__doc__ == lib.Connection.execute.__doc__
    assert heard == [(True, "hi")]


def _calls(con: Any) -> dict[str, Callable[[], Any]]:
    """One call of each kind through a proxy: coroutine methods, plain ones, factories."""
    return {
        "fetch": lambda: con.fetch("select 1"),
        "fetchval": lambda: con.fetchval("select 1"),
        "execute": lambda: con.execute("select 1"),
        "executemany": lambda: con.executemany("select $1::int", [(1,)]),
        "prepare": lambda: con.prepare("select 1"),
        "cursor": lambda: con.cursor("select 1"),
        "transaction": lambda: con.transaction(),
        "copy_from_query": lambda: con.copy_from_query("select 1", output=lambda b: None),
        "add_listener": lambda: con.add_listener("c", lambda *a: None),
        "add_termination_listener": lambda: con.add_termination_listener(lambda c: None),
        "get_server_pid": lambda: con.get_server_pid(),
        "get_server_version": lambda: con.get_server_version(),
        "get_settings": lambda: con.get_settings(),
        "is_closed": lambda: con.is_closed(),
        "is_in_transaction": lambda: con.is_in_transaction(),
        "reset": lambda: con.reset(),
        "close": lambda: con.close(),
        "terminate": lambda: con.terminate(),
    }


async def _raised(call: Callable[[], Any]) -> BaseException | None:
    try:
        result = call()
        if inspect.isawaitable(result):
            await result
    except BaseException as exc:
        return exc
    return None


@pytest.mark.parametrize("how", ["release", "async with"])
async def test_released_proxy_raises_asyncpg_error(
    make_pool: PoolFactory, lib: types.ModuleType, how: str
) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    if how == "release":
        con = await pool.acquire()
        await pool.release(con)
    else:
        async with pool.acquire() as con:
            pass
    assert re.fullmatch(r"<PoolConnectionProxy \[released\] 0x[0-9a-f]+>", repr(con))
    for name, call in _calls(con).items():
        exc = await _raised(call)
        assert type(exc) is lib.InterfaceError, (name, exc)
        assert str(exc) == RELEASED.format(name)
    # any other attribute: AttributeError, as asyncpg (whose proxy then looks at None)
    assert type(await _raised(lambda: con.no_such_thing)) is AttributeError
    # the connection itself went back unharmed: the next borrower uses it
    assert await pool.fetchval("select 5") == 5
    assert pool.get_size() == 1


async def test_every_method_asyncpg_guards_is_guarded() -> None:
    """Each public method asyncpg's proxy forwards (and guards), ours does too, where our
    Connection has it; plus every other public method of our Connection."""
    theirs = {n for n, v in vars(asyncpg.pool.PoolConnectionProxy).items()
              if not n.startswith("_") and callable(v)}  # fmt: skip
    ours = {n for n, v in vars(driver.Connection).items()
            if not n.startswith("_") and inspect.isfunction(v)}  # fmt: skip
    for name in ours:
        assert name in vars(driver.pool.PoolConnectionProxy), name
    # what asyncpg forwards and our Connection lacks (reported, not hidden)
    assert theirs - ours <= {"get_reset_query"}, theirs - ours


async def test_release_rules(
    make_pool: PoolFactory, lib: types.ModuleType, connect_bare: Callable[[], Awaitable[Any]]
) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    other = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    foreign = await other.acquire()

    def invalid(what: object) -> str:
        return f"Pool.release() received invalid connection: {what!r} is not a member of this pool"

    for wrong in (foreign, 1, None):
        exc = await _raised(lambda w=wrong: pool.release(w))  # type: ignore[misc]
        assert type(exc) is lib.InterfaceError and str(exc) == invalid(wrong)
    bare = await connect_bare()
    try:
        exc = await _raised(lambda: pool.release(bare))
        assert type(exc) is lib.InterfaceError and str(exc) == invalid(bare)
    finally:
        await bare.close()
    assert await pool.release(con) is None
    assert await pool.release(con) is None  # twice: nothing happens
    assert await foreign.fetchval("select 1") == 1  # the refused release left it lent
    await other.release(foreign)
    assert (pool.get_idle_size(), other.get_idle_size()) == (1, 1)


async def test_hooks_receive_what_asyncpg_gives(
    make_pool: PoolFactory, lib: types.ModuleType
) -> None:
    seen: dict[str, tuple[str, bool]] = {}

    def note(hook: str) -> Callable[[Any], Awaitable[None]]:
        async def hook_fn(c: Any) -> None:
            seen[hook] = (type(c).__name__, isinstance(c, lib.Connection))
            await c.execute("select 1")  # usable from the hook

        return hook_fn

    pool = await make_pool(
        min_size=1, max_size=1, init=note("init"), setup=note("setup"), reset=note("reset")
    )
    async with pool.acquire() as con:
        assert await con.fetchval("select 2") == 2
    assert seen == {
        "init": ("Connection", True),
        "setup": ("PoolConnectionProxy", True),
        "reset": ("Connection", True),
    }


async def test_connection_class_through_the_proxy(
    make_pool: PoolFactory, lib: types.ModuleType
) -> None:
    async def fetchval(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        return ("mine", await lib.Connection.fetchval(self, query, *args, **kwargs))

    async def answer(self: Any) -> Any:
        return await self.fetchval("select 42")

    def hello(self: Any) -> str:
        return "hello from " + type(self).__name__

    methods = {"hello": hello, "answer": answer, "fetchval": fetchval}
    mycon: Any = type("MyCon", (lib.Connection,), methods)
    pool = await make_pool(min_size=1, max_size=1, connection_class=mycon)
    con = await pool.acquire()
    assert isinstance(con, mycon) and isinstance(con, lib.Connection)
    assert con.hello() == "hello from MyCon"  # its own methods: bound to the connection
    assert await con.answer() == ("mine", 42)  # its override of a Connection method
    assert await con.fetchval("select 1") == ("mine", 1)
    await pool.release(con)
    assert await pool.fetchval("select 3") == ("mine", 3)  # the shortcut runs on it too
    assert type(await _raised(lambda: con.hello())) is AttributeError
    exc = await _raised(lambda: con.fetchval("select 1"))
    assert type(exc) is lib.InterfaceError and str(exc) == RELEASED.format("fetchval")


@pytest.mark.parametrize("how", ["close", "terminate", "pool.terminate"])
async def test_connection_ended_while_lent_is_taken_back(
    make_pool: PoolFactory, lib: types.ModuleType, how: str
) -> None:
    pool = await make_pool(min_size=0, max_size=1)
    con = await pool.acquire()
    ended = asyncio.get_running_loop().create_future()
    con.add_termination_listener(lambda c: ended.set_result(c is con))
    if how == "close":
        await con.close()
    elif how == "terminate":
        con.terminate()
    else:
        pool.terminate()
    exc = await _raised(lambda: con.is_closed())
    assert type(exc) is lib.InterfaceError and str(exc) == RELEASED.format("is_closed")
    async with asyncio.timeout(5):
        assert await ended  # the termination listener was handed the proxy, as asyncpg's
    assert re.fullmatch(r"<PoolConnectionProxy \[released\] 0x[0-9a-f]+>", repr(con))
    assert await pool.release(con) is None  # harmless
    if how != "pool.terminate":
        async with asyncio.timeout(10):  # its slot is free again: a new connection
            assert await pool.fetchval("select 6") == 6


async def _typed_use(pool: driver.Pool) -> int:
    """Type-checked by mypy --strict with the rest of the tests: code written for asyncpg
    that annotates the lent object as a Connection."""
    con: driver.Connection = await pool.acquire()
    try:
        value: int = await con.fetchval("select 7")
    finally:
        await pool.release(con)
    async with pool.acquire() as lent:
        proxy: driver.pool.PoolConnectionProxy = lent
        same: driver.Connection = proxy
        value += await same.fetchval("select 1")
    return value


async def test_annotated_as_connection(connect_args: ConnectArgs) -> None:
    async with driver.create_pool(**connect_args("trust_user", "tcp"), min_size=1) as pool:
        assert await _typed_use(pool) == 8


async def test_failed_setup_closes_the_connection_first(
    make_pool: PoolFactory, lib: types.ModuleType
) -> None:
    """asyncpg's test_pool_exception_in_setup_and_init: the connection whose setup (or
    init) failed is closed by the time acquire() raises; the proxy setup saw still answers
    is_closed()."""
    given: list[Any] = []

    async def setup(con: Any) -> None:
        given.append(con)
        if len(given) == 1:
            raise RuntimeError("setup refused")

    pool = await make_pool(min_size=1, max_size=1, setup=setup)
    with pytest.raises(RuntimeError, match="setup refused"):
        await pool.acquire()
    assert type(given[0]) is lib.pool.PoolConnectionProxy and given[0].is_closed()
    async with asyncio.timeout(10), pool.acquire() as con:
        assert given == [given[0], con]
        assert await con.fetchval("select 1") == 1
    # the same for init, which is given the connection itself
    given.clear()
    pool = await make_pool(min_size=0, max_size=1, init=setup)
    with pytest.raises(RuntimeError, match="setup refused"):
        await pool.acquire()
    assert type(given[0]) is not lib.pool.PoolConnectionProxy and given[0].is_closed()
    async with asyncio.timeout(10), pool.acquire() as con:
        assert await con.fetchval("select 1") == 1


async def test_objects_made_through_a_released_proxy_refuse(
    make_pool: PoolFactory, lib: types.ModuleType
) -> None:
    """asyncpg's test_pool_11: statements, cursors and transactions made while the
    connection was lent refuse to run once it is given back (they would run in the next
    borrower's session). asyncpg raises at the call, the driver when it is awaited."""
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as con:
        ps = await con.prepare("select 1")
        txn = con.transaction()
        async with con.transaction():
            cur = await con.cursor("select 1")
            ps_cur = await ps.cursor()
        factory = con.cursor("select 1")
    released = "cannot call {}(): the underlying connection has been released back to the pool"
    calls: list[tuple[str, Callable[[], Any]]] = [
        (f"PreparedStatement.{m}", lambda m=m: getattr(ps, m)())  # type: ignore[misc]
        for m in ("fetchval", "fetchrow", "fetch", "explain", "get_query", "get_statusmsg",
                  "get_parameters", "get_attributes")
    ]  # fmt: skip
    for c in (cur, ps_cur):
        calls += [
            ("Cursor.fetch", lambda c=c: c.fetch(1)),  # type: ignore[misc]
            ("Cursor.fetchrow", lambda c=c: c.fetchrow()),  # type: ignore[misc]
            ("Cursor.forward", lambda c=c: c.forward(1)),  # type: ignore[misc]
        ]
    calls += [(f"Transaction.{m}", lambda m=m: getattr(txn, m)())  # type: ignore[misc]
              for m in ("start", "commit", "rollback")]  # fmt: skip
    for what, call in calls:
        exc = await _raised(call)
        assert type(exc) is lib.InterfaceError, (what, exc)
        assert str(exc) == released.format(what)
    exc = await _raised(lambda: factory.__aiter__().__anext__())
    assert type(exc) is lib.InterfaceError and "has been released back to the pool" in str(exc)
    async with pool.acquire() as con:  # the next borrower's own objects work
        ps = await con.prepare("select 1")
        assert await ps.fetchval() == 1
        async with con.transaction():
            assert await (await con.cursor("select 2")).fetchrow() == (2,)
