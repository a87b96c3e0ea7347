"""The pool's bookkeeping: slots, the idle LIFO, waiters and expiry; it decides, never awaits.

Every method here is synchronous, so each decision about a connection or a slot is taken
in one step that a cancellation cannot split; the Pool does the waiting (for a hand-over,
a connect, a close), as httpcore's pool does around its request queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .connection import Connection
from .errors import InterfaceError

if TYPE_CHECKING:
    from .poolproxy import PoolConnectionProxy

__all__ = ["Meta", "Slots"]


class Meta:
    """Bookkeeping for one open connection of the pool."""

    __slots__ = ("generation", "in_use", "last_ok", "proxy", "release_timeout", "uses")

    def __init__(self, now: float, generation: int) -> None:
        self.in_use = False
        self.proxy: PoolConnectionProxy | None = None  # the borrower's, while lent
        self.release_timeout: float | None = None  # the lending acquire()'s timeout
        self.last_ok = now  # loop time the connection last proved alive
        self.uses = 0
        self.generation = generation  # the pool's expire_connections() count when it opened


class Slots:
    """Who holds which connection, and who waits for one.

    A slot is counted from the moment it is reserved (``opening``) until its connection is
    dropped (``meta``); ``len(meta) + opening`` never exceeds ``max_size``. A dropped
    connection goes to ``on_drop``, which closes it in the background.
    """

    def __init__(
        self,
        max_size: int,
        lifetime: float,
        on_drop: Callable[[Connection], None],
        *,
        floor: int = 0,
    ) -> None:
        self.max_size = max_size
        self.floor = floor  # min_size: idle connections at or below it never expire
        self._lifetime = lifetime
        self._on_drop = on_drop
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None  # bound when the pool is first awaited
        self.meta: dict[Connection, Meta] = {}
        self.idle: list[Connection] = []  # LIFO: the most recently released is at the end
        self.opening = 0  # slots reserved for connections being opened
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()
        self.closing = False
        self.all_gone = asyncio.Event()
        self._expiry: asyncio.TimerHandle | None = None

    def shut(self) -> None:
        """Refuse new work: waiters get InterfaceError, idle connections are dropped."""
        if not self.closing:
            self.closing = True
            if self._expiry is not None:
                self._expiry.cancel()
            while self.waiters:
                fut = self.waiters.popleft()
                if not fut.done():
                    fut.set_exception(InterfaceError("the pool is closing"))
        idle, self.idle = self.idle, []
        for conn in idle:
            self.drop(conn)
        self._note_gone()

    def wait(self) -> asyncio.Future[Connection | None]:
        """A future for the next released connection, or a free slot (None: open one)."""
        assert self.loop is not None
        fut: asyncio.Future[Connection | None] = self.loop.create_future()
        self.waiters.append(fut)
        return fut

    def abandon(self, fut: asyncio.Future[Connection | None]) -> None:
        """The waiter of ``fut`` gave up (cancelled): pass on what it was handed, if any."""
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            got = fut.result()  # handed over just as it was cancelled: pass it on
            if got is None:  # a slot reserved for it: pass the reservation on
                self.opening -= 1
                self.free_slot()
            else:
                self.put_back(got)
        else:
            fut.cancel()

    def take_idle(self) -> Connection | None:
        """The most recently released idle connection, if any."""
        return self.idle.pop() if self.idle else None

    def reserve(self, n: int = 1) -> bool:
        """Reserve ``n`` slots for connections about to be opened, if they are free."""
        if len(self.meta) + self.opening + n > self.max_size:
            return False
        self.opening += n
        return True

    def opened(self, conn: Connection | None, generation: int) -> None:
        """A reserved slot's connect ended: with ``conn``, or (None) in failure."""
        self.opening -= 1
        if conn is None:
            self.free_slot()
        else:
            assert self.loop is not None
            self.meta[conn] = Meta(self.loop.time(), generation)

    def put_back(self, conn: Connection) -> None:
        """Hand an idle connection to the first waiter, else push it on the idle stack."""
        meta = self.meta.get(conn)
        if meta is None:
            return
        meta.in_use = False
        if self.closing:
            self.drop(conn)
            return
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self.idle.append(conn)
        self._arm_expiry()

    def free_slot(self) -> None:
        """A slot opened up: let the first waiter open a connection in it."""
        while self.waiters and not self.closing:
            fut = self.waiters.popleft()
            if not fut.done():
                self.opening += 1
                fut.set_result(None)
                return
        self._note_gone()

    def forget(self, conn: Connection) -> bool:
        if self.meta.pop(conn, None) is None:
            return False
        if conn in self.idle:
            self.idle.remove(conn)
        return True

    def drop(self, conn: Connection) -> None:
        """Remove a connection from the pool now (its slot goes to a waiter), close it later."""
        if self.forget(conn):
            self.free_slot()
        self._on_drop(conn)

    def _note_gone(self) -> None:
        if self.closing and not self.meta:
            self.all_gone.set()

    def _arm_expiry(self) -> None:
        if (
            self._expiry is None
            and len(self.meta) > self.floor
            and self.idle
            and self._lifetime > 0
            and self.loop
        ):
            oldest = self.meta[self.idle[0]].last_ok
            self._expiry = self.loop.call_at(oldest + self._lifetime, self._expire)

    def _expire(self) -> None:
        """Close connections idle longer than max_inactive_connection_lifetime."""
        self._expiry = None
        assert self.loop is not None
        deadline = self.loop.time() - self._lifetime
        idle, meta = self.idle, self.meta
        while idle and len(meta) > self.floor and meta[idle[0]].last_ok <= deadline:
            self.drop(idle[0])
        self._arm_expiry()

    def check_loop(self) -> None:
        if self.loop is not None and asyncio.get_running_loop() is not self.loop:
            raise InterfaceError(
                "this pool belongs to a different event loop: a pool and its connections "
                "can only be used from the loop that created it"
            )

    def check(self) -> None:
        self.check_loop()
        if self.closing:
            raise InterfaceError("the pool is closed")
