"""Connection: one Postgres session, the asyncio shell around the sans-I/O core."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .codecs import default_registry
from .copy import CopyMixin
from .dsn import ConnectParams
from .errors import (
    ConnectionLostError,
    Error,
    InterfaceError,
    InvalidCachedStatement,
    PostgresError,
)
from .listen import Listener, ListenMixin, LogListener
from .prepared import PreparedStatement, Statement, StatementCache
from .protocol import NEED_DATA, PGProtocol, State
from .protocol import messages as m
from .record import Record
from .transaction import Transaction

if TYPE_CHECKING:
    from .transport.base import Stream

__all__ = ["Connection"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_STALE = ("cached plan must not change result type",)
# int2/int4/int8/float4/float8: left for the server to infer. Their text form is valid input
# for every numeric type, while a declared int8 or float8 would hide functions that take
# integer or numeric (pg_terminate_backend(int), round(numeric, int), substr(text, int)...).
_INFER_ON_SERVER = frozenset({20, 21, 23, 700, 701})


def _is_stale(exc: PostgresError) -> bool:
    """The server dropped or invalidated a cached statement, so re-preparing it is safe."""
    if exc.sqlstate == "26000":  # prepared statement does not exist (DISCARD ALL, DEALLOCATE)
        return True
    return exc.sqlstate == "0A000" and (
        exc.server_source_function == "RevalidateCachedQuery" or exc.message in _STALE
    )


class Connection(CopyMixin, ListenMixin):
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

    # ---- the one function that waits ---------------------------------------------------

    async def _fill(self) -> None:
        """Flush what the core queued, then wait for the server's next bytes.

        This is the single flush point: the operation's messages and any reply the core
        queued itself (authentication) go out just before we wait.
        """
        proto, stream = self._proto, self._stream
        out = proto.data_to_send()
        if out:
            try:
                await stream.write(out)
            except Error as exc:
                raise self._lost(str(exc), unsent=self._events_in_op == 0) from exc
        try:
            data = await stream.read(65536)
        except Error as exc:
            raise self._lost(str(exc)) from exc
        if not data:
            raise self._lost("the server closed the connection")
        proto.receive_data(data)

    def _filter(self, event: m.BackendMessage) -> m.BackendMessage | None:
        """Consume what is not the operation's business: notices, notifications, FATAL."""
        cls = type(event)
        if cls is m.NoticeResponse:
            self._on_notice(event)  # type: ignore[arg-type]
            return None
        if cls is m.NotificationResponse:
            self._on_notification(event)  # type: ignore[arg-type]
            return None
        if (
            isinstance(event, m.ErrorResponse)
            and self._proto.state is State.CLOSED
            and self._started
        ):
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
            msg = self._filter(event)  # type: ignore[arg-type]
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
            if timeout is None:
                return await fn(*args)
            async with asyncio.timeout(timeout):
                return await fn(*args)
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

    def _begin(self) -> None:
        if self._busy:
            raise InterfaceError(
                "cannot perform operation: another operation is in progress on this "
                "connection (a connection serves one task at a time; use a Pool to run "
                "queries concurrently)"
            )
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

    # ---- startup ---------------------------------------------------------------------

    async def _startup(self) -> None:
        """Drive StartupMessage and authentication to the first ReadyForQuery."""
        while True:
            event = await self._pump()
            if isinstance(event, m.ReadyForQuery):
                self._started = True
                return
            if isinstance(event, m.ErrorResponse):
                raise PostgresError.from_fields(event.fields)

    # ---- queries -----------------------------------------------------------------------

    def _encode(
        self, args: Sequence[Any], oids: Sequence[int] | None = None
    ) -> tuple[tuple[int, ...], list[bytes | None]]:
        encode = self._codecs.encode
        types: list[int] = []
        values: list[bytes | None] = []
        for i, value in enumerate(args):
            try:
                oid, data = encode(value, oids[i] if oids else 0)
            except (TypeError, ValueError) as exc:
                raise InterfaceError(f"invalid argument ${i + 1} ({value!r}): {exc}") from exc
            types.append(0 if oid in _INFER_ON_SERVER and not oids else oid)
            values.append(data)
        if oids is not None and len(args) != len(oids):
            raise InterfaceError(f"the statement expects {len(oids)} arguments, got {len(args)}")
        return tuple(types), values

    async def _exchange(
        self, stmt: Statement, fresh: bool, values: list[bytes | None], max_rows: int
    ) -> tuple[list[tuple[bytes | None, ...]], str]:
        proto = self._proto
        if fresh:
            proto.send_prepare_execute(
                stmt.name, stmt.sql, stmt.param_oids, values, max_rows=max_rows
            )
        else:
            proto.send_execute(stmt.name, values, max_rows=max_rows)
        rows: list[tuple[bytes | None, ...]] = []
        tag = ""
        error: m.ErrorResponse | None = None
        decoder = self._codecs.decoder
        next_event = proto.next_event
        data_row = m.DataRow  # a local name for the per-row hot path
        while True:
            event = next_event()
            if type(event) is data_row:
                rows.append(event.values)
                continue
            if event is NEED_DATA:
                await self._fill()
                continue
            msg = self._filter(event)  # type: ignore[arg-type]
            cls = type(msg)
            if cls is m.CommandComplete:
                tag = msg.tag  # type: ignore[union-attr]
            elif cls is m.RowDescription:
                stmt.set_fields(msg.fields, decoder)  # type: ignore[union-attr,arg-type]
            elif cls is m.NoData:
                stmt.set_fields((), decoder)
            elif cls is m.ReadyForQuery:
                break
            elif cls is m.ErrorResponse:
                error = msg  # type: ignore[assignment]
        if error is not None:
            raise PostgresError.from_fields(error.fields)
        return rows, tag

    def _decode(self, stmt: Statement, raw: list[tuple[bytes | None, ...]]) -> list[Record]:
        if not raw:
            return []
        decoders, cls = stmt.decoders, stmt.record_cls
        if cls is None:
            raise InterfaceError("the statement returned rows but no row description")
        try:
            return [
                cls([None if v is None else d(v) for d, v in zip(decoders, row, strict=True)])
                for row in raw
            ]
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise InterfaceError(f"cannot decode a result value: {exc}") from exc

    async def _query(
        self, sql: str, args: Sequence[Any], max_rows: int, timeout: float | None
    ) -> tuple[list[Record], str]:
        oids, values = self._encode(args)
        key = (sql, oids)
        cache = self._cache
        for attempt in (0, 1):
            stmt = cache.get(key) if cache.size else None
            fresh = stmt is None
            if stmt is None:
                stmt = Statement(cache.new_name() if cache.size else "", sql, oids)
            try:
                raw, tag = await self._run(self._exchange, stmt, fresh, values, max_rows,
                                           timeout=timeout)  # fmt: skip
            except PostgresError as exc:
                if fresh:
                    self._remember(key, stmt)
                elif _is_stale(exc):
                    self._forget_statement(stmt, key, close=exc.sqlstate != "26000")
                    if attempt == 0 and self._proto.transaction_status == "I":
                        continue
                    if self._proto.transaction_status != "I":
                        fields = {k: v for k, v in exc.as_dict().items() if k != "message"}
                        raise InvalidCachedStatement(
                            f"{exc.message}: the cached statement cannot be re-prepared inside "
                            "a transaction block; retry the transaction",
                            **fields,
                        ) from exc
                raise
            if fresh:
                self._remember(key, stmt)
            return self._decode(stmt, raw), tag
        raise AssertionError("unreachable")

    def _remember(self, key: tuple[str, tuple[int, ...]], stmt: Statement) -> None:
        if not stmt.name or stmt.fields is None:
            return  # unnamed, or the Parse failed: nothing exists on the server
        for old in self._cache.put(key, stmt):
            if self._proto.state in (State.READY, State.BUSY):
                self._proto.send_close_statement(old.name)

    def _forget_statement(
        self, stmt: Statement, key: tuple[str, tuple[int, ...]] | None = None, *, close: bool = True
    ) -> None:
        if key is not None:
            self._cache.discard(key)
        if close and stmt.name and self._proto.state in (State.READY, State.BUSY):
            self._proto.send_close_statement(stmt.name)

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
        """Prepare a named statement; the server infers every parameter type."""
        stmt = Statement(self._cache.new_name(), query, ())
        types = await self._run(self._prepare, stmt, timeout=timeout)
        return PreparedStatement(self, stmt, types)

    async def _prepare(self, stmt: Statement) -> tuple[int, ...]:
        self._proto.send_prepare(stmt.name, stmt.sql)
        types: tuple[int, ...] = ()
        error: m.ErrorResponse | None = None
        while True:
            event = await self._pump()
            if isinstance(event, m.ParameterDescription):
                types = event.type_oids
            elif isinstance(event, m.RowDescription):
                stmt.set_fields(event.fields, self._codecs.decoder)
            elif isinstance(event, m.NoData):
                stmt.set_fields((), self._codecs.decoder)
            elif isinstance(event, m.ErrorResponse):
                error = event
            elif isinstance(event, m.ReadyForQuery):
                break
        if error is not None:
            raise PostgresError.from_fields(error.fields)
        return types

    async def _execute_prepared(
        self,
        stmt: Statement,
        types: tuple[int, ...],
        args: Sequence[Any],
        max_rows: int,
        timeout: float | None,
    ) -> tuple[list[Record], str]:
        _, values = self._encode(args, types)
        raw, tag = await self._run(self._exchange, stmt, False, values, max_rows, timeout=timeout)
        return self._decode(stmt, raw), tag

    async def _execute_many_prepared(
        self,
        stmt: Statement,
        types: tuple[int, ...],
        args: Iterable[Sequence[Any]],
        timeout: float | None,
        *,
        parse: bool = False,
    ) -> None:
        encoded = [self._encode(a, types if types else None)[1] for a in args]
        await self._run(self._many, stmt, encoded, parse, timeout=timeout)

    async def _many(self, stmt: Statement, rows: list[list[bytes | None]], parse: bool) -> None:
        self._proto.send_execute_many(
            stmt.name, rows, parse=(stmt.sql, stmt.param_oids) if parse else None
        )
        error: m.ErrorResponse | None = None
        while True:
            event = await self._pump()
            if isinstance(event, m.ErrorResponse):
                error = event
            elif isinstance(event, m.ReadyForQuery):
                break
        if error is not None:
            raise PostgresError.from_fields(error.fields)

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
        try:
            async with asyncio.timeout(timeout):
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
        abort = getattr(self._stream, "abort", None)
        if abort is not None:
            abort()
            return
        task = self._loop.create_task(self._close_stream())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
