"""Session: one connection's stream and protocol core; the only code that awaits the stream.

Operations (``query``, ``copy``, ``batch``, ``listen``) queue their messages on ``proto``
and wait through ``until_ready()`` (or, on the hot paths, ``fill()`` and ``filter()``);
``run()`` gives each one the connection exclusively, with its deadline, and decides what
an exception leaves behind: a connection back in a known state, or a broken one.

Besides operations the session owns what happens between them: the deferred flush of a
pipelined start-up (connect() returned before the server answered; the first operation
carries the last authentication message, or a timer sends it) and, while LISTEN channels
are registered, a reader task that delivers notifications and records any failure for
the next call.
"""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

from .codecs import default_registry
from .errors import (
    ConnectionLostError,
    Error,
    InterfaceError,
    PostgresError,
    ProtocolError,
    TransportError,
)
from .params import ConnectParams
from .protocol import NEED_DATA, PGProtocol, State
from .protocol import messages as m
from .statement import StatementCache

if TYPE_CHECKING:
    from .protocol.core import Event
    from .transport.base import Stream

__all__ = ["CANCEL_GRACE", "FLUSH_DELAY", "EventHandler", "Session", "is_message", "log_notice"]

log = logging.getLogger("driver.connection")
T = TypeVar("T")
# Seconds a background cancel (after a timeout, a task cancellation or a failing user
# callback) has to bring the session back to ReadyForQuery before the connection is given up.
# Nobody waits this long in the foreground: the interrupted caller returns at once, and the
# next operation waits for the drain only within its own timeout.
CANCEL_GRACE = 5.0
# How long queued start-up messages wait for the caller's first operation to join them. Long
# enough for a caller that queries right after connect() returns (through wait_for, gather or
# a pool), short next to any network round trip; and joining or not changes no latency, only
# whether the two leave as one WebSocket message.
FLUSH_DELAY = 0.001
_LEVELS = {"WARNING": logging.WARNING, "NOTICE": logging.INFO, "INFO": logging.INFO}
EventHandler = Callable[[m.BackendMessage], Awaitable[None] | None]


def is_message(event: Event) -> TypeGuard[m.BackendMessage]:
    """``event is not NEED_DATA``, in a form the type checker narrows on."""
    return event is not NEED_DATA


def log_notice(msg: m.NoticeResponse) -> None:
    """Where a notice goes when no log listener is registered: this module's logger."""
    notice = PostgresError.from_fields(msg.fields)
    level = _LEVELS.get(notice.severity or "", logging.DEBUG)
    log.log(level, "server %s: %s", notice.severity, notice.message)


def _ignore_notification(msg: m.NotificationResponse) -> None:
    """No channel is listened to: nothing to deliver."""


def _nothing() -> None:
    """No termination listener."""


class Session:
    """One Postgres session: the stream, the sans-I/O core, and the state around them.

    Used by one operation at a time (``run()`` refuses a second). After any exception the
    session is either back in a known state (a ``PostgresError`` raised after
    ReadyForQuery) or marked broken and its stream closed.
    """

    def __init__(
        self, stream: Stream, proto: PGProtocol, params: ConnectParams, *, cache_size: int = 100
    ) -> None:
        self.proto = proto
        self.params = params
        self.codecs = default_registry.copy()
        self.cache = StatementCache(
            cache_size, params.max_cached_statement_lifetime, params.max_cacheable_statement_size
        )
        self.loop = asyncio.get_running_loop()
        self.busy = False
        self.closed = False
        self.broken: BaseException | None = None
        self.started = False
        self.events_in_op = 0
        self.sp_counter = 0  # savepoint names, unique per session
        # How many times a pool took the connection back: statements, cursors and
        # transactions made before the latest time refuse to run (check_same_lending).
        self.returned = 0
        # The Transaction that opened the current block (asyncpg's _top_xact): a block begun
        # by a plain BEGIN has none, and conn.transaction() refuses to nest in it.
        self.top_transaction: object | None = None
        # Where notices and notifications go (listen.Listeners replaces these), and whether
        # a reader task should deliver notifications between operations.
        self.on_notice: Callable[[m.NoticeResponse], None] = log_notice
        self.on_notification: Callable[[m.NotificationResponse], None] = _ignore_notification
        self.listening = False
        # Called once when the session ends: closed, terminated or broken (asyncpg's
        # termination listeners; listen.Listeners replaces it).
        self.on_end: Callable[[], None] = _nothing
        self._stream = stream
        self._reader: asyncio.Task[None] | None = None
        # set when a pipelined connect leaves work queued
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._flush_error: BaseException | None = None
        self._startup_deadline: float | None = None  # loop time by which start-up must complete
        self._startup_timeout: tuple[asyncio.Timeout, float | None] | None = None
        self._connect_timeout: float | None = None
        # the background cancel-and-drain after an interrupted operation (see _start_drain)
        self._drain: asyncio.Task[None] | None = None
        # set while no operation runs: close() waits on it for an operation in progress
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- the one place that waits ------------------------------------------------------

    async def fill(self) -> None:
        """Flush what the core queued, then wait for the server's next bytes.

        This is the single flush point: the operation's messages and any reply the core
        queued itself (authentication) go out just before we wait.
        """
        proto, stream = self.proto, self._stream
        if proto.work is not None:  # SCRAM's PBKDF2: off the loop, so deadlines hold
            from .auth.scram import derive_off_loop

            await derive_off_loop(proto.work)
            proto.work_done()
            return
        if self._flushing is not None:
            await self._settle_flush()
        out = proto.data_to_send()
        if out:
            try:
                await stream.write(out)
            except Error as exc:
                reason = await self._last_words() or str(exc)
                raise self.lost(reason, unsent=self.events_in_op == 0) from exc
        try:
            data = await stream.read(65536)
        except Error as exc:
            raise self.lost(str(exc)) from exc
        if not data:
            raise self.lost("the server closed the connection")
        proto.receive_data(data)

    async def flush(self) -> None:
        """Send what the core queued without waiting for an answer (COPY data, executemany()
        flights, in bounded pieces), after a deferred start-up flush (bytes stay in order)."""
        if self._flushing is not None:
            await self._settle_flush()
        await self._stream.write(self.proto.data_to_send())

    async def _last_words(self) -> str | None:
        """The server's goodbye (e.g. a FATAL from pg_terminate_backend), if it arrived
        before the stream died: a better reason to report than "connection is closed"."""
        try:
            async with asyncio.timeout(0.2):
                while data := await self._stream.read(65536):
                    self.proto.receive_data(data)
        except (Error, OSError, TimeoutError):
            pass  # whatever did arrive is in the core by now
        try:
            while is_message(event := self.proto.next_event()):
                if isinstance(event, m.ErrorResponse):
                    return PostgresError.from_fields(event.fields).message
        except Error:
            pass  # half a message: no goodbye to report
        return None

    def filter(self, event: m.BackendMessage) -> m.BackendMessage | None:
        """Consume what is not the operation's business: notices, notifications, the tail of
        a pipelined start-up, a FATAL; return the rest."""
        if isinstance(event, m.NoticeResponse):
            self.on_notice(event)
            return None
        if isinstance(event, m.NotificationResponse):
            self.on_notification(event)
            return None
        if not self.started:  # the tail of a pipelined start-up, before the operation's
            self._filter_startup(event)
            return None
        if isinstance(event, m.ErrorResponse) and self.proto.state is State.CLOSED:
            err = PostgresError.from_fields(event.fields)
            raise self.lost(err.message, unsent=self.events_in_op == 0) from err
        self.events_in_op += 1
        return event

    async def pump(self) -> m.BackendMessage:
        """The operation's next event, waiting for the server as needed."""
        next_event = self.proto.next_event
        while True:
            event = next_event()
            if not is_message(event):
                await self.fill()
                continue
            msg = self.filter(event)
            if msg is not None:
                return msg

    async def until_ready(
        self, on_event: EventHandler | None = None, *, query: str | None = None
    ) -> None:
        """Wait for the operation's ReadyForQuery, handing every other event to ``on_event``
        (which may be a coroutine function).

        Raises:
            PostgresError: the operation's ErrorResponse, raised once the session is back at
                ReadyForQuery (so the connection stays usable).
        """
        error: m.ErrorResponse | None = None
        next_event, filter_event = self.proto.next_event, self.filter
        while True:  # pump() inlined: no coroutine per event
            event = next_event()
            if not is_message(event):
                await self.fill()
                continue
            msg = filter_event(event)
            if msg is None:
                continue
            if isinstance(msg, m.ReadyForQuery):
                break
            if isinstance(msg, m.ErrorResponse):
                error = msg
            elif on_event is not None:
                pending = on_event(msg)
                if pending is not None:
                    await pending
        if error is not None:
            raise PostgresError.from_fields(error.fields, query)

    def lost(self, reason: str, *, unsent: bool = False) -> ConnectionLostError:
        # asyncpg's words first (callers such as SQLAlchemy's tests match on them), then where
        return ConnectionLostError(
            f"connection was closed in the middle of operation: {reason} "
            f"(connection to {self.params.describe()} lost)",
            unsent=unsent,
        )

    # ---- one operation at a time -------------------------------------------------------

    async def run(
        self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None
    ) -> T:
        """Run one operation exclusively.

        An exception leaves the session usable if the core is back to READY with nothing
        pending (a server error after its ReadyForQuery, a bad argument caught before
        sending, a COPY source that failed and was aborted). An interruption in the middle
        of the conversation (a timeout, a cancelled task, a failing user callback) raises at
        once and leaves a background cancel-and-drain: the next operation waits for it
        within its own timeout, or finds the connection closed if it failed. A transport or
        protocol failure breaks the session.
        """
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float)
        ):
            raise ValueError(f"invalid timeout value: {timeout!r} (expected a number of seconds)")
        self._begin()
        try:
            if timeout is None:
                timeout = self.params.command_timeout
            if self._drain is not None:
                timeout = await self._wait_drain(timeout)
            if self._reader is not None:
                await self.stop_reader()
                self._check_idle_failure()
            if not self.started:
                return await self._first(fn, *args, timeout=timeout)
            if timeout is None:
                return await fn(*args)
            async with asyncio.timeout(timeout):
                return await fn(*args)
        except BaseException as exc:
            proto = self.proto
            if isinstance(exc, TransportError) or (
                isinstance(exc, Error) and not isinstance(exc, PostgresError | InterfaceError)
            ):
                await self._mark_broken(exc)  # transport or protocol: the stream is not trusted
            elif not (proto.state is State.READY and not proto.pending):
                if self._can_drain(exc):
                    self._start_drain(exc)
                else:
                    await self._mark_broken(exc)
            raise
        finally:
            self.busy = False
            self._idle.set()
            if self.listening:
                self.start_reader()

    def _can_drain(self, exc: BaseException) -> bool:
        """Whether an interrupted operation can be cancelled and drained instead of breaking
        the session: the conversation is intact (only the caller stopped listening)."""
        if self.closed or self.broken is not None or not self.started:
            return False
        if self.proto.state is State.CLOSED:
            return False
        return isinstance(exc, asyncio.CancelledError | TimeoutError) or (
            isinstance(exc, Exception) and not isinstance(exc, Error)
        )

    def _start_drain(self, why: BaseException) -> None:
        log.debug("cancelling the interrupted operation on %s: %r", self.params.describe(), why)
        deadline = self.loop.time() + CANCEL_GRACE
        self._drain = self.loop.create_task(self._cancel_and_drain(deadline))

    async def _wait_drain(self, timeout: float | None) -> float | None:
        """Wait for a background drain before this operation; returns what is left of
        ``timeout`` (the wait counts against the operation's deadline, as in asyncpg)."""
        drain = self._drain
        if drain is None:
            return timeout
        start = self.loop.time()
        async with asyncio.timeout(timeout):
            await asyncio.shield(drain)  # a timed-out waiter leaves the drain running
        if self.broken is not None:
            raise InterfaceError(
                f"cannot perform operation: connection is closed ({self.params.describe()}) "
                f"after an earlier failure: {self.broken!r}"
            )
        if timeout is None:
            return None
        return max(timeout - (self.loop.time() - start), 0.001)

    def _begin(self) -> None:
        if self.busy:
            raise InterfaceError(
                "cannot perform operation: another operation is in progress on this "
                "connection (a connection serves one task at a time; use a Pool to run "
                "queries concurrently)"
            )
        if self.broken is not None and self._reader is not None:
            self._reader = None
            self._check_idle_failure()  # found by the LISTEN reader: report it once, as it was
        if self.closed or self.broken is not None:
            why = f" after an earlier failure: {self.broken!r}" if self.broken else ""
            raise InterfaceError(
                f"cannot perform operation: connection is closed ({self.params.describe()}){why}"
            )
        if asyncio.get_running_loop() is not self.loop:
            raise InterfaceError("this connection belongs to a different event loop")
        self.busy = True
        self._idle.clear()
        self.events_in_op = 0

    async def cancel_server_query(self) -> bool:
        """Send a CancelRequest for this session's backend on a new stream.

        Returns:
            False if the server never told its backend key (nothing could be sent).
        """
        from .dial import cancel

        proto = self.proto
        if proto.backend_pid is None or proto.backend_key is None:
            return False
        await cancel(self.params, proto.backend_pid, proto.backend_key)
        return True

    async def _cancel_and_drain(self, deadline: float) -> None:
        """In the background, after an interrupted operation: ask the server to cancel it
        (abandon a COPY FROM STDIN), read up to its ReadyForQuery and drop what arrives.

        Until ``deadline`` (loop time); past it, or on any failure, the session is broken
        and its stream closed, so nothing ever waits on a server that ignores the cancel.
        """
        proto = self.proto
        try:
            async with asyncio.timeout_at(deadline):
                if proto.state is State.COPY_IN:
                    proto.send_copy_fail("canceled by the client")
                out = proto.data_to_send()  # what the operation queued goes before the cancel
                if out:
                    await self._stream.write(out)
                await self.cancel_server_query()
                while proto.pending:  # QueryCanceled and the rest, until ReadyForQuery
                    await self.pump()
        except BaseException as exc:
            log.debug("cancel on %s failed: %r", self.params.describe(), exc)
            await self._mark_broken(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._drain = None
            if self.listening:
                self.start_reader()

    async def _mark_broken(self, exc: BaseException) -> None:
        if self.broken is None:
            self.broken = exc
            log.debug("connection to %s broken: %r", self.params.describe(), exc)
            if not self.closed:
                self.on_end()
        await self._close_stream()

    async def _close_stream(self) -> None:
        try:
            async with asyncio.timeout(1.0):
                await self._stream.close()
        except (Error, OSError, TimeoutError) as exc:
            log.debug("closing stream to %s: %r", self.params.describe(), exc)

    def is_closed(self) -> bool:
        return self.closed or self.broken is not None

    def check_same_lending(self, returned: int, what: str) -> None:
        """Refuse ``what`` for an object made while the connection was lent to a borrower
        who has since given it back (``returned`` is the count when it was made): it would
        run in the session of whoever holds the connection now. asyncpg's message."""
        if returned != self.returned:
            raise InterfaceError(
                f"cannot call {what}(): the underlying connection has been released back to "
                "the pool"
            )

    async def close(self, timeout: float | None) -> None:
        """Send Terminate and close the stream, within ``timeout`` seconds (past it the stream
        is dropped and ``TimeoutError`` raised, as asyncpg does).

        An operation running in another task is cancelled on the server first (it ends
        with ``QueryCanceledError``, as with asyncpg) and a background drain is let finish;
        whatever is still running at the deadline is ended by dropping the stream.
        """
        if self.closed:
            return
        self.closed = True
        if self.broken is None:
            self.on_end()
        await self.stop_reader()
        try:
            async with asyncio.timeout(timeout):
                await self._stop_flush()
                if self.busy and self.broken is None:
                    await self.cancel_server_query()
                    await self._idle.wait()
                if self._drain is not None:
                    await asyncio.wait({self._drain})  # never raises; it records a failure
                if self.broken is None and not self.busy:
                    self.proto.send_terminate()
                    await self._stream.write(self.proto.data_to_send())
                await self._stream.close()
        except TimeoutError:
            # As asyncpg: the deadline is reported, and whatever still runs (another task's
            # operation, a background cancel) ends now, on a dropped stream.
            self._abort_stream()
            raise
        except asyncio.CancelledError:
            self._abort_stream()
            raise
        except (Error, OSError) as exc:
            log.debug("closing connection to %s: %r", self.params.describe(), exc)
            if self.busy or self._drain is not None:
                self._abort_stream()  # wakes the task still reading
            else:
                await self._close_stream()

    def _abort_stream(self) -> None:
        """Drop the stream at once (a task blocked reading it wakes up with an error)."""
        abort = getattr(self._stream, "abort", None)
        if abort is not None:
            abort()
            return
        task = self.loop.create_task(self._close_stream())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def terminate(self) -> None:
        """Close at once without a goodbye (for callers that cannot await)."""
        if not self.closed and self.broken is None:
            self.on_end()
        self.closed = True
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        self._abort_stream()

    # ---- start-up, and the pipelined start-up's deferred flush -------------------------

    async def startup(
        self,
        *,
        pipeline: bool = False,
        hear_first: bool = False,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """Drive start-up and authentication: to the first ReadyForQuery, or with
        ``pipeline`` only until the last message the client has to send is queued.

        Returning early is safe where nothing the server says next changes what the client
        sends (trust, a predicted cleartext password, SCRAM's client-final): the first
        operation then carries the last authentication message in its own flight
        ("Pipelining" in the Extended Query section of the PostgreSQL docs), reads the
        start-up's answer before its own, and raises a refusal itself. If no operation
        follows at once, the queued messages leave by themselves after ``FLUSH_DELAY``.

        Args:
            hear_first: return early only once the server has answered something (an
                authentication request): when another attempt may follow (sslmode=prefer or
                allow), a refusal by pg_hba.conf must still reach connect(), which retries.
            deadline: loop time by which the start-up must complete (connect's deadline,
                of ``timeout`` seconds), enforced on the first operation when this returns
                early.
        """
        proto = self.proto
        while not self.started:
            event = proto.next_event()
            if is_message(event):
                self.filter(event)  # notices, the start-up's end
                continue
            if pipeline and proto.startup_queued and not (hear_first and proto.auth_method is None):
                self._startup_deadline, self._connect_timeout = deadline, timeout
                self._flush_handle = self.loop.call_later(FLUSH_DELAY, self._flush_deferred)
                return
            await self.fill()

    async def finish_startup(self) -> None:
        """Read up to the start-up's ReadyForQuery (run it through ``run()``)."""
        proto = self.proto
        while not self.started:
            event = proto.next_event()
            if is_message(event):
                self.filter(event)
            else:
                await self.fill()

    def _filter_startup(self, event: m.BackendMessage) -> None:
        """An event of the start-up's tail, met by the first operation (or ``ready()``)."""
        if isinstance(event, m.ReadyForQuery):
            self.started = True
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
        own = None if timeout is None else self.loop.time() + timeout
        limits = [t for t in (own, self._startup_deadline) if t is not None]
        try:
            async with asyncio.timeout_at(min(limits) if limits else None) as cm:
                self._startup_timeout = (cm, own)
                return await fn(*args)
        except TimeoutError as exc:
            if not self.started:
                raise TimeoutError(
                    f"connecting to {self.params.describe()} timed out"
                    + (f" after {self._connect_timeout:g} s" if self._connect_timeout else "")
                    + " (start-up not confirmed by the server)"
                ) from exc
            raise
        finally:
            self._startup_timeout = None

    def _flush_deferred(self) -> None:
        """Send what connect() left queued, if no operation took it along meanwhile."""
        self._flush_handle = None
        if self.busy or self.closed or self.broken is not None:
            return  # an operation in progress flushes it; a closed session needs nothing
        out = self.proto.data_to_send()
        if out:
            self._flushing = self.loop.create_task(self._write_deferred(out))

    async def _write_deferred(self, out: bytes) -> None:
        try:
            await self._stream.write(out)
        except Error as exc:  # reported by the next operation, never into the event loop
            log.debug("deferred start-up flush to %s failed: %r", self.params.describe(), exc)
            self._flush_error = exc

    async def _settle_flush(self) -> None:
        """Let a deferred flush finish before anything else is written (bytes stay in
        order), and report its failure as the session's."""
        task, self._flushing = self._flushing, None
        if task is not None:
            await task
        if self._flush_error is not None:
            exc, self._flush_error = self._flush_error, None
            raise self.lost(str(exc), unsent=True) from exc

    async def _stop_flush(self) -> None:
        """Before close(): no timer left behind, and a flush in progress finished."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        task, self._flushing = self._flushing, None
        if task is not None:
            await task

    # ---- LISTEN: between operations, a reader task owns the stream ----------------------

    @property
    def reading(self) -> bool:
        """Whether the LISTEN reader task is running (between operations)."""
        return self._reader is not None

    def start_reader(self) -> None:
        if self._reader is None and self._drain is None and not self.busy and not self.is_closed():
            self._reader = self.loop.create_task(self._read_idle())

    async def stop_reader(self) -> None:
        task, self._reader = self._reader, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})  # never raises; the task records its own failure

    async def _read_idle(self) -> None:
        """Deliver notifications while no operation runs; record (never raise) a failure."""
        proto, stream = self.proto, self._stream
        self.events_in_op = 0
        try:
            while True:
                data = await stream.read(65536)
                if not data:
                    raise self.lost("the server closed the connection", unsent=True)
                proto.receive_data(data)
                while is_message(event := proto.next_event()):
                    if self.filter(event) is not None:
                        raise ProtocolError(f"unexpected {type(event).__name__} while idle")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.debug("connection to %s failed while idle: %r", self.params.describe(), exc)
            await self._mark_broken(exc)

    def _check_idle_failure(self) -> None:
        """Raise, at the call that follows, what the reader found while the session idled."""
        exc = self.broken
        if exc is None:
            return
        if isinstance(exc, ConnectionLostError):
            raise ConnectionLostError(str(exc), unsent=exc.unsent) from exc
        raise InterfaceError(f"connection to {self.params.describe()} failed: {exc!r}") from exc
