"""Connection side channels: notices, LISTEN/NOTIFY (with its idle reader task), type codecs."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .errors import ConnectionLostError, InterfaceError, PostgresError, ProtocolError
from .protocol import NEED_DATA
from .protocol import messages as m

if TYPE_CHECKING:
    from .codecs import TypeRegistry
    from .connection import Connection
    from .dsn import ConnectParams
    from .prepared import Statement, StatementCache
    from .protocol import PGProtocol
    from .record import Record
    from .transport.base import Stream

__all__ = ["ListenMixin", "Listener", "LogListener"]

log = logging.getLogger("driver.connection")
LogListener = Callable[["Connection", PostgresError], Any]
Listener = Callable[["Connection", int, str, str], Any]
_LEVELS = {"WARNING": logging.WARNING, "NOTICE": logging.INFO, "INFO": logging.INFO}

_TYPE_QUERY = """
SELECT t.oid, t.typarray FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typname = $1 AND n.nspname = $2
"""


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ListenMixin:
    """Methods of Connection that deal with what arrives besides query results."""

    if TYPE_CHECKING:
        _codecs: TypeRegistry
        _cache: StatementCache
        _log_listeners: list[LogListener]
        _listeners: dict[str, list[Listener]]
        _reader: asyncio.Task[None] | None
        _stream: Stream
        _proto: PGProtocol
        _params: ConnectParams
        _loop: asyncio.AbstractEventLoop
        _busy: bool
        _broken: BaseException | None
        _events_in_op: int

        def is_closed(self) -> bool: ...

        def _lost(self, reason: str, *, unsent: bool = False) -> ConnectionLostError: ...

        def _filter(self, event: m.BackendMessage) -> m.BackendMessage | None: ...

        async def _mark_broken(self, exc: BaseException) -> None: ...

        async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str: ...

        async def fetchrow(
            self, query: str, *args: Any, timeout: float | None = None
        ) -> Record | None: ...

        def _forget_statement(
            self, stmt: Statement, key: Any = None, *, close: bool = True
        ) -> None: ...

    def _on_notice(self, msg: m.NoticeResponse) -> None:
        notice = PostgresError.from_fields(msg.fields)
        if not self._log_listeners:
            level = _LEVELS.get(notice.severity or "", logging.DEBUG)
            log.log(level, "server %s: %s", notice.severity, notice.message)
            return
        for callback in list(self._log_listeners):
            try:
                callback(cast("Connection", self), notice)
            except Exception:
                log.exception("log listener %r failed", callback)

    def _on_notification(self, msg: m.NotificationResponse) -> None:
        for callback in list(self._listeners.get(msg.channel, ())):
            try:
                callback(cast("Connection", self), msg.pid, msg.channel, msg.payload)
            except Exception:
                log.exception("listener %r for channel %r failed", callback, msg.channel)

    def add_log_listener(self, callback: LogListener) -> None:
        """Call ``callback(connection, message)`` for each NoticeResponse instead of logging."""
        self._log_listeners.append(callback)

    def remove_log_listener(self, callback: LogListener) -> None:
        self._log_listeners.remove(callback)

    async def add_listener(self, channel: str, callback: Listener) -> None:
        """LISTEN on ``channel``; ``callback(conn, pid, channel, payload)`` gets notifications.

        While any listener is registered, a reader task owned by the connection delivers
        notifications between operations; it hands the stream back when an operation starts
        and records (never raises) a failure, which the next call then raises.
        """
        if channel not in self._listeners:
            await self.execute(f"LISTEN {_quote_ident(channel)}")
            self._listeners[channel] = []
        self._listeners[channel].append(callback)
        self._start_reader()

    async def remove_listener(self, channel: str, callback: Listener) -> None:
        callbacks = self._listeners.get(channel, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks and channel in self._listeners:
            del self._listeners[channel]
            await self.execute(f"UNLISTEN {_quote_ident(channel)}")

    async def set_type_codec(
        self,
        typename: str,
        *,
        schema: str = "public",
        encoder: Callable[[Any], str | bytes],
        decoder: Callable[[str], Any],
        format: str = "text",
        python_type: type | None = None,
    ) -> None:
        """Use ``decoder(text)`` / ``encoder(value) -> text`` for a type (asyncpg's signature).

        Also covers the type's array type; with ``python_type``, bare values of that Python
        type are sent as this type. Cached statements are dropped, since their column
        decoders were resolved with the old table.

        Raises:
            InterfaceError: the type does not exist, or a format other than "text" was asked.
        """
        if format != "text":
            raise InterfaceError("only format='text' codecs are supported")
        row = await self.fetchrow(_TYPE_QUERY, typename, schema)
        if row is None:
            raise InterfaceError(f"type {schema}.{typename} does not exist")

        def decode(data: bytes) -> Any:
            return decoder(data.decode())

        self._codecs.register(
            row[0], encoder=encoder, decoder=decode, array_oid=row[1] or None,
            python_type=python_type,
        )  # fmt: skip
        for stmt in self._cache.clear():
            self._forget_statement(stmt)

    # ---- LISTEN: between operations, a reader task owns the stream ----------------------

    def _start_reader(self) -> None:
        if self._reader is None and not self._busy and not self.is_closed():
            self._reader = self._loop.create_task(self._read_idle())

    async def _stop_reader(self) -> None:
        task, self._reader = self._reader, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})  # never raises; the task records its own failure

    async def _read_idle(self) -> None:
        """Deliver notifications while no operation runs; record (never raise) a failure."""
        proto, stream = self._proto, self._stream
        self._events_in_op = 0
        try:
            while True:
                data = await stream.read(65536)
                if not data:
                    raise self._lost("the server closed the connection", unsent=True)
                proto.receive_data(data)
                while (event := proto.next_event()) is not NEED_DATA:
                    if self._filter(event) is not None:
                        raise ProtocolError(f"unexpected {type(event).__name__} while idle")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.debug("connection to %s failed while idle: %r", self._params.describe(), exc)
            await self._mark_broken(exc)

    def _check_idle_failure(self) -> None:
        """Raise, at the call that follows, what the reader found while the connection idled."""
        exc = self._broken
        if exc is None:
            return
        if isinstance(exc, ConnectionLostError):
            raise ConnectionLostError(str(exc), unsent=exc.unsent) from exc
        raise InterfaceError(f"connection to {self._params.describe()} failed: {exc!r}") from exc
