"""PreparedStatement: a statement prepared by ``Connection.prepare()``, with asyncpg's methods.

``get_parameters()`` and ``get_attributes()`` are synchronous in asyncpg, so the names of the
types they describe are known when ``prepare()`` returns: built-in types from a table here,
any other type with one catalog query for the OIDs the connection has not met before
(``describe_types``), remembered per connection.
"""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from . import query
from .argcheck import executemany_rows
from .codecs import oids as _oids
from .cursor import CursorFactory, Source
from .errors import InterfaceError
from .record import Record
from .session import Session
from .statement import Statement
from .transaction import Transaction
from .types import Attribute, Type

__all__ = ["Attribute", "PreparedStatement", "Statement", "Type", "describe_types"]


def _builtin_types() -> dict[int, Type]:
    """Types whose OIDs are fixed (``codecs/oids.py``): named without asking the server."""
    names = {
        value: name.lower()
        for name, value in vars(_oids).items()
        if name.isupper() and isinstance(value, int)
    }
    types = {oid: Type(oid, name, "scalar", "pg_catalog") for oid, name in names.items()}
    for elem, array in _oids.ARRAY_OF.items():
        if elem in names:
            types[array] = Type(array, names[elem] + "[]", "array", "pg_catalog")
    return types


_BUILTIN = _builtin_types()
_KINDS = {"c": "composite", "r": "range", "m": "multirange"}
# A domain is described as its base type (asyncpg decodes it with the base type's codec).
_DESCRIBE = """
WITH RECURSIVE d(oid, base) AS (
    SELECT t.oid, t.oid FROM pg_catalog.pg_type t WHERE t.oid = ANY($1::text::oid[])
    UNION ALL
    SELECT d.oid, t.typbasetype FROM d JOIN pg_catalog.pg_type t ON t.oid = d.base
    WHERE t.typtype = 'd'
)
SELECT d.oid::int8, t.typname::text, n.nspname::text, t.typtype::text, e.typname::text
FROM d
JOIN pg_catalog.pg_type t ON t.oid = d.base AND t.typtype <> 'd'
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typlen = -1 AND t.typelem <> 0
"""


async def describe_types(
    session: Session, known: dict[int, Type], type_oids: Iterable[int]
) -> None:
    """Add to ``known`` a Type for each OID it lacks: one catalog query, or none at all when
    every OID is built in or was described before."""
    missing = sorted({o for o in type_oids if o not in known and o not in _BUILTIN})
    if not missing:
        return
    literal = "{" + ",".join(map(str, missing)) + "}"
    rows, _ = await query.query(session, _DESCRIBE, (literal,), 0, None)
    for oid, name, schema, typtype, elem in rows:
        if elem is not None:
            known[oid] = Type(oid, elem + "[]", "array", schema)
        else:
            known[oid] = Type(oid, name, _KINDS.get(typtype, "scalar"), schema)


def type_of(known: dict[int, Type], oid: int) -> Type:
    found = _BUILTIN.get(oid) or known.get(oid)
    if found is None:  # a type dropped between prepare() and now, say
        return Type(oid, "", "scalar", "")
    return found


async def _fetch_many(
    session: Session, stmt: Statement, rows: list[list[bytes | None]]
) -> tuple[list[tuple[bytes | None, ...]], str]:
    """One Bind/Execute per argument row before one Sync; every row of every result."""
    parse = (stmt.sql, stmt.param_oids) if not stmt.name else None
    session.proto.send_execute_many(stmt.name, rows, parse=parse)
    return await query.collect(session, stmt)


class PreparedStatement:
    """A statement prepared by ``Connection.prepare()``, with asyncpg's methods."""

    def __init__(
        self,
        session: Session,
        stmt: Statement,
        param_types: tuple[int, ...],
        record_class: type[Record] = Record,
        types: dict[int, Type] | None = None,
    ) -> None:
        self._session = session
        self._stmt = stmt
        self._param_types = param_types
        self._record_class = record_class
        self._types = {} if types is None else types
        self._last_status: str | None = None
        self._returned = session.returned

    def _check(self, method: str) -> None:
        self._session.check_same_lending(self._returned, f"PreparedStatement.{method}")
        if self._stmt.closed:
            raise InterfaceError(
                f"cannot call PreparedStmt.{method}(): the prepared statement is closed"
            )
        if self._session.is_closed():
            raise InterfaceError("connection is closed")

    def get_name(self) -> str:
        """The statement's name on the server ("" for the unnamed statement)."""
        return self._stmt.name

    def get_query(self) -> str:
        self._session.check_same_lending(self._returned, "PreparedStatement.get_query")
        return self._stmt.sql

    def get_statusmsg(self) -> str | None:
        """The command tag of the last execution (e.g. "CREATE TABLE"), None before one."""
        self._session.check_same_lending(self._returned, "PreparedStatement.get_statusmsg")
        return self._last_status

    def get_parameters(self) -> tuple[Type, ...]:
        """The parameters' types, as the server resolved them."""
        self._session.check_same_lending(self._returned, "PreparedStatement.get_parameters")
        return tuple(type_of(self._types, oid) for oid in self._param_types)

    def get_attributes(self) -> tuple[Attribute, ...]:
        """The result columns (name and Type); empty for statements that return no rows."""
        self._session.check_same_lending(self._returned, "PreparedStatement.get_attributes")
        return tuple(
            Attribute(f.name, type_of(self._types, f.type_oid)) for f in self._stmt.fields or ()
        )

    def cursor(
        self, *args: Any, prefetch: int | None = None, timeout: float | None = None
    ) -> CursorFactory:
        """A cursor over this statement's rows (see ``Connection.cursor``)."""
        self._check("cursor")
        source = Source(self._stmt.sql, args, self._stmt, self._param_types)
        return CursorFactory(self._session, source, prefetch, timeout, self._record_class)

    async def explain(self, *args: Any, analyze: bool = False) -> Any:
        """The plan, as EXPLAIN (FORMAT JSON, VERBOSE) returns it, decoded; with
        ``analyze=True`` the statement really runs, in a transaction rolled back after."""
        self._check("explain")
        sql = "EXPLAIN (FORMAT JSON, VERBOSE" + (", ANALYZE) " if analyze else ") ")
        sql += self._stmt.sql
        session = self._session
        if not analyze:
            rows, _ = await query.query(session, sql, args, 1, None)
        else:
            tr = Transaction(session, None, False, False)
            await tr.start()
            try:
                rows, _ = await query.query(session, sql, args, 1, None)
            finally:
                await tr.rollback()
        data = rows[0][0]
        return json.loads(data) if isinstance(data, str | bytes) else data

    async def _run(
        self, args: Sequence[Any], max_rows: int, timeout: float | None, method: str
    ) -> list[Record]:
        self._check(method)
        rows, tag = await query.execute_prepared(
            self._session, self._stmt, self._param_types, args, max_rows, timeout,
            self._record_class,
        )  # fmt: skip
        self._last_status = tag or None  # None after PortalSuspended, as asyncpg
        return rows

    async def fetch(self, *args: Any, timeout: float | None = None) -> list[Record]:
        return await self._run(args, 0, timeout, "fetch")

    async def fetchrow(self, *args: Any, timeout: float | None = None) -> Record | None:
        rows = await self._run(args, 1, timeout, "fetchrow")
        return rows[0] if rows else None

    async def fetchval(self, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        rows = await self._run(args, 1, timeout, "fetchval")
        return rows[0][column] if rows else None

    async def execute(self, *args: Any, timeout: float | None = None) -> str:
        """Run it and return the command tag."""
        await self._run(args, 0, timeout, "execute")
        return self._last_status or ""

    async def fetchmany(
        self, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> list[Record]:
        """Run it once per argument sequence, in one round trip; every row of every run."""
        self._check("fetchmany")
        session, stmt = self._session, self._stmt
        encoded = [
            query.encode(session.codecs, a, self._param_types)[1] for a in executemany_rows(args)
        ]
        if not encoded:
            return []
        raw, _ = await session.run(_fetch_many, session, stmt, encoded, timeout=timeout)
        return query.decode(stmt, raw, self._record_class)

    async def executemany(
        self, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        self._check("executemany")
        await query.execute_many(self._session, self._stmt, self._param_types, args, timeout)

    async def close(self) -> None:
        """Deallocate it on the server (queued with the connection's next operation)."""
        if self._stmt.closed:
            return
        self._stmt.closed = True
        query.forget_statement(self._session, self._stmt)

    def __repr__(self) -> str:
        return f"<PreparedStatement {self._stmt.name!r} {self._stmt.sql!r:.60}>"
