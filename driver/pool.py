"""Pool: a bounded set of connections shared by many tasks, checked before reuse."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from .connection import Connection
from .dsn import resolve
from .errors import ConnectionLostError, Error, InterfaceError
from .record import Record
from .startup import connect

__all__ = ["Pool", "create_pool"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Hook = Callable[[Connection], Awaitable[Any]]

# What DISCARD ALL does, minus DEALLOCATE ALL and DISCARD PLANS: the connection's statement
# cache stays valid, so a pooled connection keeps its prepared statements across borrowers.
RESET_QUERY = (
    "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)


class _Meta:
    """Bookkeeping for one open connection of the pool."""

    __slots__ = ("in_use", "last_ok", "uses")

    def __init__(self, now: float) -> None:
        self.in_use = False
        self.last_ok = now  # loop time the connection last proved alive
        self.uses = 0


class _Acquire:
    """What ``pool.acquire()`` returns: awaitable, or an async context manager that releases."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: Pool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: Connection | None = None

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._pool._acquire(self._timeout).__await__()

    async def __aenter__(self) -> Connection:
        self._conn = await self._pool._acquire(self._timeout)
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        meta = self._pool._meta.get(conn) if conn is not None else None
        if conn is not None and meta is not None and meta.in_use:  # not released by hand
            await self._pool.release(conn)


class Pool:
    """Connections to one database, lent to one task at a time (asyncpg's ``Pool``).

    Idle connections form a LIFO, so a light load keeps reusing a few warm connections and
    the rest age out after ``max_inactive_connection_lifetime``. Every state change is decided
    synchronously before anything is awaited, so a cancelled or timed-out caller can never
    leave a connection or a slot unaccounted for.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        min_size: int = 10,
        max_size: int = 10,
        max_queries: int = 50000,
        max_inactive_connection_lifetime: float = 300.0,
        ping_after_idle: float | None = 1.0,
        acquire_timeout: float | None = 30.0,
        reset_timeout: float = 5.0,
        setup: Hook | None = None,
        init: Hook | None = None,
        reset: Hook | None = None,
        connection_class: type[Connection] = Connection,
        **connect_kwargs: Any,
    ) -> None:
        if max_size < 1 or not 0 <= min_size <= max_size:
            raise InterfaceError(f"need 0 <= min_size <= max_size >= 1, got {min_size}/{max_size}")
        if max_queries < 1:
            raise InterfaceError("max_queries must be at least 1")
        if not issubclass(connection_class, Connection):
            raise InterfaceError("connection_class must be a subclass of driver.Connection")
        resolve(dsn, **connect_kwargs)  # a bad DSN or argument fails here, not at first use
        self._dsn = dsn
        self._connect_kwargs = connect_kwargs
        self._min_size, self._max_size = min_size, max_size
        self._max_queries = max_queries
        self._lifetime = max_inactive_connection_lifetime
        self._ping_after = ping_after_idle
        self._acquire_timeout = acquire_timeout
        self._reset_timeout = reset_timeout
        self._setup, self._init, self._reset = setup, init, reset
        self._connection_class = connection_class
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None  # bound when first awaited
        self._meta: dict[Connection, _Meta] = {}
        self._idle: list[Connection] = []  # LIFO: the most recently released is at the end
        self._opening = 0  # slots reserved for connections being opened
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._suspect_before = 0.0  # connections not proven alive since then get pinged
        self._expiry: asyncio.TimerHandle | None = None
        self._started: asyncio.Task[None] | None = None
        self._closing = False
        self._all_gone = asyncio.Event()

    # ---- life cycle --------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Pool]:
        return self._start().__await__()

    async def __aenter__(self) -> Pool:
        return await self._start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _start(self) -> Pool:
        """Open ``min_size`` connections at once; any failure closes them all and raises."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        self._check()
        if self._started is None:
            self._started = loop.create_task(self._fill())
        await asyncio.shield(self._started)
        return self

    async def _fill(self) -> None:
        n = self._min_size - len(self._meta)
        self._opening += n
        results = await asyncio.gather(*(self._open() for _ in range(n)), return_exceptions=True)
        opened = [r for r in results if isinstance(r, Connection)]
        failed = [r for r in results if not isinstance(r, Connection)]
        if failed:
            for conn in opened:
                self._drop(conn)
            await self._settle()
            raise failed[0]
        for conn in opened:
            self._put_back(conn)

    async def close(self, *, timeout: float | None = 10.0) -> None:
        """Close idle connections now, wait up to ``timeout`` s for the lent ones, then
        terminate those still out (their holders get ConnectionLostError).

        New acquires fail at once with InterfaceError; waiting ones are woken with it.
        """
        self._check_loop()
        self._shut()
        try:
            async with asyncio.timeout(timeout):
                await self._all_gone.wait()
                await self._settle()
        except TimeoutError:
            log.warning("pool close: %d connection(s) still in use after %s s, terminating",
                        len(self._meta), timeout)  # fmt: skip
            self.terminate()
            await self._settle()

    def terminate(self) -> None:
        """Close every connection at once, without a goodbye, lent ones included."""
        self._shut()
        for conn in list(self._meta):
            self._forget(conn)
            conn.terminate()
        for task in self._tasks:
            task.cancel()

    def _shut(self) -> None:
        if not self._closing:
            self._closing = True
            if self._expiry is not None:
                self._expiry.cancel()
            while self._waiters:
                fut = self._waiters.popleft()
                if not fut.done():
                    fut.set_exception(InterfaceError("the pool is closing"))
        idle, self._idle = self._idle, []
        for conn in idle:
            self._drop(conn)
        self._note_gone()

    async def _settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- acquire -----------------------------------------------------------------------

    def acquire(self, *, timeout: float | None = None) -> _Acquire:
        """``async with pool.acquire() as conn:`` (released at the end) or
        ``conn = await pool.acquire()`` (give it back with ``await pool.release(conn)``).

        Args:
            timeout: seconds to wait for a connection; None means the pool's
                ``acquire_timeout`` (30 s unless set at creation).

        Raises:
            TimeoutError: every connection stayed busy for ``timeout`` seconds.
            InterfaceError: the pool is closing, or belongs to another event loop.
        """
        return _Acquire(self, timeout)

    async def _acquire(self, timeout: float | None) -> Connection:
        self._check()
        if self._started is None:
            await self._start()
        limit = self._acquire_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                conn = await self._checkout()
        except TimeoutError as exc:
            raise TimeoutError(
                f"no pool connection became free within {limit:g} s "
                f"(max_size={self._max_size}, all in use)"
            ) from exc
        if self._setup is not None:
            try:
                await self._setup(conn)
            except BaseException:
                self._release_soon(conn)
                raise
        return conn

    async def _checkout(self) -> Connection:
        """Take an idle connection, open one in a free slot, or wait for either.

        A connection idle longer than ``ping_after_idle`` (or one that may have died with a
        sibling) answers an empty query first; one that fails is dropped and we try again.
        """
        while True:
            assert self._loop is not None
            if self._closing:
                raise InterfaceError("the pool is closing")
            if self._idle:
                conn: Connection | None = self._idle.pop()
            elif len(self._meta) + self._opening < self._max_size:
                self._opening += 1
                conn = None
            else:
                conn = await self._wait()
            if conn is None:
                conn = await self._open()
            meta = self._meta.get(conn)
            if meta is None:
                continue  # terminated while being handed over
            meta.in_use = True
            now = self._loop.time()
            proven = meta.last_ok > self._suspect_before and (
                self._ping_after is None or now - meta.last_ok <= self._ping_after
            )
            if not conn.is_closed() and (proven or await self._ping(conn)):
                meta.uses += 1
                return conn
            self._suspect_before = now
            self._drop(conn)

    async def _wait(self) -> Connection | None:
        """Wait for a released connection, or for a free slot (None: open one in it)."""
        assert self._loop is not None
        fut: asyncio.Future[Connection | None] = self._loop.create_future()
        self._waiters.append(fut)
        try:
            return await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                got = fut.result()  # handed over just as we were cancelled: pass it on
                if got is None:
                    self._free_slot()
                else:
                    self._put_back(got)
            else:
                fut.cancel()
            raise

    async def _open(self) -> Connection:
        """Open a connection in a slot reserved by the caller (``_opening`` counts it)."""
        assert self._loop is not None
        try:
            conn = await connect(self._dsn, **self._connect_kwargs)
        except BaseException:
            self._opening -= 1
            self._free_slot()
            raise
        self._opening -= 1
        if self._connection_class is not Connection:
            conn.__class__ = self._connection_class
        self._meta[conn] = _Meta(self._loop.time())
        if self._closing:
            self._drop(conn)
            raise InterfaceError("the pool is closing")
        if self._init is not None:
            try:
                await self._init(conn)
            except BaseException:
                self._drop(conn)
                raise
        return conn

    async def _ping(self, conn: Connection) -> bool:
        try:
            await conn.execute("")  # EmptyQueryResponse: one round trip, no work on the server
        except Error as exc:
            log.info("dropping a pooled connection that failed its check: %s", exc)
            return False
        except BaseException:
            self._drop(conn)  # cancelled mid-ping: the stream position is unknown
            raise
        assert self._loop is not None
        self._meta[conn].last_ok = self._loop.time()
        return True

    # ---- release -----------------------------------------------------------------------

    async def release(self, conn: Connection, *, timeout: float | None = None) -> None:
        """Give back a connection from ``await pool.acquire()``.

        Its session is reset first (open transaction rolled back, settings, LISTENs, advisory
        locks, cursors and temp tables cleared; prepared statements kept). A connection that
        is broken, fails its reset or has served ``max_queries`` uses is closed and replaced.
        """
        self._check_loop()
        meta = self._meta.get(conn)
        if meta is None or not meta.in_use:
            if self._closing and meta is None:
                return  # terminated by close(): nothing left to give back
            raise InterfaceError("release(): the connection is not on loan from this pool")
        meta.in_use = False
        await self._recycle(conn, timeout)

    def _release_soon(self, conn: Connection) -> None:
        """Release in the background: a shortcut's caller gets its result a round trip
        sooner, and the connection rejoins the idle stack once its reset is done."""
        meta = self._meta.get(conn)
        if meta is None or not meta.in_use:
            return
        meta.in_use = False
        if conn.is_closed() or self._closing:
            self._recycle_now(conn)
            return
        self._spawn(self._recycle(conn, None))

    async def _recycle(self, conn: Connection, timeout: float | None) -> None:
        if self._recycle_now(conn):
            return
        try:
            async with asyncio.timeout(self._reset_timeout if timeout is None else timeout):
                if self._reset is not None:
                    await self._reset(conn)
                else:
                    await reset_connection(conn)
        except BaseException as exc:
            self._drop(conn)
            if not isinstance(exc, Exception):
                raise  # cancelled: the pool is terminating, or the releasing task was
            log.warning("dropping a pooled connection whose reset failed: %r", exc)
            return
        if not self._recycle_now(conn):
            assert self._loop is not None
            self._meta[conn].last_ok = self._loop.time()
            self._put_back(conn)

    def _recycle_now(self, conn: Connection) -> bool:
        """Drop a connection that must not be reused; True if it was dropped."""
        meta = self._meta.get(conn)
        if meta is None:
            return True  # terminated by the pool meanwhile
        if conn.is_closed():
            self._suspect_before = self._loop.time() if self._loop else 0.0
        elif not self._closing and meta.uses < self._max_queries:
            return False
        self._drop(conn)
        return True

    # ---- slots, hand-over and closing --------------------------------------------------

    def _put_back(self, conn: Connection) -> None:
        """Hand an idle connection to the first waiter, else push it on the idle stack."""
        meta = self._meta.get(conn)
        if meta is None:
            return
        meta.in_use = False
        if self._closing:
            self._drop(conn)
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self._idle.append(conn)
        self._arm_expiry()

    def _free_slot(self) -> None:
        """A slot opened up: let the first waiter open a connection in it."""
        while self._waiters and not self._closing:
            fut = self._waiters.popleft()
            if not fut.done():
                self._opening += 1
                fut.set_result(None)
                return
        self._note_gone()

    def _forget(self, conn: Connection) -> bool:
        if self._meta.pop(conn, None) is None:
            return False
        if conn in self._idle:
            self._idle.remove(conn)
        return True

    def _drop(self, conn: Connection) -> None:
        """Remove a connection from the pool now (its slot goes to a waiter), close it later."""
        if self._forget(conn):
            self._free_slot()
        self._spawn(self._close_conn(conn))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run pool housekeeping in a task that close() waits for and that never raises."""
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _close_conn(conn: Connection) -> None:
        try:
            await conn.close(timeout=2.0)
        except BaseException as exc:
            conn.terminate()
            if not isinstance(exc, Exception):
                raise
            log.debug("closing a pooled connection: %r", exc)

    def _note_gone(self) -> None:
        if self._closing and not self._meta:
            self._all_gone.set()

    def _arm_expiry(self) -> None:
        if self._expiry is None and self._idle and self._lifetime > 0 and self._loop:
            oldest = self._meta[self._idle[0]].last_ok
            self._expiry = self._loop.call_at(oldest + self._lifetime, self._expire)

    def _expire(self) -> None:
        """Close connections idle longer than max_inactive_connection_lifetime."""
        self._expiry = None
        assert self._loop is not None
        deadline = self._loop.time() - self._lifetime
        while self._idle and self._meta[self._idle[0]].last_ok <= deadline:
            self._drop(self._idle[0])
        self._arm_expiry()

    # ---- checks and introspection ------------------------------------------------------

    def _check_loop(self) -> None:
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise InterfaceError(
                "this pool belongs to a different event loop: a pool and its connections "
                "can only be used from the loop that created it"
            )

    def _check(self) -> None:
        self._check_loop()
        if self._closing:
            raise InterfaceError("the pool is closed")

    def get_size(self) -> int:
        """Open connections, lent and idle."""
        return len(self._meta)

    def get_idle_size(self) -> int:
        return len(self._idle)

    def get_min_size(self) -> int:
        return self._min_size

    def get_max_size(self) -> int:
        return self._max_size

    def is_closing(self) -> bool:
        return self._closing

    # ---- one-query shortcuts -----------------------------------------------------------

    async def _run(self, call: Callable[[Connection], Awaitable[T]]) -> T:
        """Run one call on a pooled connection.

        If the connection turns out dead before the server saw the query, the call is
        retried once on a connection proven alive (pinged, or new).
        """
        for attempt in (0, 1):
            conn = await self._acquire(None)
            try:
                result = await call(conn)
            except ConnectionLostError as exc:
                self._release_soon(conn)
                if attempt == 0 and exc.unsent and not self._closing:
                    log.info("retrying a query that never reached the server: %s", exc)
                    continue
                raise
            except BaseException:
                self._release_soon(conn)
                raise
            self._release_soon(conn)
            return result
        raise AssertionError("unreachable")

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        return await self._run(lambda c: c.execute(query, *args, timeout=timeout))

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        rows = list(args)  # an iterator must survive a retry
        await self._run(lambda c: c.executemany(command, rows, timeout=timeout))

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Record]:
        return await self._run(lambda c: c.fetch(query, *args, timeout=timeout))

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Record | None:
        return await self._run(lambda c: c.fetchrow(query, *args, timeout=timeout))

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        return await self._run(lambda c: c.fetchval(query, *args, column=column, timeout=timeout))

    def __repr__(self) -> str:
        state = "closing" if self._closing else f"{len(self._meta)}/{self._max_size}"
        return f"<Pool {state} idle={len(self._idle)}>"


async def reset_connection(conn: Connection) -> None:
    """The default reset: roll back, then undo session state as DISCARD ALL would."""
    conn._listeners.clear()
    conn._log_listeners.clear()
    sql = ("ROLLBACK; " + RESET_QUERY) if conn.is_in_transaction() else RESET_QUERY
    await conn.execute(sql)


def create_pool(dsn: str | None = None, **kwargs: Any) -> Pool:
    """A pool of connections (asyncpg's ``create_pool``).

    ``await create_pool(...)`` opens ``min_size`` connections first;
    ``async with create_pool(...) as pool:`` also closes it at the end. Pool options:
    min_size, max_size, max_queries, max_inactive_connection_lifetime, ping_after_idle,
    acquire_timeout, reset_timeout, setup, init, reset, connection_class; every other keyword
    goes to :func:`driver.connect`.
    """
    return Pool(dsn, **kwargs)
