"""The extended-query half of Connection: encode, Parse/Bind/Execute, decode, statement cache."""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .codecs import DecodeError
from .errors import InterfaceError, InvalidCachedStatement, PostgresError
from .prepared import Statement, StatementCache
from .protocol import NEED_DATA, State
from .protocol import messages as m
from .record import Record

if TYPE_CHECKING:
    from .codecs import TypeRegistry
    from .protocol import PGProtocol

__all__ = ["ExtendedQuery"]

T = TypeVar("T")
_STALE = ("cached plan must not change result type",)
# int2/int4/int8/float4/float8: left for the server to infer. Their text form is valid input
# for every numeric type, while a declared int8 or float8 would hide functions that take
# integer or numeric (pg_terminate_backend(int), round(numeric, int), substr(text, int)...).
_INFER_ON_SERVER = frozenset({20, 21, 23, 700, 701})


RowDecoder = Callable[[list[tuple[bytes | None, ...]], type[Record], Sequence[Any]], list[Record]]
_BY_ROW = 32  # rows up to this many values wide are decoded by a function made for the width
_row_decoders: dict[int, RowDecoder] = {}


def _row_decoder(n: int) -> RowDecoder:
    """``decode(raw, cls, decoders)`` for rows of ``n`` values: one comprehension over the
    rows, each value's decoder called inline. A quarter faster than transposing to columns,
    mapping each and transposing back (4 columns); the values must number ``n`` (ValueError).
    """
    names = [f"v{i}" for i in range(n)]
    row = "".join(f"None if {v} is None else d{i}({v}), " for i, v in enumerate(names))
    source = (
        "def decode(raw, cls, decoders):\n"
        f"    {''.join(f'd{i}, ' for i in range(n))}= decoders\n"
        f"    return [cls(({row})) for {''.join(v + ', ' for v in names)}in raw]\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # the source is built above from n alone
    decode: RowDecoder = namespace["decode"]
    _row_decoders[n] = decode
    return decode


def _is_stale(exc: PostgresError) -> bool:
    """The server dropped or invalidated a cached statement, so re-preparing it is safe."""
    if exc.sqlstate == "26000":  # prepared statement does not exist (DISCARD ALL, DEALLOCATE)
        return True
    return exc.sqlstate == "0A000" and (
        exc.server_source_function == "RevalidateCachedQuery" or exc.message in _STALE
    )


class ExtendedQuery:
    """Methods of Connection behind fetch*/execute-with-arguments/prepare/executemany.

    A first execution is one flight (Parse + Describe + Bind + Execute + Sync, results in
    text format); later ones reuse the cached named statement (Bind + Execute + Sync).
    """

    if TYPE_CHECKING:
        _proto: PGProtocol
        _codecs: TypeRegistry
        _cache: StatementCache
        _events_in_op: int

        async def _fill(self) -> None: ...

        def _filter(self, event: m.BackendMessage) -> m.BackendMessage | None: ...

        async def _pump(self) -> m.BackendMessage: ...

        async def _run(
            self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None
        ) -> T: ...

    def _encode(
        self, args: Sequence[Any], oids: Sequence[int] | None = None
    ) -> tuple[tuple[int, ...], list[bytes | None]]:
        """Encode arguments before anything is queued, so a bad one leaves no trace.

        Without known parameter types (``oids``), integer and float types are left for the
        server to infer (see _INFER_ON_SERVER); others are declared from the Python type.
        """
        if oids is None:  # the common case first: str, int and float, all left to the server
            untyped = self._codecs.untyped
            try:
                quick = [untyped[type(value)](value) for value in args]
            except (KeyError, ValueError):  # another type, or not UTF-8: the general path
                quick = [None]
            if None not in quick:
                return (0,) * len(quick), quick
        elif len(args) != len(oids):
            raise InterfaceError(f"the statement expects {len(oids)} arguments, got {len(args)}")
        encode = self._codecs.encode
        types: list[int] = []
        values: list[bytes | None] = []
        for i, value in enumerate(args):
            try:
                oid, data = encode(value, oids[i] if oids else 0)
            except (TypeError, ValueError) as exc:
                raise InterfaceError(f"invalid argument ${i + 1} ({value!r}): {exc}") from exc
            types.append(0 if oid in _INFER_ON_SERVER and not oids else oid)
            values.append(data)
        return tuple(types), values

    async def _exchange(
        self, stmt: Statement, fresh: bool, values: list[bytes | None], max_rows: int
    ) -> tuple[list[tuple[bytes | None, ...]], str]:
        proto = self._proto
        if fresh:
            proto.send_prepare_execute(
                stmt.name, stmt.sql, stmt.param_oids, values, max_rows=max_rows
            )
        else:
            proto.send_execute(stmt.name, values, max_rows=max_rows)
        rows: list[tuple[bytes | None, ...]] = []
        tag = ""
        error: m.ErrorResponse | None = None
        decoder = self._codecs.decoder
        next_event = proto.next_event
        read_result = proto.read_result
        data_row = m.DataRow
        await self._fill()  # nothing of this operation's result can be here before its flush
        while True:
            done = read_result(rows)  # the hot path: rows to ReadyForQuery, no event objects
            if done is not None:
                tag = done
                self._events_in_op += 1
                break
            event = next_event()
            if type(event) is data_row:
                rows.append(event.values)
                continue
            if event is NEED_DATA:
                await self._fill()
                continue
            msg = self._filter(event)
            cls = type(msg)
            if cls is m.CommandComplete:
                tag = msg.tag  # type: ignore[union-attr]
            elif cls is m.RowDescription:
                stmt.set_fields(msg.fields, decoder)  # type: ignore[union-attr,arg-type]
            elif cls is m.NoData:
                stmt.set_fields((), decoder)
            elif cls is m.ReadyForQuery:
                break
            elif cls is m.ErrorResponse:
                error = msg  # type: ignore[assignment]
        if error is not None:
            raise PostgresError.from_fields(error.fields)
        return rows, tag

    def _decode(self, stmt: Statement, raw: list[tuple[bytes | None, ...]]) -> list[Record]:
        """One Record per row, each value through its column's decoder (NULLs left None).

        Rows up to _BY_ROW values wide go through a function made for their width (see
        _row_decoder); wider ones column by column, through map().
        """
        if not raw:
            return []
        decoders, cls = stmt.decoders, stmt.record_cls
        if cls is None:
            raise InterfaceError("the statement returned rows but no row description")
        n = len(decoders)
        if 0 < n <= _BY_ROW:
            try:
                return (_row_decoders.get(n) or _row_decoder(n))(raw, cls, decoders)
            except (ValueError, TypeError, ArithmeticError, LookupError) as exc:
                if any(len(row) != n for row in raw):
                    raise InterfaceError(
                        f"a result row does not have the {n} values its description has"
                    ) from None
                raise DecodeError(f"cannot decode a result value: {exc!r}") from exc
        try:
            columns = list(zip(*raw, strict=True))
            if len(columns) != n:
                raise ValueError
        except ValueError:
            raise InterfaceError(
                f"a result row does not have the {n} values its description has"
            ) from None
        if not decoders:
            return [cls() for _ in raw]
        try:
            values = [
                [None if v is None else d(v) for v in col] if None in col else list(map(d, col))
                for d, col in zip(decoders, columns, strict=True)
            ]
        except (ValueError, TypeError, ArithmeticError, LookupError) as exc:
            raise DecodeError(f"cannot decode a result value: {exc!r}") from exc
        return list(map(cls, zip(*values, strict=True)))

    async def _query(
        self, sql: str, args: Sequence[Any], max_rows: int, timeout: float | None
    ) -> tuple[list[Record], str]:
        oids, values = self._encode(args)
        key = (sql, oids)
        cache = self._cache
        for attempt in (0, 1):
            stmt = cache.get(key) if cache.size else None
            fresh = stmt is None
            if stmt is None:
                stmt = Statement(cache.new_name(), sql, oids)
            try:
                raw, tag = await self._run(self._exchange, stmt, fresh, values, max_rows,
                                           timeout=timeout)  # fmt: skip
            except PostgresError as exc:
                if fresh:
                    self._remember(key, stmt)
                elif _is_stale(exc):
                    self._forget_statement(stmt, key, close=exc.sqlstate != "26000")
                    if attempt == 0 and self._proto.transaction_status == "I":
                        continue
                    if self._proto.transaction_status != "I":
                        fields = {k: v for k, v in exc.as_dict().items() if k != "message"}
                        raise InvalidCachedStatement(
                            f"{exc.message}: the cached statement cannot be re-prepared inside "
                            "a transaction block; retry the transaction",
                            **fields,
                        ) from exc
                raise
            if fresh:
                self._remember(key, stmt)
            return self._decode(stmt, raw), tag
        raise AssertionError("unreachable")

    def _remember(self, key: tuple[str, tuple[int, ...]], stmt: Statement) -> None:
        if not stmt.name or stmt.fields is None:
            return  # unnamed, or the Parse failed: nothing exists on the server
        for old in self._cache.put(key, stmt):
            if self._proto.state in (State.READY, State.BUSY):
                self._proto.send_close_statement(old.name)

    def _forget_statement(
        self, stmt: Statement, key: tuple[str, tuple[int, ...]] | None = None, *, close: bool = True
    ) -> None:
        if key is not None:
            self._cache.discard(key)
        if close and stmt.name and self._proto.state in (State.READY, State.BUSY):
            self._proto.send_close_statement(stmt.name)

    async def _prepare(self, stmt: Statement) -> tuple[int, ...]:
        self._proto.send_prepare(stmt.name, stmt.sql)
        types: tuple[int, ...] = ()
        error: m.ErrorResponse | None = None
        while True:
            event = await self._pump()
            if isinstance(event, m.ParameterDescription):
                types = event.type_oids
            elif isinstance(event, m.RowDescription):
                stmt.set_fields(event.fields, self._codecs.decoder)
            elif isinstance(event, m.NoData):
                stmt.set_fields((), self._codecs.decoder)
            elif isinstance(event, m.ErrorResponse):
                error = event
            elif isinstance(event, m.ReadyForQuery):
                break
        if error is not None:
            raise PostgresError.from_fields(error.fields)
        return types

    async def _execute_prepared(
        self,
        stmt: Statement,
        types: tuple[int, ...],
        args: Sequence[Any],
        max_rows: int,
        timeout: float | None,
    ) -> tuple[list[Record], str]:
        _, values = self._encode(args, types)
        fresh = not stmt.name  # the unnamed statement is parsed again with every execution
        raw, tag = await self._run(self._exchange, stmt, fresh, values, max_rows, timeout=timeout)
        return self._decode(stmt, raw), tag

    async def _execute_many_prepared(
        self,
        stmt: Statement,
        types: tuple[int, ...],
        args: Iterable[Sequence[Any]],
        timeout: float | None,
        *,
        parse: bool = False,
    ) -> None:
        encoded = [self._encode(a, types if types else None)[1] for a in args]
        parse = parse or not stmt.name
        await self._run(self._many, stmt, encoded, parse, timeout=timeout)

    async def _many(self, stmt: Statement, rows: list[list[bytes | None]], parse: bool) -> None:
        self._proto.send_execute_many(
            stmt.name, rows, parse=(stmt.sql, stmt.param_oids) if parse else None
        )
        error: m.ErrorResponse | None = None
        while True:
            event = await self._pump()
            if isinstance(event, m.ErrorResponse):
                error = event
            elif isinstance(event, m.ReadyForQuery):
                break
        if error is not None:
            raise PostgresError.from_fields(error.fields)
