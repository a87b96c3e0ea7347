"""Cursors: a query's rows read a batch at a time through a named portal, against a Session.

A portal is a bound statement the server keeps open; Execute with a row limit returns that
many rows and then PortalSuspended instead of CommandComplete ("Extended Query" in the
PostgreSQL docs). Each step is its own Bind/Execute + Sync, so the portal must outlive a
Sync: it does only inside a transaction block (outside one, Sync ends the implicit
transaction and destroys the portal). Hence asyncpg's rule, kept here: a cursor is refused
outside a transaction with ``NoActiveSQLTransactionError``.

``conn.cursor(...)`` returns a factory, as asyncpg's does: ``async for`` over it reads
``prefetch`` rows per round trip and closes the portal once the rows run out;
``await``-ing it binds the portal and returns a ``Cursor`` with ``fetch(n)``,
``fetchrow()`` and ``forward(n)``.
"""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

import collections
import itertools
from collections.abc import Generator, Sequence
from typing import Any

from .errors import InterfaceError, NoActiveSQLTransactionError, PostgresError
from .query import cached, collect, decode, encode, remember, simple
from .record import Record
from .session import Session
from .statement import Statement

__all__ = ["Cursor", "CursorFactory", "CursorIterator", "Source"]

_portal_ids = itertools.count(1)
Rows = list[tuple[bytes | None, ...]]


async def _bind(
    session: Session,
    stmt: Statement,
    portal: str,
    values: list[bytes | None],
    max_rows: int | None,
    parse: bool,
) -> tuple[Rows, str]:
    session.proto.send_portal(
        portal, stmt.name, values, max_rows=max_rows,
        parse=(stmt.sql, stmt.param_oids) if parse else None,
    )  # fmt: skip
    return await collect(session, stmt)


async def _execute(session: Session, stmt: Statement, portal: str, n: int) -> tuple[Rows, str]:
    session.proto.send_portal_execute(portal, n)
    return await collect(session, stmt)


async def _close(session: Session, stmt: Statement, portal: str) -> None:
    session.proto.send_close_portal(portal)
    await collect(session, stmt)


class Source:
    """What a cursor reads: a query (through the statement cache) or a prepared statement."""

    __slots__ = ("args", "query", "stmt", "types")

    def __init__(
        self,
        query: str,
        args: Sequence[Any],
        stmt: Statement | None = None,
        types: tuple[int, ...] | None = None,
    ) -> None:
        self.query = query
        self.args = args
        self.stmt = stmt
        self.types = types


class CursorFactory:
    """What ``Connection.cursor()`` and ``PreparedStatement.cursor()`` return: iterate it
    (``async for``) or await it (a ``Cursor``)."""

    __slots__ = ("_prefetch", "_record_class", "_returned", "_session", "_source", "_timeout")

    def __init__(
        self,
        session: Session,
        source: Source,
        prefetch: int | None,
        timeout: float | None,
        record_class: type[Record],
    ) -> None:
        self._session = session
        self._source = source
        self._prefetch = prefetch
        self._timeout = timeout
        self._record_class = record_class
        self._returned = session.returned

    def __aiter__(self) -> CursorIterator:
        self._session.check_same_lending(self._returned, "CursorFactory.__aiter__")
        prefetch = 50 if self._prefetch is None else self._prefetch
        return CursorIterator(
            self._session, self._source, self._record_class, prefetch, self._timeout
        )

    def __await__(self) -> Generator[Any, None, Cursor]:
        self._session.check_same_lending(self._returned, "CursorFactory.__await__")
        if self._prefetch is not None:
            raise InterfaceError("prefetch argument can only be specified for iterable cursor")
        cursor = Cursor(self._session, self._source, self._record_class)
        return cursor._init(self._timeout).__await__()


class BaseCursor:
    """One portal: opened by the first step, read by Execute, closed by Close or by the end
    of its transaction."""

    __slots__ = (
        "_exhausted", "_portal", "_record_class", "_returned", "_session", "_source", "_stmt"
    )  # fmt: skip

    def __init__(self, session: Session, source: Source, record_class: type[Record]) -> None:
        self._session = session
        self._source = source
        self._stmt = source.stmt
        self._record_class = record_class
        self._portal: str | None = None
        self._exhausted = False
        self._returned = session.returned

    def _check_ready(self, method: str = "fetch") -> None:
        self._session.check_same_lending(self._returned, f"Cursor.{method}")
        stmt = self._source.stmt
        if stmt is not None and stmt.closed:
            raise InterfaceError("cursor: the prepared statement is closed")
        if self._session.is_closed():
            raise InterfaceError("connection is closed")
        if self._session.proto.transaction_status == "I":
            raise NoActiveSQLTransactionError("cursor cannot be created outside of a transaction")

    async def _open(self, max_rows: int | None, timeout: float | None) -> list[Record]:
        """Bind the portal (parsing the statement in the same flight if it is new or the
        unnamed one), and with ``max_rows`` fetch the first rows."""
        self._check_ready()
        if self._portal is not None:
            raise InterfaceError("cursor already has an open portal")
        session, source = self._session, self._source
        key = None
        if source.stmt is None:
            oids, values = encode(session.codecs, source.args)
            key = (source.query, oids)
            stmt, fresh = cached(session, key)
        else:
            stmt = source.stmt
            _, values = encode(session.codecs, source.args, source.types)
            fresh = not stmt.name  # the unnamed statement may have been replaced since
        portal = f"__pgws_portal_{next(_portal_ids)}__"
        try:
            raw, tag = await session.run(_bind, session, stmt, portal, values, max_rows, fresh,
                                         timeout=timeout)  # fmt: skip
        except PostgresError:
            if fresh and key is not None:
                remember(session, key, stmt)
            raise
        if fresh and key is not None:
            remember(session, key, stmt)
        self._stmt, self._portal = stmt, portal
        if max_rows is not None:
            self._exhausted = tag != ""  # CommandComplete, not PortalSuspended
        return decode(stmt, raw, self._record_class)

    async def _exec(self, n: int, timeout: float | None) -> list[Record]:
        self._check_ready()
        stmt, portal = self._stmt, self._portal
        if portal is None or stmt is None:
            raise InterfaceError("cursor does not have an open portal")
        session = self._session
        raw, tag = await session.run(_execute, session, stmt, portal, n, timeout=timeout)
        self._exhausted = tag != ""
        return decode(stmt, raw, self._record_class)

    async def _close_portal(self, timeout: float | None) -> None:
        self._check_ready()
        stmt, portal = self._stmt, self._portal
        if portal is None or stmt is None:
            raise InterfaceError("cursor does not have an open portal")
        session = self._session
        await session.run(_close, session, stmt, portal, timeout=timeout)
        self._portal = None

    def __repr__(self) -> str:
        exhausted = "exhausted " if self._exhausted else ""
        package = type(self).__module__.partition(".")[0]
        return (
            f'<{package}.{type(self).__name__} "{self._source.query!s:.30}" '
            f"{exhausted}{id(self):#x}>"
        )


class CursorIterator(BaseCursor):
    """``async for row in conn.cursor(query)``: ``prefetch`` rows per round trip."""

    __slots__ = ("_buffer", "_prefetch", "_timeout")

    def __init__(
        self,
        session: Session,
        source: Source,
        record_class: type[Record],
        prefetch: int,
        timeout: float | None,
    ) -> None:
        super().__init__(session, source, record_class)
        if prefetch <= 0:
            raise InterfaceError("prefetch argument must be greater than zero")
        self._buffer: collections.deque[Record] = collections.deque()
        self._prefetch = prefetch
        self._timeout = timeout

    def __aiter__(self) -> CursorIterator:
        return self

    async def __anext__(self) -> Record:
        self._session.check_same_lending(self._returned, "CursorIterator.__anext__")
        if self._portal is None and not self._exhausted:
            self._buffer.extend(await self._open(self._prefetch, self._timeout))
        if not self._buffer and not self._exhausted:
            self._buffer.extend(await self._exec(self._prefetch, self._timeout))
        if self._portal is not None and self._exhausted:
            await self._close_portal(self._timeout)  # unlocks what the query touched
        if self._buffer:
            return self._buffer.popleft()
        raise StopAsyncIteration


class Cursor(BaseCursor):
    """An open portal into a query's rows (``cur = await conn.cursor(query)``)."""

    __slots__ = ()

    async def _init(self, timeout: float | None) -> Cursor:
        await self._open(None, timeout)
        return self

    async def fetch(self, n: int, *, timeout: float | None = None) -> list[Record]:
        """The next ``n`` rows (fewer at the end, ``[]`` once exhausted)."""
        self._check_ready()
        if n <= 0:
            raise InterfaceError("n must be greater than zero")
        if self._exhausted:
            return []
        rows = await self._exec(n, timeout)
        if len(rows) < n:
            self._exhausted = True
        return rows

    async def fetchrow(self, *, timeout: float | None = None) -> Record | None:
        """The next row, or None once exhausted."""
        self._check_ready("fetchrow")
        if self._exhausted:
            return None
        rows = await self._exec(1, timeout)
        if not rows:
            self._exhausted = True
            return None
        return rows[0]

    async def forward(self, n: int, *, timeout: float | None = None) -> int:
        """Skip ``n`` rows (MOVE FORWARD); returns how many were skipped (fewer at the end)."""
        self._check_ready("forward")
        if n <= 0:
            raise InterfaceError("n must be greater than zero")
        session = self._session
        tag = await session.run(simple, session, f"MOVE FORWARD {int(n):d} {self._portal}",
                                timeout=timeout)  # fmt: skip
        moved = int(tag.split()[1])
        if moved < n:
            self._exhausted = True
        return moved
