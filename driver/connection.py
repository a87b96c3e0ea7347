"""Connection: one Postgres session, the asyncio shell around the sans-I/O core."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .batch import BatchMixin
from .codecs import default_registry
from .copy import CopyMixin
from .dsn import ConnectParams
from .errors import (
    ConnectionLostError,
    Error,
    InterfaceError,
    PostgresError,
)
from .extended import ExtendedQuery
from .listen import Listener, ListenMixin, LogListener
from .pipeline import StartupMixin
from .prepared import PreparedStatement, Statement, StatementCache
from .protocol import NEED_DATA, PGProtocol, State
from .protocol import messages as m
from .record import Record
from .transaction import Transaction

if TYPE_CHECKING:
    from .transport.base import Stream

__all__ = ["Connection"]

log = logging.getLogger(__name__)
CANCEL_GRACE = 5.0  # seconds to cancel a timed-out query before giving the connection up
T = TypeVar("T")


class Connection(ExtendedQuery, CopyMixin, ListenMixin, StartupMixin, BatchMixin):
    """A connection to one database, used by one task at a time (use a Pool to share).

    Every operation queues its messages on the core and calls ``_pump()`` until the
    operation's ReadyForQuery. After any exception the connection is either back in a known
    state (a ``PostgresError`` raised after ReadyForQuery) or marked broken and closed.
    """

    def __init__(
        self, stream: Stream, proto: PGProtocol, params: ConnectParams, *, cache_size: int = 100
    ) -> None:
        self._stream = stream
        self._proto = proto
        self._params = params
        self._codecs = default_registry.copy()
        self._cache = StatementCache(cache_size)
        self._loop = asyncio.get_running_loop()
        self._busy = False
        self._closed = False
        self._broken: BaseException | None = None
        self._started = False
        self._events_in_op = 0
        self._log_listeners: list[LogListener] = []
        self._listeners: dict[str, list[Listener]] = {}
        self._tx_depth = 0
        self._sp_counter = 0
        self._reader: asyncio.Task[None] | None = None

    # ---- the one function that waits ---------------------------------------------------

    async def _fill(self) -> None:
        """Flush what the core queued, then wait for the server's next bytes.

        This is the single flush point: the operation's messages and any reply the core
        queued itself (authentication) go out just before we wait.
        """
        proto, stream = self._proto, self._stream
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
                raise self._lost(reason, unsent=self._events_in_op == 0) from exc
        try:
            data = await stream.read(65536)
        except Error as exc:
            raise self._lost(str(exc)) from exc
        if not data:
            raise self._lost("the server closed the connection")
        proto.receive_data(data)

    async def _last_words(self) -> str | None:
        """The server's goodbye (e.g. a FATAL from pg_terminate_backend), if it arrived
        before the stream died: a better reason to report than "connection is closed"."""
        try:
            async with asyncio.timeout(0.2):
                while data := await self._stream.read(65536):
                    self._proto.receive_data(data)
        except (Error, OSError, TimeoutError):
            pass  # whatever did arrive is in the core by now
        try:
            while (event := self._proto.next_event()) is not NEED_DATA:
                if isinstance(event, m.ErrorResponse):
                    return PostgresError.from_fields(event.fields).message
        except Error:
            pass  # half a message: no goodbye to report
        return None

    def _filter(self, event: m.BackendMessage) -> m.BackendMessage | None:
        """Consume what is not the operation's business: notices, notifications, FATAL."""
        cls = type(event)
        if cls is m.NoticeResponse:
            self._on_notice(event)  # type: ignore[arg-type]
            return None
        if cls is m.NotificationResponse:
            self._on_notification(event)  # type: ignore[arg-type]
            return None
        if not self._started:  # the tail of a pipelined start-up, before the operation's
            self._filter_startup(event)
            return None
        if isinstance(event, m.ErrorResponse) and self._proto.state is State.CLOSED:
            err = PostgresError.from_fields(event.fields)
            raise self._lost(err.message, unsent=self._events_in_op == 0) from err
        self._events_in_op += 1
        return event

    async def _pump(self) -> m.BackendMessage:
        """The operation's next event, waiting for the server as needed."""
        next_event = self._proto.next_event
        while True:
            event = next_event()
            if event is NEED_DATA:
                await self._fill()
                continue
            msg = self._filter(event)
            if msg is not None:
                return msg

    def _lost(self, reason: str, *, unsent: bool = False) -> ConnectionLostError:
        return ConnectionLostError(
            f"connection to {self._params.describe()} was lost: {reason}", unsent=unsent
        )

    async def _run(
        self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None
    ) -> T:
        """Run one operation exclusively.

        An exception leaves the connection usable only if the core is back to READY with
        nothing pending (a server error after its ReadyForQuery, a bad argument caught
        before sending, a COPY source that failed and was aborted); otherwise it is broken.
        """
        self._begin()
        try:
            if self._reader is not None:
                await self._stop_reader()
                self._check_idle_failure()
            if timeout is None:
                timeout = self._params.command_timeout
            if not self._started:
                return await self._first(fn, *args, timeout=timeout)
            if timeout is None:
                return await fn(*args)
            try:
                async with asyncio.timeout(timeout):
                    return await fn(*args)
            except TimeoutError:
                if self._proto.pending:
                    await self._cancel_and_drain()
                raise
        except BaseException as exc:
            proto = self._proto
            clean = proto.state is State.READY and not proto.pending
            if not clean or (
                isinstance(exc, Error) and not isinstance(exc, PostgresError | InterfaceError)
            ):
                # Mid-conversation (cancelled, timed out, transport or protocol failure):
                # the stream's position is unknown, so the connection cannot be reused.
                await self._mark_broken(exc)
            raise
        finally:
            self._busy = False
            if self._listeners:
                self._start_reader()

    async def _cancel_and_drain(self) -> None:
        """After a timeout: ask the server to cancel, then read up to ReadyForQuery.

        Bounded by CANCEL_GRACE seconds; if that fails the caller marks the connection
        broken, as it would without trying.
        """
        from .startup import cancel  # startup imports this module

        proto = self._proto
        if proto.backend_pid is None or proto.backend_key is None:
            return
        try:
            async with asyncio.timeout(CANCEL_GRACE):
                await cancel(self._params, proto.backend_pid, proto.backend_key)
                if proto.state is State.COPY_IN:
                    proto.send_copy_fail("canceled by the client after a timeout")
                while proto.pending:  # QueryCanceled and the rest, until ReadyForQuery
                    await self._pump()
        except (Error, OSError, TimeoutError) as exc:
            log.debug("cancel after timeout failed on %s: %r", self._params.describe(), exc)

    def _begin(self) -> None:
        if self._busy:
            raise InterfaceError(
                "cannot perform operation: another operation is in progress on this "
                "connection (a connection serves one task at a time; use a Pool to run "
                "queries concurrently)"
            )
        if self._broken is not None and self._reader is not None:
            self._reader = None
            self._check_idle_failure()  # found by the LISTEN reader: report it once, as it was
        if self._closed or self._broken is not None:
            why = f" after an earlier failure: {self._broken!r}" if self._broken else ""
            raise InterfaceError(f"connection to {self._params.describe()} is closed{why}")
        if asyncio.get_running_loop() is not self._loop:
            raise InterfaceError("this connection belongs to a different event loop")
        self._busy = True
        self._events_in_op = 0

    async def _mark_broken(self, exc: BaseException) -> None:
        if self._broken is None:
            self._broken = exc
            log.debug("connection to %s broken: %r", self._params.describe(), exc)
        await self._close_stream()

    async def _close_stream(self) -> None:
        try:
            async with asyncio.timeout(1.0):
                await self._stream.close()
        except (Error, OSError, TimeoutError) as exc:
            log.debug("closing stream to %s: %r", self._params.describe(), exc)

    # ---- queries -----------------------------------------------------------------------

    async def _simple(self, sql: str) -> str:
        proto = self._proto
        proto.send_query(sql)
        tag = ""
        error: m.ErrorResponse | None = None
        while True:
            event = await self._pump()
            if isinstance(event, m.CommandComplete):
                tag = event.tag
            elif isinstance(event, m.ReadyForQuery):
                break
            elif isinstance(event, m.ErrorResponse):
                error = event
            elif isinstance(event, m.CopyInResponse):
                proto.send_copy_fail("use copy_to_table() or copy_records_to_table() for COPY IN")
        if error is not None:
            raise PostgresError.from_fields(error.fields)
        return tag

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Run a command and return its status tag, e.g. ``"INSERT 0 1"``.

        Without arguments this is a simple Query: several statements may be separated by
        semicolons and the tag is the last one's. With arguments it is one extended query.
        """
        if not args:
            return await self._run(self._simple, query, timeout=timeout)
        _, tag = await self._query(query, args, 0, timeout)
        return tag

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        """Run a command once per argument tuple, all pipelined before a single Sync."""
        rows = [tuple(a) for a in args]
        if not rows:
            return
        oids, _ = self._encode(rows[0])
        stmt = Statement("", command, oids)
        await self._execute_many_prepared(stmt, oids, rows, timeout, parse=True)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Record]:
        rows, _ = await self._query(query, args, 0, timeout)
        return rows

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Record | None:
        rows, _ = await self._query(query, args, 1, timeout)
        return rows[0] if rows else None

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        row = await self.fetchrow(query, *args, timeout=timeout)
        return None if row is None else row[column]

    async def prepare(self, query: str, *, timeout: float | None = None) -> PreparedStatement:
        """Prepare a statement; the server infers every parameter type.

        With ``statement_cache_size=0`` (PgBouncer in transaction mode) the statement is the
        unnamed one, parsed again, with the learnt types, in the same flight as each execution:
        a named statement would live on a backend the next transaction may not get.
        """
        name = self._cache.new_name()
        stmt = Statement(name, query, ())
        types = await self._run(self._prepare, stmt, timeout=timeout)
        if not name:
            stmt.param_oids = types
        return PreparedStatement(self, stmt, types)

    # ---- the rest of the public surface ------------------------------------------------

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> Transaction:
        """``async with conn.transaction():`` BEGIN/COMMIT, or a SAVEPOINT when nested."""
        return Transaction(self, isolation, readonly, deferrable)

    def is_closed(self) -> bool:
        return self._closed or self._broken is not None

    def is_in_transaction(self) -> bool:
        return self._proto.transaction_status != "I"

    def get_server_pid(self) -> int | None:
        return self._proto.backend_pid

    def get_server_version(self) -> str:
        return self._proto.parameters.get("server_version", "")

    @property
    def server_parameters(self) -> dict[str, str]:
        """ParameterStatus values the server reported (server_version, TimeZone, ...)."""
        return dict(self._proto.parameters)

    async def close(self, *, timeout: float | None = 5.0) -> None:
        """Send Terminate and close the stream, within ``timeout`` seconds."""
        if self._closed:
            return
        self._closed = True
        await self._stop_reader()
        try:
            async with asyncio.timeout(timeout):
                await self._stop_flush()
                if self._broken is None and not self._busy:
                    self._proto.send_terminate()
                    await self._stream.write(self._proto.data_to_send())
                await self._stream.close()
        except (Error, OSError, TimeoutError) as exc:
            log.debug("closing connection to %s: %r", self._params.describe(), exc)
            await self._close_stream()

    def terminate(self) -> None:
        """Close at once without a goodbye (for callers that cannot await)."""
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        abort = getattr(self._stream, "abort", None)
        if abort is not None:
            abort()
            return
        task = self._loop.create_task(self._close_stream())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else self._proto.state.name.lower()
        return f"<Connection {self._params.user}@{self._params.describe()} {state}>"

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
