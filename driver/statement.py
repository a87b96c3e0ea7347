"""What the server told us about statements, and the per-connection LRU of named ones."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .protocol.messages import Field
from .record import Record, record_class

__all__ = ["Statement", "StatementCache"]


class Statement:
    """What the server told us about one named statement.

    A plain slotted class, not a dataclass, to keep ``import driver`` cheap
    (``bench/connect_bench.py`` and ``tests/driver/test_import_cost.py``).
    """

    __slots__ = (
        "closed", "decoders", "described", "fields", "name", "param_count", "param_oids",
        "record_cls", "sql",
    )  # fmt: skip

    def __init__(self, name: str, sql: str, param_oids: tuple[int, ...]) -> None:
        self.name = name
        self.sql = sql
        self.param_oids = param_oids
        self.fields: tuple[Field, ...] | None = None
        self.decoders: list[Callable[[bytes], Any]] = []
        self.record_cls: type[Record] | None = None
        self.closed = False  # PreparedStatement.close() was called: its cursors refuse
        self.param_count: int | None = None  # as the server's ParameterDescription says
        self.described: tuple[int, ...] | None = None  # its parameter types, likewise

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
