"""Listeners: a connection's notice and LISTEN/NOTIFY callbacks, delivered by its Session."""

from __future__ import annotations

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
        session.on_notice = self._on_notice
        session.on_notification = self._on_notification

    def _on_notice(self, msg: m.NoticeResponse) -> None:
        if not self.log_listeners:
            log_notice(msg)
            return
        notice = PostgresError.from_fields(msg.fields)
        for callback in list(self.log_listeners):
            try:
                callback(self._owner, notice)
            except Exception:
                log.exception("log listener %r failed", callback)

    def _on_notification(self, msg: m.NotificationResponse) -> None:
        for callback in list(self.channels.get(msg.channel, ())):
            try:
                callback(self._owner, msg.pid, msg.channel, msg.payload)
            except Exception:
                log.exception("listener %r for channel %r failed", callback, msg.channel)

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
