"""Listeners: a connection's notice and LISTEN/NOTIFY callbacks, delivered by its Session."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from .errors import PostgresError
from .protocol import messages as m
from .query import simple
from .session import Session, log_notice

__all__ = ["Listener", "Listeners", "LogListener"]

log = logging.getLogger("driver.connection")
# The first argument is the Connection the callback was registered on.
LogListener = Callable[[Any, PostgresError], Any]
Listener = Callable[[Any, int, str, str], Any]


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
        self._owner = owner  # passed to every callback: the Connection
        self.log_listeners: list[LogListener] = []
        self.channels: dict[str, list[Listener]] = {}
        # tasks of coroutine callbacks (asyncpg schedules them as tasks): kept referenced
        # until done, so none is collected mid-flight
        self._tasks: set[asyncio.Future[Any]] = set()
        session.on_notice = self._on_notice
        session.on_notification = self._on_notification

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call a user callback; a coroutine it returns runs as a task. Its failure is
        logged and never reaches the connection (as with asyncpg)."""
        try:
            result = callback(self._owner, *args)
        except Exception:
            log.exception("listener %r failed", callback)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("listener task failed", exc_info=exc)

    def _on_notice(self, msg: m.NoticeResponse) -> None:
        if not self.log_listeners:
            log_notice(msg)
            return
        notice = PostgresError.from_fields(msg.fields)
        for callback in list(self.log_listeners):
            self._call(callback, notice)

    def _on_notification(self, msg: m.NotificationResponse) -> None:
        for callback in list(self.channels.get(msg.channel, ())):
            self._call(callback, msg.pid, msg.channel, msg.payload)

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

    def clear(self) -> None:
        """Forget every callback (the pool's reset: they belonged to the borrower)."""
        self.channels.clear()
        self.log_listeners.clear()
        self._changed()
