"""batch(): several parameterised statements in one round trip against a Session, optionally
as one transaction (what Neon's HTTP ``transaction()`` offers, here on an ordinary session)."""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .errors import InterfaceError, PostgresError
from .protocol import messages as m
from .protocol.messages import Field
from .query import decode, encode, simple
from .record import Record
from .session import Session, is_message
from .statement import Statement
from .transaction import ISOLATION_LEVELS, begin_sql

__all__ = ["BatchResult", "BatchStatement", "batch"]

BatchStatement = str | tuple[str, Sequence[Any]]
_BEFORE, _AFTER, _THEN = -1, -2, -3  # units that are not the caller's statements


class BatchResult(list[Record]):
    """One statement's rows, as ``fetch()`` returns them (empty for a command), with its
    command tag in ``status``, as ``execute()`` returns it (``"INSERT 0 1"``), and its column
    descriptions in ``fields`` (as ``PreparedStatement.get_attributes()``; the SQL-over-HTTP
    endpoint answers with their type OIDs)."""

    status: str = ""
    fields: tuple[Field, ...] = ()


async def batch(
    session: Session,
    statements: Iterable[BatchStatement],
    *,
    transaction: bool = True,
    isolation: str | None = None,
    readonly: bool = False,
    deferrable: bool = False,
    timeout: float | None = None,
) -> list[BatchResult]:
    """Connection.batch(): see there.

    Raises:
        InterfaceError: a bad argument, before anything is sent.
    """
    if isolation is not None and isolation not in ISOLATION_LEVELS:
        raise InterfaceError(
            f"isolation must be one of {sorted(ISOLATION_LEVELS)}, got {isolation!r}"
        )
    prepared: list[tuple[Statement, list[bytes | None]]] = []
    for i, item in enumerate(statements):
        sql, args = (item, ()) if isinstance(item, str) else _pair(i, item)
        oids, values = encode(session.codecs, args)
        prepared.append((Statement("", sql, oids), values))
    if not transaction and (isolation or readonly or deferrable):
        raise InterfaceError("isolation, readonly and deferrable need transaction=True")
    return await session.run(_batch, session, prepared, transaction,
                             (isolation, readonly, deferrable), timeout=timeout)  # fmt: skip


async def _batch(
    session: Session,
    prepared: list[tuple[Statement, list[bytes | None]]],
    transaction: bool,
    options: tuple[str | None, bool, bool],
) -> list[BatchResult]:
    proto = session.proto
    before = after = then = savepoint = None
    if transaction and proto.transaction_status == "I":
        before, then = begin_sql(*options), "COMMIT"
    elif transaction:
        if any(options):
            raise InterfaceError(
                "a batch nested in a transaction (savepoint) cannot set isolation, "
                "readonly or deferrable; set them on the outermost transaction"
            )
        session.sp_counter += 1
        savepoint = f"_drv_batch_{session.sp_counter}"
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
    decoder = session.codecs.decoder
    fill, filter_event = session.fill, session.filter
    for units in plan:
        k = 0
        while True:
            unit = units[k] if k < len(units) else _THEN
            if unit >= 0:
                proto.read_rows(raw[unit])
            event = proto.next_event()
            if not is_message(event):
                await fill()
                continue
            msg = filter_event(event)
            if msg is None:
                continue
            if isinstance(msg, m.DataRow):
                if unit >= 0:
                    raw[unit].append(msg.values)
            elif isinstance(msg, m.RowDescription):
                if unit >= 0:
                    prepared[unit][0].set_fields(msg.fields, decoder)
            elif isinstance(msg, m.NoData):
                if unit >= 0:
                    prepared[unit][0].set_fields((), decoder)
            elif isinstance(msg, m.CommandComplete | m.EmptyQueryResponse):
                if unit >= 0:
                    tags[unit] = msg.tag if isinstance(msg, m.CommandComplete) else ""
                k += 1
            elif isinstance(msg, m.ErrorResponse):
                if unit == _THEN:
                    then_failed = msg
                elif failed is None:
                    failed = (unit, msg)
            elif isinstance(msg, m.ReadyForQuery):
                break
    if failed is not None:
        unit, error = failed
        if savepoint is not None and unit != _BEFORE:
            await simple(session, f"ROLLBACK TO SAVEPOINT {savepoint}; "
                               f"RELEASE SAVEPOINT {savepoint}")  # fmt: skip
        exc = PostgresError.from_fields(error.fields)
        if unit >= 0:
            exc.add_note(f"in batch statement {unit}: {prepared[unit][0].sql[:200]}")
        raise exc
    if then_failed is not None:  # COMMIT itself failed (deferred constraint, serialization)
        raise PostgresError.from_fields(then_failed.fields)
    results: list[BatchResult] = []
    for (stmt, _), rows, tag in zip(prepared, raw, tags, strict=True):
        result = BatchResult(decode(stmt, rows))
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
