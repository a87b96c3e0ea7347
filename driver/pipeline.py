"""The pipelined start-up half of Connection: connect() returns once the last authentication
message is queued, and the first operation carries it to the server in its own flight.

Why: each round trip at connection start costs a full trip to the database's region, and a
serverless function connects on every request. With trust, a predicted cleartext password or
SCRAM's client-final message, nothing the server says next changes what the client sends, so
there is no reason to wait for AuthenticationOk and ReadyForQuery before sending the first
query ("Pipelining" in the Extended Query section of the PostgreSQL docs). The server answers
the start-up first, then the query; the core consumes the start-up's messages before the
operation's results, and a refusal (InvalidPassword, a missing database...) is raised by that
first operation, which then closes the connection.

If the caller has nothing to send at once, the queued messages go out by themselves after
``FLUSH_DELAY``, so authentication never waits on the caller for long.
"""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import Error, PostgresError, ProtocolError
from .protocol import NEED_DATA
from .protocol import messages as m

if TYPE_CHECKING:
    from .dsn import ConnectParams
    from .errors import ConnectionLostError
    from .protocol import PGProtocol
    from .transport.base import Stream

__all__ = ["FLUSH_DELAY", "StartupMixin"]

log = logging.getLogger("driver.connection")
T = TypeVar("T")
# How long queued start-up messages wait for the caller's first operation to join them. Long
# enough for a caller that queries right after connect() returns (through wait_for, gather or
# a pool), short next to any network round trip; and joining or not changes no latency, only
# whether the two leave as one WebSocket message.
FLUSH_DELAY = 0.001


class StartupMixin:
    """Start-up, for Connection: ``_startup()`` at connect, ``ready()``, the deferred flush."""

    # Class-level defaults: instances set them when a pipelined connect leaves work queued.
    _flush_handle: asyncio.TimerHandle | None = None
    _flushing: asyncio.Task[None] | None = None
    _flush_error: BaseException | None = None
    _startup_deadline: float | None = None  # loop time by which start-up must complete
    _startup_timeout: tuple[asyncio.Timeout, float | None] | None = None
    _connect_timeout: float | None = None

    if TYPE_CHECKING:
        _proto: PGProtocol
        _stream: Stream
        _params: ConnectParams
        _loop: asyncio.AbstractEventLoop
        _started: bool
        _busy: bool
        _closed: bool
        _broken: BaseException | None

        async def _fill(self) -> None: ...

        def _filter(self, event: m.BackendMessage) -> m.BackendMessage | None: ...

        def _lost(self, reason: str, *, unsent: bool = False) -> ConnectionLostError: ...

        async def _run(
            self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None
        ) -> T: ...

        async def _cancel_and_drain(self) -> None: ...

    async def _startup(
        self,
        *,
        pipeline: bool = False,
        hear_first: bool = False,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """Drive start-up and authentication: to the first ReadyForQuery, or with
        ``pipeline`` only until the last message the client has to send is queued.

        Args:
            hear_first: return early only once the server has answered something (an
                authentication request): when another attempt may follow (sslmode=prefer or
                allow), a refusal by pg_hba.conf must still reach connect(), which retries.
            deadline: loop time by which the start-up must complete (connect's deadline,
                of ``timeout`` seconds), enforced on the first operation when this returns
                early.
        """
        proto = self._proto
        while not self._started:
            event = proto.next_event()
            if event is not NEED_DATA:
                self._filter(event)  # notices, the start-up's end
                continue
            if pipeline and proto.startup_queued and not (hear_first and proto.auth_method is None):
                self._startup_deadline, self._connect_timeout = deadline, timeout
                self._flush_handle = self._loop.call_later(FLUSH_DELAY, self._flush_deferred)
                return
            await self._fill()

    async def ready(self, *, timeout: float | None = None) -> None:
        """Wait until the server has accepted the connection.

        ``connect()`` returns before the server confirmed authentication (pipelined start-up:
        the first query travels with the last authentication message). Call this to learn at
        once, rather than from the first query, that the password is right and the database
        exists. Costs one round trip if nothing else was sent yet, nothing afterwards.

        Raises:
            PostgresError: the server refused (InvalidPassword, InvalidCatalogName...); the
                connection is then closed.
            TimeoutError: connect's deadline (or ``timeout``) passed first.
        """
        if not self._started:
            await self._run(self._finish_startup, timeout=timeout)

    async def _finish_startup(self) -> None:
        proto = self._proto
        while not self._started:
            event = proto.next_event()
            if event is NEED_DATA:
                await self._fill()
                continue
            self._filter(event)

    def _filter_startup(self, event: m.BackendMessage) -> None:
        """An event of the start-up's tail, met by the first operation (or ``ready()``)."""
        if isinstance(event, m.ReadyForQuery):
            self._started = True
            if self._startup_timeout is not None:  # from now on, only the operation's own
                cm, when = self._startup_timeout
                cm.reschedule(when)
            return
        if isinstance(event, m.ErrorResponse):
            raise PostgresError.from_fields(event.fields)
        raise ProtocolError(f"unexpected {type(event).__name__} during start-up")

    async def _first(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None) -> T:
        """Run the first operation while the start-up is still unconfirmed: until the
        start-up's ReadyForQuery, connect's deadline applies too (a proxy that accepted and
        then went silent must not hang the first query)."""
        loop = self._loop
        own = None if timeout is None else loop.time() + timeout
        limits = [t for t in (own, self._startup_deadline) if t is not None]
        try:
            async with asyncio.timeout_at(min(limits) if limits else None) as cm:
                self._startup_timeout = (cm, own)
                return await fn(*args)
        except TimeoutError as exc:
            if not self._started:
                raise TimeoutError(
                    f"connecting to {self._params.describe()} timed out"
                    + (f" after {self._connect_timeout:g} s" if self._connect_timeout else "")
                    + " (start-up not confirmed by the server)"
                ) from exc
            if self._proto.pending:
                await self._cancel_and_drain()
            raise
        finally:
            self._startup_timeout = None

    # ---- the deferred flush --------------------------------------------------------------

    def _flush_deferred(self) -> None:
        """Send what connect() left queued, if no operation took it along meanwhile."""
        self._flush_handle = None
        if self._busy or self._closed or self._broken is not None:
            return  # an operation in progress flushes it; a closed connection needs nothing
        out = self._proto.data_to_send()
        if out:
            self._flushing = self._loop.create_task(self._write_deferred(out))

    async def _write_deferred(self, out: bytes) -> None:
        try:
            await self._stream.write(out)
        except Error as exc:  # reported by the next operation, never into the event loop
            log.debug("deferred start-up flush to %s failed: %r", self._params.describe(), exc)
            self._flush_error = exc

    async def _settle_flush(self) -> None:
        """Let a deferred flush finish before anything else is written (bytes stay in
        order), and report its failure as the connection's."""
        task, self._flushing = self._flushing, None
        if task is not None:
            await task
        if self._flush_error is not None:
            exc, self._flush_error = self._flush_error, None
            raise self._lost(str(exc), unsent=True) from exc

    async def _stop_flush(self) -> None:
        """Before close(): no timer left behind, and a flush in progress finished."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        task, self._flushing = self._flushing, None
        if task is not None:
            await task
