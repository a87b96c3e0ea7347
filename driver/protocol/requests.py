"""The frontend side of PGProtocol: one ``send_*()`` per operation, queueing its messages.

Each operation queued here is one entry in the FIFO of pending operations, ended by its own
ReadyForQuery ("Message Flow"); ``PGProtocol`` (core.py) reads the replies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..errors import InterfaceError, ProtocolError
from . import messages as m
from .batch import batch_messages
from .state import State

if TYPE_CHECKING:
    from collections import deque

__all__ = ["Requests"]


class Requests:
    """What a caller may send, and when; mixed into ``PGProtocol``, which owns the state."""

    if TYPE_CHECKING:
        state: State
        _out: list[bytes]
        _pending: deque[str]
        _error: m.ErrorResponse | None
        _failure: Exception | None

        @property
        def startup_queued(self) -> bool: ...

    def _check_can_send(self) -> None:
        if self._failure is not None:
            raise ProtocolError(f"connection unusable after protocol failure: {self._failure}")
        if self.state is State.CLOSED:
            raise InterfaceError("connection is closed")
        if self.state in (State.STARTUP, State.AUTH):
            if not self.startup_queued:
                raise InterfaceError("connection is still starting up")
        elif self.state in (State.COPY_IN, State.COPY_OUT):
            raise InterfaceError("a COPY is in progress on this connection")

    def _queue(self, kind: str, parts: Iterable[bytes]) -> None:
        self._check_can_send()
        self._out.extend(parts)
        self._pending.append(kind)
        if self.state is State.READY:
            self.state = State.BUSY  # during start-up, its ReadyForQuery moves us on

    def send_query(self, sql: str) -> None:
        """Simple Query: any number of statements, one ReadyForQuery at the end."""
        self._queue("query", (m.query(sql),))

    def send_prepare(self, name: str, sql: str, param_oids: Sequence[int] = ()) -> None:
        """Parse + Describe(statement) + Sync: yields ParameterDescription and RowDescription."""
        self._queue("prepare", (m.parse(name, sql, param_oids), m.describe(b"S", name), m.SYNC))

    def send_prepare_execute(
        self,
        name: str,
        sql: str,
        param_oids: Sequence[int],
        values: Sequence[bytes | None],
        *,
        max_rows: int = 0,
    ) -> None:
        """Parse + Describe(statement) + Bind + Execute + Sync: a first execution in one trip.

        Results are in text format, so the row description is not needed before Bind.
        """
        parts = (
            m.parse(name, sql, param_oids),
            m.describe(b"S", name),
            m.bind("", name, values),
            m.execute("", max_rows),
            m.SYNC,
        )
        self._queue("execute", parts)

    def send_execute(
        self, statement: str, values: Sequence[bytes | None], *, max_rows: int = 0
    ) -> None:
        """Bind + Execute + Sync on a prepared statement ("Extended Query")."""
        if self.state is State.READY:  # the hot path (READY: nothing for _check_can_send)
            self._out.append(m.bind_execute_sync(statement, values, max_rows))
            self._pending.append("execute")
            self.state = State.BUSY
            return
        self._queue("execute", (m.bind_execute_sync(statement, values, max_rows),))

    def send_execute_unnamed(self, sql: str, *, max_rows: int = 0) -> None:
        """Parse + Bind + Describe(portal) + Execute + Sync for a query without parameters."""
        parts = (
            m.parse("", sql),
            m.bind("", "", ()),
            m.describe(b"P", ""),
            m.execute("", max_rows),
            m.SYNC,
        )
        self._queue("execute", parts)

    def send_execute_many(
        self,
        statement: str,
        rows: Iterable[Sequence[bytes | None]],
        *,
        parse: tuple[str, Sequence[int]] | None = None,
    ) -> None:
        """One Bind + Execute per row, then a single Sync: the whole batch is one round trip.

        With ``parse=(sql, param_oids)`` the statement is parsed and described first.
        """
        parts: list[bytes] = []
        if parse is not None:
            parts.append(m.parse(statement, parse[0], parse[1]))
            parts.append(m.describe(b"S", statement))
        execute = m.execute("", 0)
        for values in rows:
            parts.append(m.bind("", statement, values))
            parts.append(execute)
        parts.append(m.SYNC)
        self._queue("execute_many", parts)

    def send_batch(
        self,
        statements: Sequence[tuple[str, Sequence[int], Sequence[bytes | None]]],
        *,
        before: str | None = None,
        after: str | None = None,
        sync_each: bool = False,
        then: str | None = None,
    ) -> int:
        """Several statements in one flight; see ``driver.protocol.batch.batch_messages``.

        Returns:
            How many ReadyForQuery messages the batch produces (one pending operation each).
        """
        parts, syncs = batch_messages(
            statements, before=before, after=after, sync_each=sync_each, then=then
        )
        self._queue("batch", parts)
        self._pending.extend(["batch"] * (syncs - 1))
        return syncs

    def send_close_statement(self, name: str) -> None:
        """Close a named statement; no Sync, so it travels with the next operation."""
        self._check_can_send()
        self._out.append(m.close(b"S", name))

    def send_copy_data(self, data: bytes) -> None:
        if self.state is State.COPY_IN:
            self._out.append(m.copy_data(data))
        elif not self._copy_aborted():
            raise InterfaceError("not in COPY IN mode")

    def send_copy_done(self) -> None:
        if self.state is State.COPY_IN:
            self._out.append(m.COPY_DONE)
            self.state = State.BUSY
        elif not self._copy_aborted():
            raise InterfaceError("not in COPY IN mode")

    def send_copy_fail(self, reason: str) -> None:
        if self.state is State.COPY_IN:
            self._out.append(m.copy_fail(reason))
            self.state = State.BUSY
        elif not self._copy_aborted():
            raise InterfaceError("not in COPY IN mode")

    def _copy_aborted(self) -> bool:
        # After an error during COPY IN the server drops CopyData/CopyDone ("COPY Operations").
        return self.state is State.BUSY and bool(self._pending) and self._error is not None

    def send_terminate(self) -> None:
        if self.state not in (State.CLOSED, State.FAILED):
            self._out.append(m.TERMINATE)
        self.state = State.CLOSED
