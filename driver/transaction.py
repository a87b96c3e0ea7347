"""Transaction: BEGIN/COMMIT/ROLLBACK as an async context manager, savepoints when nested."""

from __future__ import annotations

import logging
from types import TracebackType

from .errors import Error, InterfaceError
from .query import catalog_query, simple
from .session import Session

__all__ = ["ISOLATION_LEVELS", "Transaction", "begin_sql"]

log = logging.getLogger(__name__)

ISOLATION_LEVELS = {
    "read_committed": "READ COMMITTED",
    "read_uncommitted": "READ UNCOMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}


def begin_sql(isolation: str | None, readonly: bool, deferrable: bool) -> str:
    """The BEGIN that opens a transaction block with these options."""
    sql = "BEGIN"
    if isolation:
        sql += f" ISOLATION LEVEL {ISOLATION_LEVELS[isolation]}"
    if readonly:
        sql += " READ ONLY"
    if deferrable:
        sql += " DEFERRABLE"
    return sql


class Transaction:
    """One transaction block, or a savepoint if the connection is already inside one.

    ``async with conn.transaction():`` commits on success and rolls back on any exception
    (which then propagates). ``start()``, ``commit()`` and ``rollback()`` do it by hand.
    """

    def __init__(
        self, session: Session, isolation: str | None, readonly: bool, deferrable: bool
    ) -> None:
        if isolation is not None and isolation not in ISOLATION_LEVELS:
            raise InterfaceError(
                f"isolation must be one of {sorted(ISOLATION_LEVELS)}, got {isolation!r}"
            )
        self._session = session
        self._isolation = isolation
        self._readonly = readonly
        self._deferrable = deferrable
        self._savepoint: str | None = None
        self._state = "new"
        self._returned = session.returned

    async def start(self) -> None:
        self._session.check_same_lending(self._returned, "Transaction.start")
        if self._state != "new":
            raise InterfaceError(f"cannot start a transaction that is {self._state}")
        session = self._session
        if session.proto.transaction_status != "I":
            if session.top_transaction is None:
                # asyncpg's rule: a savepoint nests only in a block this API opened
                raise InterfaceError(
                    "cannot use Connection.transaction() in a manually started transaction"
                )
            if self._readonly or self._deferrable:
                raise InterfaceError(
                    "a nested transaction (savepoint) cannot set readonly or deferrable; "
                    "set them on the outermost transaction"
                )
            if self._isolation:
                await self._check_nested_isolation()
            session.sp_counter += 1
            self._savepoint = f"_drv_sp_{session.sp_counter}"
            await self._execute(f"SAVEPOINT {self._savepoint}")
        else:
            await self._execute(begin_sql(self._isolation, self._readonly, self._deferrable))
            session.top_transaction = self  # a stale one (block ended by hand) is replaced
        self._state = "started"

    async def _check_nested_isolation(self) -> None:
        """asyncpg's rule: a savepoint may restate the isolation level of the transaction it
        is in (the server's, which a session default may have set), not ask for another.

        Raises:
            InterfaceError: another level than the running transaction's.
        """
        rows = await catalog_query(self._session, "SHOW transaction_isolation")
        outer = str(rows[0][0]).replace(" ", "_")
        if outer != self._isolation:
            raise InterfaceError(
                "nested transaction has a different isolation level: "
                f"current {self._isolation!r} != outer {outer!r}"
            )

    async def _execute(self, sql: str) -> None:
        await self._session.run(simple, self._session, sql)

    async def commit(self) -> None:
        self._check_started("commit")
        self._end()
        if self._savepoint:
            await self._execute(f"RELEASE SAVEPOINT {self._savepoint}")
        else:
            await self._execute("COMMIT")
        self._state = "committed"

    async def rollback(self) -> None:
        self._check_started("rollback")
        self._end()
        if self._savepoint:
            sp = self._savepoint
            await self._execute(f"ROLLBACK TO SAVEPOINT {sp}; RELEASE SAVEPOINT {sp}")
        else:
            await self._execute("ROLLBACK")
        self._state = "rolled back"

    def _end(self) -> None:
        if self._session.top_transaction is self:
            self._session.top_transaction = None

    def _check_started(self, operation: str) -> None:
        self._session.check_same_lending(self._returned, f"Transaction.{operation}")
        # asyncpg's wording, which callers (SQLAlchemy's tests among them) match on
        if self._state == "new":
            raise InterfaceError(f"cannot {operation}; the transaction is not yet started")
        if self._state != "started":
            raise InterfaceError(f"cannot {operation}; the transaction is already {self._state}")

    async def __aenter__(self) -> Transaction:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state != "started":
            return  # committed or rolled back by hand inside the block
        if exc_type is None:
            await self.commit()
        elif not self._session.is_closed():
            try:
                await self.rollback()
            except Error as rollback_error:
                # The block's own exception is the one to see; this one is only logged.
                log.warning("rollback after %r failed: %r", exc, rollback_error)

    def __repr__(self) -> str:
        kind = f"savepoint {self._savepoint}" if self._savepoint else "transaction"
        return f"<Transaction {kind} {self._state}>"
