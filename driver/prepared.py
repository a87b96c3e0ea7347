"""PreparedStatement: a statement prepared by ``Connection.prepare()``, with asyncpg's methods."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from . import query
from .protocol.messages import Field
from .record import Record
from .session import Session
from .statement import Statement

__all__ = ["PreparedStatement", "Statement"]


class PreparedStatement:
    """A statement prepared by ``Connection.prepare()``, with asyncpg's fetch methods."""

    def __init__(self, session: Session, stmt: Statement, param_types: tuple[int, ...]) -> None:
        self._session = session
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
        rows, _ = await query.execute_prepared(
            self._session, self._stmt, self._param_types, args, 0, timeout
        )
        return rows

    async def fetchrow(self, *args: Any, timeout: float | None = None) -> Record | None:
        rows, _ = await query.execute_prepared(
            self._session, self._stmt, self._param_types, args, 1, timeout
        )
        return rows[0] if rows else None

    async def fetchval(self, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        row = await self.fetchrow(*args, timeout=timeout)
        return None if row is None else row[column]

    async def execute(self, *args: Any, timeout: float | None = None) -> str:
        """Run it and return the command tag."""
        _, tag = await query.execute_prepared(
            self._session, self._stmt, self._param_types, args, 0, timeout
        )
        return tag

    async def executemany(
        self, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        await query.execute_many(self._session, self._stmt, self._param_types, args, timeout)

    async def close(self) -> None:
        """Deallocate it on the server (queued with the connection's next operation)."""
        query.forget_statement(self._session, self._stmt)
