"""The pool's bookkeeping: slots, the idle LIFO, waiters, and the housekeeping tasks.

Everything here is synchronous apart from waiting for a hand-over, so each decision about
a connection or a slot is taken in one step that a cancellation cannot split.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any

from .connection import Connection
from .errors import InterfaceError

__all__ = ["Slots"]

log = logging.getLogger("driver.pool")


class _Meta:
    """Bookkeeping for one open connection of the pool."""

    __slots__ = ("generation", "in_use", "last_ok", "uses")

    def __init__(self, now: float, generation: int) -> None:
        self.in_use = False
        self.last_ok = now  # loop time the connection last proved alive
        self.uses = 0
        self.generation = generation  # the pool's expire_connections() count when it opened


class Slots:
    """Who holds which connection, and who waits for one.

    A slot is counted from the moment it is reserved (``_opening``) until its connection is
    dropped (``_meta``); ``len(_meta) + _opening`` never exceeds ``max_size``.
    """

    def __init__(self, max_size: int, lifetime: float) -> None:
        self._max_size = max_size
        self._lifetime = lifetime
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None  # bound when first awaited
        self._meta: dict[Connection, _Meta] = {}
        self._idle: list[Connection] = []  # LIFO: the most recently released is at the end
        self._opening = 0  # slots reserved for connections being opened
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._expiry: asyncio.TimerHandle | None = None
        self._closing = False
        self._all_gone = asyncio.Event()

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
                if got is None:  # a slot reserved for us: pass the reservation on
                    self._opening -= 1
                    self._free_slot()
                else:
                    self._put_back(got)
            else:
                fut.cancel()
            raise

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

    def get_max_size(self) -> int:
        return self._max_size

    def _is_lent(self, conn: Connection) -> bool:
        meta = self._meta.get(conn)
        return meta is not None and meta.in_use

    def is_closing(self) -> bool:
        return self._closing
