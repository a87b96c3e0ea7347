"""Pool: a bounded set of connections shared by many tasks, checked before reuse."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any

from .connection import Connection
from .params import resolve
from .errors import Error, InterfaceError
from .poolquery import Acquire, PoolQueries, reset_connection
from .poolslots import Slots, _Meta
from .connect import cancel, check_connection_class, connect

__all__ = ["Pool", "create_pool"]

log = logging.getLogger(__name__)
Hook = Callable[[Connection], Awaitable[Any]]


class Pool(Slots, PoolQueries):
    """Connections to one database, lent to one task at a time (asyncpg's ``Pool``).

    Idle connections form a LIFO, so a light load keeps reusing a few warm connections and
    the rest age out after ``max_inactive_connection_lifetime``. Every state change is decided
    synchronously before anything is awaited, so a cancelled or timed-out caller can never
    leave a connection or a slot unaccounted for.

    ``connection_class``: passed to :func:`driver.connect`, which builds that subclass (its
    ``__init__`` gets Connection's arguments and must pass them on).
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
        check_connection_class(connection_class)
        _check_connect_args(dsn, connect_kwargs)
        super().__init__(max_size, max_inactive_connection_lifetime)
        self._dsn = dsn
        self._connect_kwargs = connect_kwargs
        self._min_size = min_size
        self._max_queries = max_queries
        self._ping_after = ping_after_idle
        self._acquire_timeout = acquire_timeout
        self._reset_timeout = reset_timeout
        self._setup, self._init, self._reset = setup, init, reset
        self._connection_class = connection_class
        self._suspect_before = 0.0  # connections not proven alive since then get pinged
        self._generation = 0  # bumped by expire_connections()
        self._started: asyncio.Task[None] | None = None

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
            stuck = list(self._meta)
            log.warning("pool close: %d connection(s) still in use after %s s, terminating",
                        len(stuck), timeout)  # fmt: skip
            self.terminate()
            await asyncio.gather(*(self._cancel(conn) for conn in stuck))
            await self._settle()

    @staticmethod
    async def _cancel(conn: Connection) -> None:
        """Stop the server working on a query whose client end the pool has just cut."""
        pid, key = conn._proto.backend_pid, conn._proto.backend_key
        if pid is None or key is None:
            return
        try:
            async with asyncio.timeout(2.0):
                await cancel(conn._params, pid, key)
        except (Error, OSError, TimeoutError) as exc:
            log.debug("cancelling the query of a terminated connection: %r", exc)

    def terminate(self) -> None:
        """Close every connection at once, without a goodbye, lent ones included."""
        self._shut()
        for conn in list(self._meta):
            self._forget(conn)
            conn.terminate()
        for task in self._tasks:
            task.cancel()

    # ---- acquire -----------------------------------------------------------------------

    def acquire(self, *, timeout: float | None = None) -> Acquire:
        """``async with pool.acquire() as conn:`` (released at the end) or
        ``conn = await pool.acquire()`` (give it back with ``await pool.release(conn)``).

        Args:
            timeout: seconds to wait for a connection; None means the pool's
                ``acquire_timeout`` (30 s unless set at creation).

        Raises:
            TimeoutError: every connection stayed busy for ``timeout`` seconds.
            InterfaceError: the pool is closing, or belongs to another event loop.
        """
        return Acquire(self, timeout)

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
                f"no pool connection became free within {limit:g} s (max_size="
                f"{self._max_size}: {len(self._meta) - len(self._idle)} lent, "
                f"{self._opening} being opened)"
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
            if meta.generation != self._generation:
                self._drop(conn)  # opened before expire_connections(): never lent again
                continue
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

    async def _open(self) -> Connection:
        """Open a connection in a slot reserved by the caller (``_opening`` counts it)."""
        assert self._loop is not None
        generation = self._generation  # expire_connections() may come while this connects
        try:
            conn = await connect(
                self._dsn, connection_class=self._connection_class, **self._connect_kwargs
            )
        except BaseException:
            self._opening -= 1
            self._free_slot()
            raise
        self._opening -= 1
        self._meta[conn] = _Meta(self._loop.time(), generation)
        if self._closing:
            self._drop(conn)
            raise InterfaceError("the pool is closing")
        try:
            # connect() may return before the server accepted the start-up (pipelined);
            # the pool lends only connections the server has accepted.
            ready = getattr(conn, "ready", None)
            if ready is not None:
                await ready()
            if self._init is not None:
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
        elif (
            not self._closing
            and meta.uses < self._max_queries
            and meta.generation == self._generation
        ):
            return False
        self._drop(conn)
        return True

    # ---- replacing connections ---------------------------------------------------------

    def set_connect_args(self, dsn: str | None = None, **connect_kwargs: Any) -> None:
        """Open new connections with these arguments (asyncpg's ``set_connect_args``).

        They replace the DSN and every :func:`driver.connect` keyword given at creation (the
        pool's own options, such as max_size or init, stay). Connections already open keep
        their settings until they are replaced; :meth:`expire_connections` does that at once.

        Raises:
            InterfaceError: a malformed DSN or a bad or unknown argument (checked now, as at
                creation, rather than at the next connect).
        """
        _check_connect_args(dsn, connect_kwargs)
        self._dsn, self._connect_kwargs = dsn, connect_kwargs

    async def expire_connections(self) -> None:
        """Replace every connection open now (asyncpg's ``expire_connections``): after
        :meth:`set_connect_args`, a failover, or a server-side change a session would miss.

        Idle connections are closed before this returns. Lent ones are closed when released
        instead of going back to the pool, and ones being opened are closed instead of being
        lent: no acquire after this call gets a connection opened, or begun, before it.
        Replacements are opened on demand, as after ``max_inactive_connection_lifetime``.

        Raises:
            InterfaceError: the pool is closed, or belongs to another event loop.
        """
        self._check()
        self._generation += 1
        before = set(self._tasks)
        for conn in list(self._idle):
            self._drop(conn)
        closing = self._tasks - before
        if closing:
            await asyncio.wait(closing)  # the pool's tasks: a cancelled caller stops no close

    def get_min_size(self) -> int:
        return self._min_size

    def __repr__(self) -> str:
        state = "closing" if self._closing else f"{len(self._meta)}/{self._max_size}"
        return f"<Pool {state} idle={len(self._idle)}>"


def _check_connect_args(dsn: str | None, connect_kwargs: dict[str, Any]) -> None:
    """Fail at creation (or set_connect_args), not at first use, on a bad DSN or argument.

    wait_ready is connect()'s own: the pool confirms every connection with ready() anyway.
    """
    resolve(dsn, **{k: v for k, v in connect_kwargs.items() if k != "wait_ready"})


def create_pool(dsn: str | None = None, **kwargs: Any) -> Pool:
    """A pool of connections (asyncpg's ``create_pool``).

    ``await create_pool(...)`` opens ``min_size`` connections first;
    ``async with create_pool(...) as pool:`` also closes it at the end. Pool options:
    min_size, max_size, max_queries, max_inactive_connection_lifetime, ping_after_idle,
    acquire_timeout, reset_timeout, setup, init, reset, connection_class; every other keyword
    goes to :func:`driver.connect`.
    """
    return Pool(dsn, **kwargs)
