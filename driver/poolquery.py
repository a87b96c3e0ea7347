"""What a pool lends besides acquire/release: the acquire context, one-query shortcuts, reset."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .connection import Connection
from .errors import ConnectionLostError
from .record import Record

if TYPE_CHECKING:
    from .pool import Pool

__all__ = ["RESET_QUERY", "Acquire", "PoolQueries", "reset_connection"]

log = logging.getLogger("driver.pool")
T = TypeVar("T")

# What DISCARD ALL does, minus DEALLOCATE ALL and DISCARD PLANS: the connection's statement
# cache stays valid, so a pooled connection keeps its prepared statements across borrowers.
RESET_QUERY = (
    "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)


async def reset_connection(conn: Connection) -> None:
    """The default reset: roll back, then undo session state as DISCARD ALL would.

    Listener callbacks go too: they belonged to the borrower, and the server no longer
    sends their notifications after UNLISTEN *.
    """
    conn._listeners.clear()
    conn._log_listeners.clear()
    sql = ("ROLLBACK; " + RESET_QUERY) if conn.is_in_transaction() else RESET_QUERY
    await conn.execute(sql)


class Acquire:
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
        if conn is not None and self._pool._is_lent(conn):  # not released by hand
            await self._pool.release(conn)


class PoolQueries:
    """Pool methods that borrow a connection for exactly one call (asyncpg's shortcuts).

    They give the connection back without waiting for its reset, so the caller has its
    result one round trip sooner; the connection rejoins the pool once the reset is done.
    """

    if TYPE_CHECKING:
        _closing: bool

        async def _acquire(self, timeout: float | None) -> Connection: ...

        def _release_soon(self, conn: Connection) -> None: ...

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
