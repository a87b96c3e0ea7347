"""What the server told us about statements, and the per-connection LRU of named ones."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from time import monotonic
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
        "closed", "decoders", "described", "expires", "fields", "name", "param_count",
        "param_oids", "record_cls", "sql",
    )  # fmt: skip

    def __init__(self, name: str, sql: str, param_oids: tuple[int, ...]) -> None:
        self.name = name
        self.sql = sql
        self.param_oids = param_oids
        self.fields: tuple[Field, ...] | None = None
        self.decoders: tuple[Callable[[bytes], Any], ...] = ()
        self.record_cls: type[Record] | None = None
        self.closed = False  # PreparedStatement.close() was called: its cursors refuse
        self.param_count: int | None = None  # as the server's ParameterDescription says
        self.described: tuple[int, ...] | None = None  # its parameter types, likewise
        self.expires = 0.0  # monotonic time after which the cache lets it go (0: never)

    def __repr__(self) -> str:
        return f"Statement(name={self.name!r}, sql={self.sql!r}, param_oids={self.param_oids!r})"

    def set_fields(self, fields: tuple[Field, ...], decoder: Callable[[int], Any]) -> None:
        """Remember the row shape and resolve one decoder per column, once."""
        self.fields = fields
        self.decoders = tuple(decoder(f.type_oid) for f in fields)
        self.record_cls = record_class(tuple(f.name for f in fields))


Key = tuple[str, tuple[int, ...]]


class StatementCache:
    """A bounded LRU of named statements keyed by (sql, declared parameter OIDs).

    asyncpg's knobs: a query longer than ``max_query_size`` characters is not cached (it
    runs as the unnamed statement: a huge generated query would pin server memory for the
    connection's life), and a cached statement is let go ``lifetime`` seconds after it was
    cached, so that plans are made again now and then (0 turns either off). Evicted and
    expired statements are handed back so the caller can Close them on the server.
    """

    def __init__(self, size: int, lifetime: float = 300.0, max_query_size: int = 15 * 1024):
        self.size = size
        self.lifetime = lifetime
        self.max_query_size = max_query_size
        self._items: OrderedDict[Key, Statement] = OrderedDict()
        self._counter = 0
        self.expired: list[Statement] = []  # let go by get(): to Close

    def get(self, key: Key) -> Statement | None:
        stmt = self._items.get(key)
        if stmt is not None:
            if stmt.expires and monotonic() > stmt.expires:
                del self._items[key]
                self.expired.append(stmt)
                return None
            self._items.move_to_end(key)
        return stmt

    def new_name(self) -> str:
        """A fresh statement name, or "" (the unnamed statement) when caching is off: with
        ``statement_cache_size=0`` nothing may outlive a transaction (PgBouncer)."""
        if not self.size:
            return ""
        self._counter += 1
        return f"_drv_s{self._counter}"

    def name_for(self, sql: str) -> str:
        """new_name(), or "" for a query too long to cache."""
        if self.max_query_size and len(sql) > self.max_query_size:
            return ""
        return self.new_name()

    def put(self, key: Key, stmt: Statement) -> list[Statement]:
        if self.lifetime:
            stmt.expires = monotonic() + self.lifetime
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
