"""Prepared statements: the per-connection LRU of named statements and PreparedStatement."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .protocol.messages import Field
from .record import Record, record_class

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["PreparedStatement", "Statement", "StatementCache"]


class Statement:
    """What the server told us about one named statement.

    A plain slotted class, not a dataclass: building a dataclass costs ~1 ms of import time.
    """

    __slots__ = ("decoders", "fields", "name", "param_oids", "record_cls", "sql")

    def __init__(self, name: str, sql: str, param_oids: tuple[int, ...]) -> None:
        self.name = name
        self.sql = sql
        self.param_oids = param_oids
        self.fields: tuple[Field, ...] | None = None
        self.decoders: list[Callable[[bytes], Any]] = []
        self.record_cls: type[Record] | None = None

    def __repr__(self) -> str:
        return f"Statement(name={self.name!r}, sql={self.sql!r}, param_oids={self.param_oids!r})"

    def set_fields(self, fields: tuple[Field, ...], decoder: Callable[[int], Any]) -> None:
        """Remember the row shape and resolve one decoder per column, once."""
        self.fields = fields
        self.decoders = [decoder(f.type_oid) for f in fields]
        self.record_cls = record_class(tuple(f.name for f in fields))


Key = tuple[str, tuple[int, ...]]


class StatementCache:
    """A bounded LRU of named statements keyed by (sql, declared parameter OIDs).

    Evicted statements are returned so the caller can Close them on the server.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Key, Statement] = OrderedDict()
        self._counter = 0

    def get(self, key: Key) -> Statement | None:
        stmt = self._items.get(key)
        if stmt is not None:
            self._items.move_to_end(key)
        return stmt

    def new_name(self) -> str:
        """A fresh statement name, or "" (the unnamed statement) when caching is off: with
        ``statement_cache_size=0`` nothing may outlive a transaction (PgBouncer)."""
        if not self.size:
            return ""
        self._counter += 1
        return f"_drv_s{self._counter}"

    def put(self, key: Key, stmt: Statement) -> list[Statement]:
        self._items[key] = stmt
        evicted = []
        while len(self._items) > self.size:
            evicted.append(self._items.popitem(last=False)[1])
        return evicted

    def discard(self, key: Key) -> Statement | None:
        return self._items.pop(key, None)

    def clear(self) -> list[Statement]:
        items = list(self._items.values())
        self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)


class PreparedStatement:
    """A statement prepared by ``Connection.prepare()``, with asyncpg's fetch methods."""

    def __init__(self, conn: Connection, stmt: Statement, param_types: tuple[int, ...]) -> None:
        self._conn = conn
        self._stmt = stmt
        self._param_types = param_types

    def get_query(self) -> str:
        return self._stmt.sql

    def get_parameters(self) -> tuple[int, ...]:
        """Parameter type OIDs, as the server resolved them."""
        return self._param_types

    def get_attributes(self) -> tuple[Field, ...]:
        """Result columns (name, type OID, ...); empty for statements that return no rows."""
        return self._stmt.fields or ()

    async def fetch(self, *args: Any, timeout: float | None = None) -> list[Record]:
        rows, _ = await self._conn._execute_prepared(
            self._stmt, self._param_types, args, 0, timeout
        )
        return rows

    async def fetchrow(self, *args: Any, timeout: float | None = None) -> Record | None:
        rows, _ = await self._conn._execute_prepared(
            self._stmt, self._param_types, args, 1, timeout
        )
        return rows[0] if rows else None

    async def fetchval(self, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        row = await self.fetchrow(*args, timeout=timeout)
        return None if row is None else row[column]

    async def execute(self, *args: Any, timeout: float | None = None) -> str:
        """Run it and return the command tag."""
        _, tag = await self._conn._execute_prepared(self._stmt, self._param_types, args, 0, timeout)
        return tag

    async def executemany(
        self, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        await self._conn._execute_many_prepared(self._stmt, self._param_types, args, timeout)

    async def close(self) -> None:
        """Deallocate it on the server (queued with the connection's next operation)."""
        self._conn._forget_statement(self._stmt)
