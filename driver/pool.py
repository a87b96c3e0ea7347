"""Pool: a bounded set of connections shared by many tasks, checked before reuse; it awaits,
its Slots decide."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from .connect import check_connection_class, connect
from .connection import Connection
from .errors import ClientConfigurationError, ConnectionLostError, Error, InterfaceError
from .params import resolve
from .poolproxy import PoolConnectionProxy
from .poolslots import Slots
from .record import Record

__all__ = ["Acquire", "Pool", "PoolConnectionProxy", "create_pool"]

log = logging.getLogger(__name__)
# setup gets the borrower's PoolConnectionProxy, init and reset the Connection (as asyncpg)
Hook = Callable[[Connection], Awaitable[Any]]
Connector = Callable[..., Awaitable[Connection]]
T = TypeVar("T")
# the floor's reconnect back-off (asyncpg's): 1 s, doubled on each failure up to 60 s
_FLOOR_RETRY_FIRST, _FLOOR_RETRY_MAX = 1.0, 60.0


class Pool:
    """Connections to one database, lent to one task at a time (asyncpg's ``Pool``).

    Idle connections form a LIFO, so a light load keeps reusing a few warm connections and
    the rest age out after ``max_inactive_connection_lifetime``. Every state change is decided
    synchronously before anything is awaited, so a cancelled or timed-out caller can never
    leave a connection or a slot unaccounted for.

    ``connection_class``: passed to :func:`driver.connect`, which builds that subclass (its
    ``__init__`` gets Connection's arguments and must pass them on).

    Sizes, as asyncpg 0.32: ``init_size`` connections are opened when the pool is awaited
    (default ``min_size``); ``min_size`` is a floor: idle connections above it expire after
    ``max_inactive_connection_lifetime`` (0: never), and one lost below it is replaced in the
    background, retried with a growing pause while the server is unreachable.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        init_size: int | None = None,
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
        record_class: type | None = None,
        connect: Connector | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        **connect_kwargs: Any,
    ) -> None:
        init_size = min_size if init_size is None else init_size
        _check_sizes(init_size, min_size, max_size, max_queries, max_inactive_connection_lifetime)
        check_connection_class(connection_class)
        if record_class is not None:
            if not (isinstance(record_class, type) and issubclass(record_class, Record)):
                raise InterfaceError(
                    f"record_class must be a subclass of driver.Record, got {record_class!r}"
                )
            if record_class is not Record:  # the default needs no passing on
                connect_kwargs["record_class"] = record_class
        _check_connect_args(dsn, connect_kwargs)
        del loop  # asyncpg's argument: the pool always runs on the loop that first awaits it
        self._slots = Slots(
            max_size, max_inactive_connection_lifetime, self._close_later, floor=min_size
        )
        self._tasks: set[asyncio.Task[None]] = set()  # closes and resets close() waits for
        self._dsn = dsn
        self._connect_kwargs = connect_kwargs
        self._min_size = min_size
        self._init_size = init_size
        self._connect = connect
        # reopens connections below min_size (asyncpg's name: its test harness reads it)
        self._maintenance_task: asyncio.Task[None] | None = None
        self._explicit_start = False  # awaited (asyncpg's contract) rather than started lazily
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

    async def _start(self, *, lazy: bool = False) -> Pool:
        """Open ``init_size`` connections at once; any failure closes them all and raises.

        Awaiting a pool twice at the same time is a race in the caller's code, and asyncpg
        says so; a pool first used without being awaited starts itself (``lazy``).
        """
        loop = asyncio.get_running_loop()
        slots = self._slots
        if slots.loop is None:
            slots.loop = loop
        slots.check()
        if self._started is None:
            self._explicit_start = not lazy
            self._started = loop.create_task(self._fill())
        elif not self._started.done() and not lazy:
            raise InterfaceError("pool is being initialized in another task")
        await asyncio.shield(self._started)
        return self

    async def _fill(self) -> None:
        n = self._init_size - len(self._slots.meta)
        if n <= 0 or not self._slots.reserve(n):
            return
        results = await asyncio.gather(*(self._open() for _ in range(n)), return_exceptions=True)
        opened = [r for r in results if isinstance(r, Connection)]
        failed = [r for r in results if not isinstance(r, Connection)]
        if failed:
            for conn in opened:
                self._slots.drop(conn)
            await self._settle()
            raise failed[0]
        for conn in opened:
            self._slots.put_back(conn)

    async def close(self, *, timeout: float | None = 10.0) -> None:
        """Close idle connections now, wait up to ``timeout`` s for the lent ones, then
        terminate those still out (their holders get ConnectionLostError).

        New acquires fail at once with InterfaceError; waiting ones are woken with it.
        """
        slots = self._slots
        slots.check_loop()
        slots.shut()
        self._stop_floor()
        try:
            async with asyncio.timeout(timeout):
                await slots.all_gone.wait()
                await self._settle()
        except asyncio.CancelledError:
            self.terminate()  # asyncpg: a close() cut short terminates the pool
            raise
        except TimeoutError:
            stuck = list(slots.meta)
            log.warning("pool close: %d connection(s) still in use after %s s, terminating",
                        len(stuck), timeout)  # fmt: skip
            self.terminate()
            await asyncio.gather(*(self._cancel(conn) for conn in stuck))
            await self._settle()

    @staticmethod
    async def _cancel(conn: Connection) -> None:
        """Stop the server working on a query whose client end the pool has just cut."""
        try:
            async with asyncio.timeout(2.0):
                await conn.cancel_server_query()
        except (Error, OSError, TimeoutError) as exc:
            log.debug("cancelling the query of a terminated connection: %r", exc)

    def terminate(self) -> None:
        """Close every connection at once, without a goodbye, lent ones included."""
        slots = self._slots
        slots.shut()
        self._stop_floor()
        for conn in list(slots.meta):
            slots.forget(conn)
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

    async def _acquire(self, timeout: float | None) -> PoolConnectionProxy:
        """Check a connection out and lend it through a proxy, after the ``setup`` hook."""
        slots = self._slots
        slots.check()
        if self._started is None:
            await self._start(lazy=True)
        elif not self._started.done():
            if self._explicit_start:
                raise InterfaceError(
                    "pool is being initialized, but not yet ready: likely there is a race "
                    "between creating a pool and using it"
                )
            await asyncio.shield(self._started)
        limit = self._acquire_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                conn = await self._checkout()
        except TimeoutError as exc:
            raise TimeoutError(
                f"no pool connection became free within {limit:g} s (max_size="
                f"{slots.max_size}: {len(slots.meta) - len(slots.idle)} lent, "
                f"{slots.opening} being opened)"
            ) from exc
        meta = self._slots.meta[conn]
        meta.release_timeout = limit
        meta.proxy = proxy = PoolConnectionProxy(self, conn)
        conn.lend(proxy, functools.partial(self._lost_while_lent, conn, proxy))
        if self._setup is not None:
            try:
                await self._setup(proxy)
            except BaseException:
                # as asyncpg: whatever setup left half-done, the connection is not reused;
                # it is closed before the error reaches the caller, and the proxy setup was
                # given stays on it (so ``is_closed()`` through it says True)
                conn.lend(None)
                meta.proxy = None
                try:
                    await self._close_conn(conn)
                finally:
                    self._slots.drop(conn)
                raise
        return proxy

    def _take_back(self, conn: Connection) -> None:
        """Cut the borrower's proxy off ``conn``: from now on the proxy only raises."""
        meta = self._slots.meta.get(conn)
        if meta is not None and meta.proxy is not None:
            meta.proxy._detach()
            meta.proxy = None
        conn.lend(None)

    def _lost_while_lent(self, conn: Connection, proxy: PoolConnectionProxy) -> None:
        """A lent connection ended (closed through the proxy, lost, terminated): as in
        asyncpg, the pool takes it back at once; its slot is freed for a new connection."""
        proxy._detach()
        slots = self._slots
        meta = slots.meta.get(conn)
        if meta is not None:
            meta.proxy = None
            # its siblings may have died with it (a server restart): ping them before use
            self._suspect_before = slots.loop.time() if slots.loop else 0.0
            slots.drop(conn)

    async def _checkout(self) -> Connection:
        """Take an idle connection, open one in a free slot, or wait for either.

        A connection idle longer than ``ping_after_idle`` (or one that may have died with a
        sibling) answers an empty query first; one that fails is dropped and we try again.
        """
        slots = self._slots
        while True:
            assert slots.loop is not None
            if slots.closing:
                raise InterfaceError("the pool is closing")
            conn = slots.take_idle()
            if conn is None and not slots.reserve():
                conn = await self._wait()
            if conn is None:
                conn = await self._open()
            meta = slots.meta.get(conn)
            if meta is None:
                continue  # terminated while being handed over
            if meta.generation != self._generation:
                slots.drop(conn)  # opened before expire_connections(): never lent again
                continue
            meta.in_use = True
            now = slots.loop.time()
            proven = meta.last_ok > self._suspect_before and (
                self._ping_after is None or now - meta.last_ok <= self._ping_after
            )
            if not conn.is_closed() and (proven or await self._ping(conn)):
                meta.uses += 1
                return conn
            self._suspect_before = now
            slots.drop(conn)

    async def _wait(self) -> Connection | None:
        """Wait for a released connection, or for a free slot (None: open one in it)."""
        fut = self._slots.wait()
        try:
            return await fut
        except BaseException:
            self._slots.abandon(fut)
            raise

    async def _open(self) -> Connection:
        """Open a connection in a slot reserved by the caller (``Slots.opening`` counts it)."""
        slots = self._slots
        generation = self._generation  # expire_connections() may come while this connects
        try:
            conn = await (self._connect or connect)(
                self._dsn, connection_class=self._connection_class, **self._connect_kwargs
            )
            if not isinstance(conn, self._connection_class):
                want, got = self._connection_class, type(conn)
                raise InterfaceError(
                    "expected pool connect callback to return an instance of "
                    f"'{want.__module__}.{want.__qualname__}', got '{got.__qualname__}'"
                )
        except BaseException:
            slots.opened(None, generation)
            raise
        slots.opened(conn, generation)
        if slots.closing:
            slots.drop(conn)
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
            # as asyncpg: closed before the error reaches the caller (init may hold it)
            try:
                await self._close_conn(conn)
            finally:
                slots.drop(conn)
            raise
        return conn

    async def _ping(self, conn: Connection) -> bool:
        try:
            await conn.execute("")  # EmptyQueryResponse: one round trip, no work on the server
        except Error as exc:
            log.info("dropping a pooled connection that failed its check: %s", exc)
            return False
        except BaseException:
            self._slots.drop(conn)  # cancelled mid-ping: the stream position is unknown
            raise
        assert self._slots.loop is not None
        self._slots.meta[conn].last_ok = self._slots.loop.time()
        return True

    # ---- release -----------------------------------------------------------------------

    async def release(self, connection: Connection, *, timeout: float | None = None) -> None:
        """Give back a connection from ``await pool.acquire()``.

        Its session is reset first (open transaction rolled back, settings, LISTENs, advisory
        locks, cursors and temp tables cleared; prepared statements kept), within ``timeout``
        seconds: by default, as asyncpg, the timeout of the ``acquire()`` that lent it (the
        pool's ``acquire_timeout`` when that was not given, else ``reset_timeout``). A
        connection that is broken, fails its reset or has served ``max_queries`` uses is
        closed and replaced.

        Raises:
            InterfaceError: ``connection`` is not a proxy this pool lent (asyncpg's message);
                one released already is ignored, as asyncpg does.
        """
        proxy = connection  # the pool's own lending object, whose insides are the pool's
        if type(proxy) is not PoolConnectionProxy or proxy._pool is not self:
            raise InterfaceError(
                f"Pool.release() received invalid connection: {proxy!r} is not a member "
                "of this pool"
            )
        conn = proxy._con
        if conn is None:
            return  # released already, or closed and taken back: nothing left to give back
        self._slots.check_loop()
        self._take_back(conn)
        meta = self._slots.meta.get(conn)
        if meta is None or not meta.in_use:
            return  # terminated by the pool meanwhile
        meta.in_use = False
        conn.warn_dangling_listeners()
        await self._recycle(conn, meta.release_timeout if timeout is None else timeout)

    def _release_soon(self, conn: Connection) -> None:
        """Release in the background: a shortcut's caller gets its result a round trip
        sooner, and the connection rejoins the idle stack once its reset is done."""
        self._take_back(conn)
        meta = self._slots.meta.get(conn)
        if meta is None or not meta.in_use:
            return
        meta.in_use = False
        if conn.is_closed() or self._slots.closing:
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
                    await conn.reset_session()
        except BaseException as exc:
            self._slots.drop(conn)
            if not isinstance(exc, Exception):
                raise  # cancelled: the pool is terminating, or the releasing task was
            log.warning("dropping a pooled connection whose reset failed: %r", exc)
            return
        slots = self._slots
        if not self._recycle_now(conn):
            assert slots.loop is not None
            slots.meta[conn].last_ok = slots.loop.time()
            slots.put_back(conn)

    def _recycle_now(self, conn: Connection) -> bool:
        """Drop a connection that must not be reused; True if it was dropped."""
        slots = self._slots
        meta = slots.meta.get(conn)
        if meta is None:
            return True  # terminated by the pool meanwhile
        if conn.is_closed():
            self._suspect_before = slots.loop.time() if slots.loop else 0.0
        elif (
            not slots.closing
            and meta.uses < self._max_queries
            and meta.generation == self._generation
        ):
            return False
        slots.drop(conn)
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
        self._slots.check()
        self._generation += 1
        before = set(self._tasks)
        for conn in list(self._slots.idle):
            self._slots.drop(conn)
        closing = self._tasks - before
        if closing:
            await asyncio.wait(closing)  # the pool's tasks: a cancelled caller stops no close

    # ---- housekeeping: tasks close() waits for -----------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run pool housekeeping in a task that close() waits for and that never raises."""
        assert self._slots.loop is not None
        task = self._slots.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _close_later(self, conn: Connection) -> None:
        """Slots dropped ``conn``: close it in the background, and refill the floor."""
        self._spawn(self._close_conn(conn))
        self._keep_floor()

    def _keep_floor(self) -> None:
        """Start the task that reopens connections below ``min_size``, unless one runs."""
        slots = self._slots
        if (
            slots.closing
            or slots.loop is None
            or self._started is None
            or not self._started.done()
            or self._maintenance_task is not None
            or len(slots.meta) + slots.opening >= self._min_size
        ):
            return
        self._maintenance_task = slots.loop.create_task(self._refill_floor())

    async def _refill_floor(self) -> None:
        """Reopen connections up to ``min_size``; while that fails (server down, wrong role),
        retry after 1 s, 2 s, 4 s ... at most 60 s, logging each failure."""
        slots = self._slots
        pause = _FLOOR_RETRY_FIRST
        try:
            while not slots.closing and len(slots.meta) + slots.opening < self._min_size:
                if not slots.reserve():
                    return  # acquirers are opening the remaining slots
                try:
                    conn = await self._open()
                except Exception:
                    if slots.closing:
                        return
                    log.warning("failed to restore the pool's min_size floor; retrying in "
                                "%g s", pause, exc_info=True)  # fmt: skip
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _FLOOR_RETRY_MAX)
                    continue
                slots.put_back(conn)
                pause = _FLOOR_RETRY_FIRST
        finally:
            self._maintenance_task = None

    def _stop_floor(self) -> None:
        if self._maintenance_task is not None:
            self._maintenance_task.cancel()
            self._maintenance_task = None

    @staticmethod
    async def _close_conn(conn: Connection) -> None:
        try:
            await conn.close(timeout=2.0)
        except BaseException as exc:
            conn.terminate()
            if not isinstance(exc, Exception):
                raise
            log.debug("closing a pooled connection: %r", exc)

    async def _settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- one-query shortcuts (asyncpg's) -------------------------------------------------

    async def _run(self, call: Callable[[Connection], Awaitable[T]]) -> T:
        """Run one call on a pooled connection, given back without waiting for its reset
        (the caller has its result a round trip sooner).

        If the connection turns out dead before the server saw the query, the call is
        retried once on a connection proven alive (pinged, or new).
        """
        for attempt in (0, 1):
            proxy = await self._acquire(None)
            conn = proxy._con
            if conn is None:  # setup closed it: the call raises, as through asyncpg's proxy
                conn = proxy
            try:
                result = await call(conn)
            except ConnectionLostError as exc:
                self._release_soon(conn)
                if attempt == 0 and exc.unsent and not self._slots.closing:
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
        """Execute an SQL command (or commands) on a pooled connection."""
        return await self._run(lambda c: c.execute(query, *args, timeout=timeout))

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        rows = list(args)  # an iterator must survive a retry
        await self._run(lambda c: c.executemany(command, rows, timeout=timeout))

    async def fetch(
        self, query: str, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> list[Record]:
        """Connection.fetch() on a pooled connection (``record_class=`` is passed on)."""
        return await self._run(lambda c: c.fetch(query, *args, timeout=timeout, **kwargs))

    async def fetchrow(
        self, query: str, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Record | None:
        """Connection.fetchrow() on a pooled connection (``record_class=`` is passed on)."""
        return await self._run(lambda c: c.fetchrow(query, *args, timeout=timeout, **kwargs))

    async def fetchmany(
        self,
        query: str,
        args: Iterable[Sequence[Any]],
        *,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> list[Record]:
        """Connection.fetchmany() on a pooled connection."""
        rows = list(args)  # an iterator must survive a retry
        method = "fetchmany"  # looked up at call time: the facade grows with asyncpg's API
        return await self._run(lambda c: getattr(c, method)(query, rows, timeout=timeout, **kwargs))

    # COPY: not retried (a source may be a stream that cannot be read twice)

    async def copy_from_table(self, table_name: str, **kwargs: Any) -> str:
        """Connection.copy_from_table() on a pooled connection."""
        async with self.acquire() as conn:
            return await conn.copy_from_table(table_name, **kwargs)

    async def copy_from_query(self, query: str, *args: Any, **kwargs: Any) -> str:
        """Connection.copy_from_query() on a pooled connection."""
        async with self.acquire() as conn:
            return await conn.copy_from_query(query, *args, **kwargs)

    async def copy_to_table(self, table_name: str, **kwargs: Any) -> str:
        """Connection.copy_to_table() on a pooled connection."""
        async with self.acquire() as conn:
            return await conn.copy_to_table(table_name, **kwargs)

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> str:
        """Connection.copy_records_to_table() on a pooled connection."""
        async with self.acquire() as conn:
            return await conn.copy_records_to_table(table_name, **kwargs)

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        return await self._run(lambda c: c.fetchval(query, *args, column=column, timeout=timeout))

    # ---- sizes ---------------------------------------------------------------------------

    def get_size(self) -> int:
        """Open connections, lent and idle."""
        return len(self._slots.meta)

    def get_idle_size(self) -> int:
        return len(self._slots.idle)

    def get_max_size(self) -> int:
        return self._slots.max_size

    def get_min_size(self) -> int:
        """The floor: idle connections above it expire, lost ones below it are replaced."""
        return self._min_size

    def get_init_size(self) -> int:
        """Connections opened when the pool is awaited."""
        return self._init_size

    def is_closing(self) -> bool:
        return self._slots.closing

    def __repr__(self) -> str:
        slots = self._slots
        state = "closing" if slots.closing else f"{len(slots.meta)}/{slots.max_size}"
        return f"<Pool {state} idle={len(slots.idle)}>"


class Acquire:
    """What ``pool.acquire()`` returns: awaitable, or an async context manager that releases."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: Pool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: PoolConnectionProxy | None = None

    def __await__(self) -> Generator[Any, None, PoolConnectionProxy]:
        return self._pool._acquire(self._timeout).__await__()

    async def __aenter__(self) -> PoolConnectionProxy:
        if self._conn is not None:
            raise InterfaceError("a connection is already acquired")
        self._conn = await self._pool._acquire(self._timeout)
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        proxy, self._conn = self._conn, None
        if proxy is not None and proxy._con is not None:  # not released by hand
            await self._pool.release(proxy)


def _check_sizes(
    init_size: int, min_size: int, max_size: int, max_queries: int, lifetime: float
) -> None:
    """asyncpg's checks and messages; the error is also a ValueError, as asyncpg's are."""
    problems = (
        (max_size <= 0, "max_size is expected to be greater than zero"),
        (min_size < 0, "min_size is expected to be greater or equal to zero"),
        (min_size > max_size, "min_size is greater than max_size"),
        (init_size < 0, "init_size is expected to be greater or equal to zero"),
        (init_size > max_size, "init_size is greater than max_size"),
        (init_size < min_size, "init_size is smaller than min_size"),
        (max_queries <= 0, "max_queries is expected to be greater than zero"),
        (lifetime < 0, "max_inactive_connection_lifetime is expected to be greater or equal "
                       "to zero"),
    )  # fmt: skip
    for bad, message in problems:
        if bad:
            raise ClientConfigurationError(message)


# connect()'s own keywords, not connection parameters: resolve() does not know them
_CONNECT_ONLY = frozenset({"wait_ready", "record_class"})


def _check_connect_args(dsn: str | None, connect_kwargs: dict[str, Any]) -> None:
    """Fail at creation (or set_connect_args), not at first use, on a bad DSN or argument.

    wait_ready is connect()'s own (the pool confirms every connection with ready() anyway), and
    record_class is checked by the pool itself.
    """
    resolve(dsn, **{k: v for k, v in connect_kwargs.items() if k not in _CONNECT_ONLY})


def create_pool(dsn: str | None = None, **kwargs: Any) -> Pool:
    """A pool of connections (asyncpg's ``create_pool``).

    ``await create_pool(...)`` opens ``min_size`` connections first;
    ``async with create_pool(...) as pool:`` also closes it at the end. Pool options:
    init_size, min_size, max_size, max_queries, max_inactive_connection_lifetime,
    ping_after_idle, acquire_timeout, reset_timeout, setup, init, reset, connect (called
    instead of :func:`driver.connect`), connection_class, record_class, loop (accepted,
    unused); every other keyword goes to :func:`driver.connect`.
    """
    return Pool(dsn, **kwargs)
