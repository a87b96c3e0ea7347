"""Listeners: a connection's callbacks (notices, LISTEN/NOTIFY, termination, query
loggers), delivered by its Session.

Each callback may be a plain function or a coroutine function, as in asyncpg: a coroutine
it returns runs as a task of its own, so a slow or failing callback never holds up, nor
breaks, the operation that produced the event.
"""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

import asyncio
import inspect
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

from .errors import InterfaceWarning, PostgresLogMessage
from .protocol import messages as m
from .query import simple
from .session import Session, log_notice

__all__ = [
    "Listener",
    "Listeners",
    "LogListener",
    "LoggedQuery",
    "QueryLogger",
    "TerminationListener",
]

log = logging.getLogger("driver.connection")
T = TypeVar("T")
# The first argument is the Connection the callback was registered on.
LogListener = Callable[[Any, PostgresLogMessage], Any]
Listener = Callable[[Any, int, str, str], Any]
TerminationListener = Callable[[Any], Any]


class LoggedQuery(NamedTuple):
    """What a query logger receives for each query (asyncpg's record)."""

    query: str
    args: tuple[Any, ...]
    timeout: float | None
    elapsed: float
    exception: BaseException | None
    conn_addr: tuple[str, int]
    conn_params: Any


QueryLogger = Callable[[LoggedQuery], Any]
_tasks: set[asyncio.Task[Any]] = set()  # callbacks' tasks, held until done


def _call(callback: Callable[..., Any], *args: Any) -> None:
    """Call a listener; a coroutine it returns runs as a task, its failure logged."""
    try:
        result = callback(*args)
    except Exception:
        log.exception("callback %r failed", callback)
        return
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        _tasks.add(task)
        task.add_done_callback(_done)


def _done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("callback failed", exc_info=task.exception())


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Listeners:
    """The callbacks of one connection: notices go to log listeners (else to the log),
    notifications to the listeners of their channel.

    While any channel is listened to, the session runs a reader task between operations
    that delivers notifications; it hands the stream back when an operation starts and
    records (never raises) a failure, which the next call then raises.
    """

    def __init__(self, session: Session, owner: object) -> None:
        self._session = session
        self._owner = owner  # the Connection
        self._face = owner  # passed to every callback: the Connection, or its pool proxy
        self._on_lent_end: Callable[[], None] | None = None
        self.log_listeners: list[LogListener] = []
        self.channels: dict[str, list[Listener]] = {}
        self.termination: list[TerminationListener] = []
        self.query_loggers: list[QueryLogger] = []
        session.on_notice = self._on_notice
        session.on_notification = self._on_notification
        session.on_end = self._on_end

    def _on_notice(self, msg: m.NoticeResponse) -> None:
        if not self.log_listeners:
            log_notice(msg)
            return
        notice = PostgresLogMessage.from_fields(msg.fields)
        for callback in list(self.log_listeners):
            _call(callback, self._face, notice)

    def _on_notification(self, msg: m.NotificationResponse) -> None:
        for callback in list(self.channels.get(msg.channel, ())):
            _call(callback, self._face, msg.pid, msg.channel, msg.payload)

    def _on_end(self) -> None:
        """The session ended: termination listeners run soon after (never inside close()),
        and a pool that lent the connection hears of it at once."""
        callbacks, self.termination = self.termination, []
        face, on_lent_end = self._face, self._on_lent_end
        if on_lent_end is not None:
            self.lend(self._owner, None)
            on_lent_end()
        loop = self._session.loop
        if not callbacks or loop.is_closed():  # terminate() at interpreter exit, say
            return
        for callback in callbacks:
            loop.call_soon(_call, callback, face)

    def lend(self, face: object, on_end: Callable[[], None] | None) -> None:
        """Callbacks receive ``face`` from now on; ``on_end`` runs if the session ends."""
        self._face, self._on_lent_end = face, on_end

    async def log_query(
        self, operation: Awaitable[T], sql: str, args: tuple[Any, ...], timeout: float | None
    ) -> T:
        """Await ``operation`` and tell every query logger about it, failed or not."""
        start = time.monotonic()
        exception: BaseException | None = None
        try:
            return await operation
        except BaseException as exc:
            exception = exc
            raise
        finally:
            params = self._session.params
            record = LoggedQuery(
                sql, args, timeout, time.monotonic() - start, exception,
                (params.host, params.port), params,
            )  # fmt: skip
            loop = self._session.loop
            for callback in list(self.query_loggers):
                loop.call_soon(_call, callback, record)

    def _changed(self) -> None:
        self._session.listening = bool(self.channels)

    async def add(self, channel: str, callback: Listener) -> None:
        """LISTEN on ``channel`` (once per channel) and start delivering to ``callback``."""
        session = self._session
        if channel not in self.channels:
            await session.run(simple, session, f"LISTEN {_quote_ident(channel)}")
            self.channels[channel] = []
            self._changed()
        self.channels[channel].append(callback)
        session.start_reader()

    async def remove(self, channel: str, callback: Listener) -> None:
        """Stop delivering to ``callback``; UNLISTEN once a channel has no callback left."""
        callbacks = self.channels.get(channel, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks and channel in self.channels:
            del self.channels[channel]
            self._changed()
            session = self._session
            await session.run(simple, session, f"UNLISTEN {_quote_ident(channel)}")

    def warn_dangling(self) -> None:
        """asyncpg's InterfaceWarning, once per kind, for callbacks a borrower leaves on a
        connection it gives back to a pool: the pool's reset forgets them, so they would
        go quiet without a word (a missing remove_listener() is the usual bug)."""
        counts = (
            (sum(map(len, self.channels.values())), "notification"),
            (len(self.log_listeners), "log"),
        )
        for count, kind in counts:
            if count:
                plural = "s" if count > 1 else ""
                warnings.warn(
                    InterfaceWarning(
                        f"{self._owner!r} is being released to the pool but has {count} "
                        f"active {kind} listener{plural}"
                    ),
                    stacklevel=4,  # the caller of Pool.release() (or of the async with)
                )

    def clear(self) -> None:
        """Forget every callback (the pool's reset: they belonged to the borrower)."""
        self.channels.clear()
        self.log_listeners.clear()
        self._changed()
