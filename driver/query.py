"""Queries against a Session: simple Query, Parse/Bind/Execute, encode and decode, the
statement cache, type codecs.

A first execution is one flight (Parse + Describe + Bind + Execute + Sync, results in text
format); later ones reuse the cached named statement (Bind + Execute + Sync).
"""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .argcheck import check_arg_count, executemany_rows
from .codecs import DecodeError, TypeRegistry
from .errors import InterfaceError, InvalidCachedStatement, PostgresError
from .protocol import State
from .protocol import messages as m
from .record import Record, record_class
from .session import Session, is_message
from .statement import Key, Statement

__all__ = [
    "cached",
    "collect",
    "decode",
    "encode",
    "exchange",
    "execute_many",
    "execute_prepared",
    "forget_statement",
    "prepare",
    "prepare_named",
    "query",
    "remember",
    "set_type_codec",
    "simple",
]

_STALE = ("cached plan must not change result type",)
# int2/int4/int8/float4/float8: left for the server to infer. Their text form is valid input
# for every numeric type, while a declared int8 or float8 would hide functions that take
# integer or numeric (pg_terminate_backend(int), round(numeric, int), substr(text, int)...).
_INFER_ON_SERVER = frozenset({20, 21, 23, 700, 701})
_MAX_ARGS = 32767  # Bind's parameter count is an Int16


RowDecoder = Callable[[list[tuple[bytes | None, ...]], type[Record], Sequence[Any]], list[Record]]
_BY_ROW = 32  # rows up to this many values wide are decoded by a function made for the width
_row_decoders: dict[int, RowDecoder] = {}


def _row_decoder(n: int) -> RowDecoder:
    """``decode(raw, cls, decoders)`` for rows of ``n`` values: one comprehension over the
    rows, each value's decoder called inline (faster than transposing to columns, mapping each
    and transposing back: ``bench/driver_bench.py``); the values must number ``n`` (ValueError).
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


def encode(
    codecs: TypeRegistry, args: Sequence[Any], oids: Sequence[int] | None = None
) -> tuple[tuple[int, ...], list[bytes | None]]:
    """Encode arguments before anything is queued, so a bad one leaves no trace.

    Without known parameter types (``oids``), integer and float types are left for the
    server to infer (see _INFER_ON_SERVER); others are declared from the Python type.

    Raises:
        InterfaceError: a value its codec refuses, or the wrong number of values.
    """
    if len(args) > _MAX_ARGS:
        raise InterfaceError(f"the number of query arguments cannot exceed {_MAX_ARGS}")
    if oids is None:  # the common case first: str, int and float, all left to the server
        untyped = codecs.untyped
        try:
            quick = [untyped[type(value)](value) for value in args]
        except (KeyError, ValueError):  # another type, or not UTF-8: the general path
            quick = [None]
        if None not in quick:
            return (0,) * len(quick), quick
    elif len(args) != len(oids):
        check_arg_count(len(oids), len(args))
    encode_value = codecs.encode
    types: list[int] = []
    values: list[bytes | None] = []
    for i, value in enumerate(args):
        try:
            oid, data = encode_value(value, oids[i] if oids else 0)
        except (TypeError, ValueError) as exc:
            raise InterfaceError(f"invalid argument ${i + 1} ({value!r}): {exc}") from exc
        types.append(0 if oid in _INFER_ON_SERVER and not oids else oid)
        values.append(data)
    return tuple(types), values


async def simple(session: Session, sql: str) -> str:
    """A simple Query (several statements allowed); returns the last one's command tag."""
    proto = session.proto
    proto.send_query(sql)
    tag = ""

    def on_event(event: m.BackendMessage) -> None:
        nonlocal tag
        if isinstance(event, m.CommandComplete):
            tag = event.tag
        elif isinstance(event, m.CopyInResponse):
            proto.send_copy_fail("use copy_to_table() or copy_records_to_table() for COPY IN")

    await session.until_ready(on_event, query=sql)
    return tag


async def exchange(
    session: Session, stmt: Statement, fresh: bool, values: list[bytes | None], max_rows: int
) -> tuple[list[tuple[bytes | None, ...]], str]:
    """One extended-query execution, raw rows and tag; the hot path of every fetch.

    Whatever of the result is already in the input is read in one pass by the core
    (``read_result``: rows to ReadyForQuery, no event objects); the rest event by event.
    """
    proto = session.proto
    if fresh:
        proto.send_prepare_execute(stmt.name, stmt.sql, stmt.param_oids, values, max_rows=max_rows)
    else:
        proto.send_execute(stmt.name, values, max_rows=max_rows)
    return await collect(session, stmt)


async def collect(session: Session, stmt: Statement) -> tuple[list[tuple[bytes | None, ...]], str]:
    """Flush what the operation queued and read its reply: raw rows and the command tag ("" if
    the portal was suspended at its row limit, or if nothing was executed).

    A RowDescription or NoData in the reply (a fresh statement's Describe) sets the
    statement's row shape.
    """
    proto = session.proto
    rows: list[tuple[bytes | None, ...]] = []
    tag = ""
    error: m.ErrorResponse | None = None
    decoder = session.codecs.decoder
    next_event = proto.next_event
    read_result = proto.read_result
    fill = session.fill
    data_row = m.DataRow
    await fill()  # nothing of this operation's result can be here before its flush
    while True:
        done = read_result(rows)
        if done is not None:
            tag = done
            session.events_in_op += 1
            break
        event = next_event()
        if type(event) is data_row:
            rows.append(event.values)
            continue
        if not is_message(event):
            await fill()
            continue
        msg = session.filter(event)
        if isinstance(msg, m.CommandComplete):
            tag = msg.tag
        elif isinstance(msg, m.RowDescription):
            stmt.set_fields(msg.fields, decoder)
        elif isinstance(msg, m.NoData):
            stmt.set_fields((), decoder)
        elif isinstance(msg, m.ReadyForQuery):
            break
        elif isinstance(msg, m.ErrorResponse):
            error = msg
        elif isinstance(msg, m.ParameterDescription):
            stmt.param_count = len(msg.type_oids)
    if error is not None:
        if stmt.param_count is not None and stmt.param_count != len(stmt.param_oids):
            # the Bind that followed the Parse had the wrong number of values: say so as
            # asyncpg does, rather than as the server's protocol violation
            check_arg_count(stmt.param_count, len(stmt.param_oids))
        raise PostgresError.from_fields(error.fields, stmt.sql)
    return rows, tag


def decode(
    stmt: Statement, raw: list[tuple[bytes | None, ...]], base: type[Record] = Record
) -> list[Record]:
    """One Record per row, each value through its column's decoder (NULLs left None);
    ``base`` is the record class asked for (``record_class=``).

    Rows up to _BY_ROW values wide go through a function made for their width (see
    _row_decoder); wider ones column by column, through map().

    Raises:
        InterfaceError: a row of the wrong width, or a value its decoder refuses.
    """
    if not raw:
        return []
    decoders, cls = stmt.decoders, stmt.record_cls
    if cls is None:
        raise InterfaceError("the statement returned rows but no row description")
    if base is not Record:
        cls = record_class(cls._names, base)
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


def cached(session: Session, key: Key) -> tuple[Statement, bool]:
    """The cached statement for ``key`` (sql, parameter OIDs), or a new one to parse (then
    ``fresh`` is True; it is the unnamed one when caching is off)."""
    cache = session.cache
    stmt = cache.get(key) if cache.size else None
    if stmt is None:
        return Statement(cache.new_name(), key[0], key[1]), True
    return stmt, False


async def query(
    session: Session,
    sql: str,
    args: Sequence[Any],
    max_rows: int,
    timeout: float | None,
    base: type[Record] = Record,
) -> tuple[list[Record], str]:
    """fetch()/execute() with arguments: through the statement cache, re-preparing once a
    statement the server dropped or invalidated (outside a transaction block)."""
    oids, values = encode(session.codecs, args)
    key = (sql, oids)
    for attempt in (0, 1):
        stmt, fresh = cached(session, key)
        if stmt.param_count is not None:
            check_arg_count(stmt.param_count, len(oids))
        try:
            raw, tag = await session.run(exchange, session, stmt, fresh, values, max_rows,
                                         timeout=timeout)  # fmt: skip
        except PostgresError as exc:
            if fresh:
                remember(session, key, stmt)
                if exc.sqlstate == "42P18" and args:  # maybe more values than parameters
                    await _check_count(session, sql, len(args), timeout)
            elif _is_stale(exc):
                forget_statement(session, stmt, key, close=exc.sqlstate != "26000")
                status = session.proto.transaction_status
                if attempt == 0 and status == "I":
                    continue
                if status != "I":
                    fields = {k: v for k, v in exc.as_dict().items() if k != "message"}
                    raise InvalidCachedStatement(
                        f"{exc.message}: the cached statement cannot be re-prepared inside "
                        "a transaction block; retry the transaction",
                        **fields,
                    ) from exc
            raise
        if fresh:
            remember(session, key, stmt)
        return decode(stmt, raw, base), tag
    raise AssertionError("unreachable")


async def _check_count(session: Session, sql: str, passed: int, timeout: float | None) -> None:
    """After "could not determine data type of parameter": if the statement has fewer
    parameters than values were passed (a value declared for a parameter the text never
    uses), raise asyncpg's InterfaceError instead. Costs a Parse, on this error path only."""
    try:
        types = await session.run(prepare, session, Statement("", sql, ()), timeout=timeout)
    except PostgresError:
        return  # the statement is wrong in itself: the caller raises the server's error
    check_arg_count(len(types), passed)


def remember(session: Session, key: Key, stmt: Statement) -> None:
    """Cache a statement the server has just parsed (Close the one it evicts)."""
    if not stmt.name or stmt.fields is None:
        return  # unnamed, or the Parse failed: nothing exists on the server
    proto = session.proto
    for old in session.cache.put(key, stmt):
        if proto.state in (State.READY, State.BUSY):
            proto.send_close_statement(old.name)


def forget_statement(
    session: Session,
    stmt: Statement,
    key: tuple[str, tuple[int, ...]] | None = None,
    *,
    close: bool = True,
) -> None:
    """Drop a statement from the cache and queue its Close (sent with the next operation)."""
    if key is not None:
        session.cache.discard(key)
    proto = session.proto
    if close and stmt.name and proto.state in (State.READY, State.BUSY):
        proto.send_close_statement(stmt.name)


async def prepare(session: Session, stmt: Statement) -> tuple[int, ...]:
    """Parse + Describe: learn the parameter types and the row shape; returns the types."""
    session.proto.send_prepare(stmt.name, stmt.sql)
    types: tuple[int, ...] = ()
    decoder = session.codecs.decoder

    def on_event(event: m.BackendMessage) -> None:
        nonlocal types
        if isinstance(event, m.ParameterDescription):
            types = event.type_oids
        elif isinstance(event, m.RowDescription):
            stmt.set_fields(event.fields, decoder)
        elif isinstance(event, m.NoData):
            stmt.set_fields((), decoder)

    await session.until_ready(on_event, query=stmt.sql)
    return types


async def execute_prepared(
    session: Session,
    stmt: Statement,
    types: tuple[int, ...],
    args: Sequence[Any],
    max_rows: int,
    timeout: float | None,
    base: type[Record] = Record,
) -> tuple[list[Record], str]:
    """Execute a prepared statement; the unnamed one is parsed again with every execution."""
    _, values = encode(session.codecs, args, types)
    fresh = not stmt.name
    raw, tag = await session.run(exchange, session, stmt, fresh, values, max_rows,
                                 timeout=timeout)  # fmt: skip
    return decode(stmt, raw, base), tag


async def execute_many(
    session: Session,
    stmt: Statement,
    types: tuple[int, ...],
    args: Iterable[Sequence[Any]],
    timeout: float | None,
    *,
    parse: bool = False,
) -> None:
    """Execute once per argument tuple, every Bind/Execute pipelined before one Sync.

    A row that fails on the client (the iterable raises, a value cannot be encoded) ends it
    as asyncpg's streaming ends: inside a transaction block, the rows asyncpg would already
    have sent (whole flights of four 32 KiB buffers) are executed and stay in the
    transaction; outside one, nothing is (asyncpg rolls its implicit transaction back). The
    client's error is raised then, unless the server failed first.
    """
    encoded: list[list[bytes | None]] = []
    failure: Exception | None = None
    try:
        for row in executemany_rows(args):
            encoded.append(encode(session.codecs, row, types if types else None)[1])
    except Exception as exc:
        failure = exc
    if failure is not None:
        sent = _sent_before_failure(stmt, encoded) if session.proto.transaction_status != "I" else 0
        if not sent:
            raise failure
        del encoded[sent:]
    parse = parse or not stmt.name
    await session.run(_many, session, stmt, encoded, parse, timeout=timeout)
    if failure is not None:
        raise failure


_MANY_BUFFER, _MANY_BUFFERS = 32768, 4  # asyncpg's executemany flight: four 32 KiB buffers


def _sent_before_failure(stmt: Statement, rows: list[list[bytes | None]]) -> int:
    """How many of ``rows`` asyncpg would have written before the row that failed: it fills
    buffers of at least 32 KiB of Bind/Execute messages and writes four at a time."""
    sent = count = size = buffers = 0
    execute = len(m.execute("", 0))
    for values in rows:
        size += len(m.bind("", stmt.name, values)) + execute
        count += 1
        if size >= _MANY_BUFFER:
            size, buffers = 0, buffers + 1
            if buffers == _MANY_BUFFERS:
                sent, buffers = count, 0
    return sent


async def _many(
    session: Session, stmt: Statement, rows: list[list[bytes | None]], parse: bool
) -> None:
    session.proto.send_execute_many(
        stmt.name, rows, parse=(stmt.sql, stmt.param_oids) if parse else None
    )
    await session.until_ready(query=stmt.sql)


_TYPE_QUERY = """
SELECT t.oid, t.typarray FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typname = $1 AND n.nspname = $2
"""


async def set_type_codec(
    session: Session,
    typename: str,
    schema: str,
    encoder: Callable[[Any], str | bytes],
    decoder: Callable[[str], Any],
    python_type: type | None,
) -> None:
    """Register a text codec for a named type and its array type; cached statements are
    dropped, since their column decoders were resolved with the old table.

    Raises:
        InterfaceError: the type does not exist.
    """
    rows, _ = await query(session, _TYPE_QUERY, (typename, schema), 1, None)
    if not rows:
        raise InterfaceError(f"type {schema}.{typename} does not exist")
    row = rows[0]

    def decode_text(data: bytes) -> Any:
        return decoder(data.decode())

    session.codecs.register(
        row[0], encoder=encoder, decoder=decode_text, array_oid=row[1] or None,
        python_type=python_type,
    )  # fmt: skip
    for stmt in session.cache.clear():
        forget_statement(session, stmt)


async def prepare_named(
    session: Session, sql: str, timeout: float | None, name: str | None = None
) -> tuple[Statement, tuple[int, ...]]:
    """Connection.prepare(): a new statement, named ``name`` if given, else with a fresh name
    (the unnamed one when caching is off, which then carries the learnt types, being parsed
    again with each execution)."""
    if name is None:
        name = session.cache.new_name()
    stmt = Statement(name, sql, ())
    types = await session.run(prepare, session, stmt, timeout=timeout)
    if not name:
        stmt.param_oids = types
    return stmt, types
