"""Connection.batch(): several parameterised statements in one round trip, optionally as one
transaction (what Neon's HTTP ``transaction()`` offers, here on an ordinary session)."""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InterfaceError, PostgresError
from .prepared import Statement
from .protocol import NEED_DATA
from .protocol import messages as m
from .protocol.messages import Field
from .record import Record
from .transaction import ISOLATION_LEVELS

if TYPE_CHECKING:
    from .codecs import TypeRegistry
    from .protocol import PGProtocol

__all__ = ["BatchMixin", "BatchResult"]

T = TypeVar("T")
BatchStatement = str | tuple[str, Sequence[Any]]
_BEFORE, _AFTER, _THEN = -1, -2, -3  # units that are not the caller's statements


class BatchResult(list[Record]):
    """One statement's rows, as ``fetch()`` returns them (empty for a command), with its
    command tag in ``status``, as ``execute()`` returns it (``"INSERT 0 1"``), and its column
    descriptions in ``fields`` (as ``PreparedStatement.get_attributes()``; the SQL-over-HTTP
    endpoint answers with their type OIDs)."""

    status: str = ""
    fields: tuple[Field, ...] = ()


class BatchMixin:
    """``Connection.batch()``: one flight out, one flight back, whatever the count."""

    if TYPE_CHECKING:
        _proto: PGProtocol
        _codecs: TypeRegistry
        _sp_counter: int

        def _encode(
            self, args: Sequence[Any], oids: Sequence[int] | None = None
        ) -> tuple[tuple[int, ...], list[bytes | None]]: ...

        def _decode(self, stmt: Statement, raw: list[tuple[bytes | None, ...]]) -> list[Record]: ...

        async def _fill(self) -> None: ...

        def _filter(self, event: m.BackendMessage) -> m.BackendMessage | None: ...

        async def _simple(self, sql: str) -> str: ...

        async def _run(
            self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None
        ) -> T: ...

    async def batch(
        self,
        statements: Iterable[BatchStatement],
        *,
        transaction: bool = True,
        isolation: str | None = None,
        readonly: bool = False,
        deferrable: bool = False,
        timeout: float | None = None,
    ) -> list[BatchResult]:
        """Run several statements in one round trip and return every result.

        ``await conn.batch([("insert into t values ($1)", [1]), "select count(*) from t"])``

        With ``transaction=True`` (the default) the statements run in one transaction (a
        savepoint if the connection is already in one), with ``isolation`` ("serializable",
        "repeatable_read", ...), ``readonly`` and ``deferrable`` as in ``transaction()``:
        if one fails, all of them are rolled back, still in one round trip (the COMMIT that
        follows becomes a ROLLBACK on the server). With ``transaction=False`` each statement
        commits on its own, as separate ``execute()`` calls would, and statements after a
        failed one still run.

        Args:
            statements: SQL strings, or ``(sql, args)`` pairs with ``$1..$n`` parameters.

        Returns:
            One ``BatchResult`` per statement: its rows, and its command tag in ``.status``.

        Raises:
            PostgresError: the first failing statement's error (its typed class), with a
                note naming the statement's position in the batch.
            InterfaceError: a bad argument (nothing is sent), or isolation/readonly/
                deferrable on a batch nested in a transaction.
        """
        if isolation is not None and isolation not in ISOLATION_LEVELS:
            raise InterfaceError(
                f"isolation must be one of {sorted(ISOLATION_LEVELS)}, got {isolation!r}"
            )
        prepared: list[tuple[Statement, list[bytes | None]]] = []
        for i, item in enumerate(statements):
            sql, args = (item, ()) if isinstance(item, str) else _pair(i, item)
            oids, values = self._encode(args)
            prepared.append((Statement("", sql, oids), values))
        if not transaction and (isolation or readonly or deferrable):
            raise InterfaceError("isolation, readonly and deferrable need transaction=True")
        return await self._run(self._batch, prepared, transaction,
                               (isolation, readonly, deferrable), timeout=timeout)  # fmt: skip

    async def _batch(
        self,
        prepared: list[tuple[Statement, list[bytes | None]]],
        transaction: bool,
        options: tuple[str | None, bool, bool],
    ) -> list[BatchResult]:
        proto = self._proto
        before = after = then = savepoint = None
        if transaction and proto.transaction_status == "I":
            before, then = _begin(*options), "COMMIT"
        elif transaction:
            if any(options):
                raise InterfaceError(
                    "a batch nested in a transaction (savepoint) cannot set isolation, "
                    "readonly or deferrable; set them on the outermost transaction"
                )
            self._sp_counter += 1
            savepoint = f"_drv_batch_{self._sp_counter}"
            before, after = f"SAVEPOINT {savepoint}", f"RELEASE SAVEPOINT {savepoint}"
        # The units whose results come back, per ReadyForQuery, in order.
        stmts = list(range(len(prepared)))
        if transaction:
            group = ([_BEFORE] if before else []) + stmts + ([_AFTER] if after else [])
            plan = [group] + ([[_THEN]] if then else [])
        else:
            plan = [[i] for i in stmts] or [[]]
        proto.send_batch([(s.sql, s.param_oids, v) for s, v in prepared], before=before,
                         after=after, sync_each=not transaction, then=then)  # fmt: skip
        raw: list[list[tuple[bytes | None, ...]]] = [[] for _ in prepared]
        tags = [""] * len(prepared)
        failed: tuple[int, m.ErrorResponse] | None = None
        then_failed: m.ErrorResponse | None = None
        decoder = self._codecs.decoder
        for units in plan:
            k = 0
            while True:
                unit = units[k] if k < len(units) else _THEN
                if unit >= 0:
                    proto.read_rows(raw[unit])
                event = proto.next_event()
                if event is NEED_DATA:
                    await self._fill()
                    continue
                msg = self._filter(event)
                if msg is None:
                    continue
                cls = type(msg)
                if cls is m.DataRow and unit >= 0:
                    raw[unit].append(msg.values)  # type: ignore[union-attr]
                elif cls is m.RowDescription and unit >= 0:
                    prepared[unit][0].set_fields(msg.fields, decoder)  # type: ignore[union-attr,arg-type]
                elif cls is m.NoData and unit >= 0:
                    prepared[unit][0].set_fields((), decoder)
                elif cls is m.CommandComplete or cls is m.EmptyQueryResponse:
                    if unit >= 0:
                        tags[unit] = getattr(msg, "tag", "")
                    k += 1
                elif cls is m.ErrorResponse:
                    if unit == _THEN:
                        then_failed = msg  # type: ignore[assignment]
                    elif failed is None:
                        failed = (unit, msg)  # type: ignore[assignment]
                elif cls is m.ReadyForQuery:
                    break
        if failed is not None:
            unit, error = failed
            if savepoint is not None and unit != _BEFORE:
                await self._simple(f"ROLLBACK TO SAVEPOINT {savepoint}; "
                                   f"RELEASE SAVEPOINT {savepoint}")  # fmt: skip
            exc = PostgresError.from_fields(error.fields)
            if unit >= 0:
                exc.add_note(f"in batch statement {unit}: {prepared[unit][0].sql[:200]}")
            raise exc
        if then_failed is not None:  # COMMIT itself failed (deferred constraint, serialization)
            raise PostgresError.from_fields(then_failed.fields)
        results: list[BatchResult] = []
        for (stmt, _), rows, tag in zip(prepared, raw, tags, strict=True):
            result = BatchResult(self._decode(stmt, rows))
            result.status = tag
            result.fields = stmt.fields or ()
            results.append(result)
        return results


def _pair(i: int, item: Any) -> tuple[str, Sequence[Any]]:
    if (
        not isinstance(item, tuple | list)
        or len(item) != 2
        or not isinstance(item[0], str)
        or isinstance(item[1], str | bytes)
        or not isinstance(item[1], Sequence)
    ):
        raise InterfaceError(
            f"batch statement {i} must be a SQL string or a (sql, args) pair with args a "
            f"sequence, got {item!r:.100}"
        )
    return item[0], item[1]


def _begin(isolation: str | None, readonly: bool, deferrable: bool) -> str:
    sql = "BEGIN"
    if isolation:
        sql += f" ISOLATION LEVEL {ISOLATION_LEVELS[isolation]}"
    if readonly:
        sql += " READ ONLY"
    if deferrable:
        sql += " DEFERRABLE"
    return sql
