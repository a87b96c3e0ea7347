"""Queries against a Session: simple Query, Parse/Bind/Execute, encode and decode, the
statement cache, type codecs.

A first execution is one flight (Parse + Describe + Bind + Execute + Sync, results in text
format); later ones reuse the cached named statement (Bind + Execute + Sync).
"""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from . import speedups
from .argcheck import check_arg_count, executemany_rows
from .codecs import ArgumentError, DecodeError, TypeRegistry, default_registry
from .codecs import structured as st
from .codecs.introspection import INTROSPECT, register_types, unknown_oids
from .codecs.tuples import TUPLE_CODECS
from .errors import (
    InterfaceError,
    InvalidCachedStatement,
    OutdatedSchemaCacheError,
    PostgresError,
    UnsupportedClientFeatureError,
)
from .protocol import State
from .protocol import messages as m
from .record import Record, record_class
from .session import Session, is_message
from .statement import Key, Statement
from .types import Range

__all__ = [
    "cached",
    "collect",
    "decode",
    "encode",
    "exchange",
    "execute_many",
    "execute_prepared",
    "executemany",
    "forget_statement",
    "prepare",
    "prepare_named",
    "query",
    "reload_types",
    "remember",
    "reset_type_codec",
    "set_builtin_type_codec",
    "set_type_codec",
    "simple",
]

_MAX_ARGS = 32767  # Bind counts parameters in an int16

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


Encoders = Sequence[Callable[[Any], bytes]]
RowEncoder = Callable[[Sequence[Any], Encoders], list[bytes | None]]
_row_encoders: dict[int, RowEncoder] = {}


def _row_encoder(n: int) -> RowEncoder:
    """``encode(row, encoders)`` for rows of ``n`` values (executemany()'s): each value through
    its parameter's encoder, NULLs left None, in a function made for the width (a sixth
    faster than a comprehension over zip()); a row of another length raises ValueError.
    """
    names = [f"v{i}" for i in range(n)]
    values = "".join(f"None if {v} is None else e{i}({v}), " for i, v in enumerate(names))
    source = (
        "def encode(row, encoders):\n"
        f"    {''.join(f'e{i}, ' for i in range(n))}= encoders\n"
        f"    {''.join(v + ', ' for v in names)}= row\n"
        f"    return [{values}]\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # the source is built above from n alone
    encode: RowEncoder = namespace["encode"]
    _row_encoders[n] = encode
    return encode


def _is_stale(exc: PostgresError) -> bool:
    """The server dropped or invalidated a cached statement, so re-preparing it is safe."""
    if exc.sqlstate == "26000":  # prepared statement does not exist (DISCARD ALL, DEALLOCATE)
        return True
    return exc.sqlstate == "0A000" and (
        exc.server_source_function == "RevalidateCachedQuery" or exc.message in _STALE
    )


def encode(
    codecs: TypeRegistry,
    args: Sequence[Any],
    oids: Sequence[int] | None = None,
    seqno: int = -1,
) -> tuple[tuple[int, ...], list[bytes | None]]:
    """Encode arguments before anything is queued, so a bad one leaves no trace.

    Without known parameter types (``oids``), integer and float types are left for the
    server to infer (see _INFER_ON_SERVER); others are declared from the Python type.
    ``seqno`` is the row's index in an executemany() sequence (named in errors, as asyncpg).

    Raises:
        DataError: a value its codec refuses (asyncpg's "invalid input for query argument").
        InterfaceError: the wrong number of values, or more than 32767.
    """
    if len(args) > _MAX_ARGS:
        raise InterfaceError(
            f"the number of query arguments cannot exceed {_MAX_ARGS} (got {len(args)})"
        )
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
        except InterfaceError as exc:
            raise type(exc)(f"query argument {_position(i, seqno)}: {exc.args[0]}") from None
        except Exception as exc:  # any failure of a codec is the value's fault, as asyncpg
            shown = repr(value)
            if len(shown) > 40:
                shown = shown[:40] + "..."
            raise ArgumentError(
                f"invalid input for query argument {_position(i, seqno)}: {shown} ({exc})"
            ) from exc
        types.append(0 if oid in _INFER_ON_SERVER and not oids else oid)
        values.append(data)
    return tuple(types), values


def _position(i: int, seqno: int) -> str:
    pos = f"${i + 1}"
    return pos if seqno < 0 else f"{pos} in element #{seqno} of executemany() sequence"


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
            stmt.described = msg.type_oids
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
    fast = speedups.decode_rows
    if fast is not None or 0 < n <= _BY_ROW:
        try:
            if fast is not None:
                return fast(raw, cls, decoders)
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
        while cache.expired:
            forget_statement(session, cache.expired.pop())
        return Statement(cache.name_for(key[0]), key[0], key[1]), True
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
    codecs = session.codecs
    typed = False  # whether the statement is prepared first, for its parameter types
    try:
        oids, values = encode(codecs, args)
    except ArgumentError as exc:
        if not isinstance(exc.__cause__, TypeError):
            raise
        # no codec infers a type for this Python value (a custom codec's type, say): the
        # server's parameter types decide; -1 keeps these apart from inferred keys
        oids, values, typed = (-1,) * len(args), [], True
    key = (sql, oids)
    for attempt in (0, 1):
        stmt, fresh = cached(session, key)
        if fresh and (typed or _needs_types(args)):
            typed = True
            stmt, types = await _prepare_typed(session, sql, oids, timeout)
            values = encode(codecs, args, types)[1]
            fresh = not stmt.name  # the unnamed statement is parsed again, with its types
        elif not fresh and stmt.param_oids != oids:  # prepared for the server's types
            values = encode(codecs, args, stmt.param_oids)[1]
        if stmt.param_count is not None:
            check_arg_count(stmt.param_count, len(oids))
        try:
            raw, tag = await session.run(exchange, session, stmt, fresh, values, max_rows,
                                         timeout=timeout)  # fmt: skip
        except PostgresError as exc:
            if fresh or typed:
                remember(session, key, stmt)
                if exc.sqlstate == "42P18" and args:  # maybe more values than parameters
                    await _check_count(session, sql, len(args), timeout)
                if not typed:
                    _refuse_as_asyncpg(codecs, stmt, args, exc)
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
        if fresh or typed:
            await ensure_types(session, stmt)
            remember(session, key, stmt)
        return decode_checked(session, stmt, raw, base), tag
    raise AssertionError("unreachable")


def _refuse_as_asyncpg(
    codecs: TypeRegistry, stmt: Statement, args: Sequence[Any], exc: PostgresError
) -> None:
    """The server refused a value of a statement sent in one flight with the types inferred
    from the Python values (its Bind failed: nothing ran). If asyncpg, which encodes by the
    parameter types, would have refused it on the client, raise its DataError instead (an
    int where an array is expected: "sized iterable container expected")."""
    if exc.sqlstate is None or not exc.sqlstate.startswith("22"):
        return
    types = stmt.described
    if types is None or len(types) != len(args):
        return
    try:
        encode(codecs, args, types)
    except ArgumentError as client:
        raise client from exc


async def _check_count(session: Session, sql: str, passed: int, timeout: float | None) -> None:
    """After "could not determine data type of parameter": if the statement has fewer
    parameters than values were passed (a value declared for a parameter the text never
    uses), raise asyncpg's InterfaceError instead. Costs a Parse, on this error path only."""
    try:
        types = await session.run(prepare, session, Statement("", sql, ()), timeout=timeout)
    except PostgresError:
        return  # the statement is wrong in itself: the caller raises the server's error
    check_arg_count(len(types), passed)


async def catalog_query(session: Session, sql: str, *args: str) -> list[Record]:
    """A query of the catalog for the driver's own use: the unnamed statement (nothing
    added to the statement cache), text arguments, and the built-in decoders whatever
    set_type_codec() changed on the connection (a user's codec for oid or text must not
    break introspection)."""
    stmt = Statement("", sql, (0,) * len(args))
    values: list[bytes | None] = [a.encode() for a in args]
    raw, _ = await session.run(exchange, session, stmt, True, values, 0, timeout=None)
    stmt.set_fields(stmt.fields or (), default_registry.decoder)
    return decode(stmt, raw)


# Arguments whose type the Python value does not settle (a tuple is an array, a composite or
# a range; a dict is jsonb or a composite): a first execution prepares the statement, as
# asyncpg does for every statement, to encode them for the parameter types the server found.
_CONTAINERS = frozenset({tuple, list, dict})


def _needs_types(args: Sequence[Any]) -> bool:
    return any(type(a) in _CONTAINERS or isinstance(a, Range) for a in args)


async def _prepare_typed(
    session: Session, sql: str, oids: tuple[int, ...], timeout: float | None
) -> tuple[Statement, tuple[int, ...]]:
    stmt = Statement(session.cache.name_for(sql), sql, oids)
    types = await session.run(prepare, session, stmt, timeout=timeout)
    await ensure_types(session, stmt, types)
    stmt.param_oids = types
    return stmt, types


def decode_checked(
    session: Session,
    stmt: Statement,
    raw: list[tuple[bytes | None, ...]],
    base: type[Record] = Record,
) -> list[Record]:
    """decode(), and when a composite's shape no longer matches what this connection learnt
    of its type: asyncpg's OutdatedSchemaCacheError, the type's codecs and the statements
    resolved with them forgotten, so that the next query learns it again.

    Raises:
        OutdatedSchemaCacheError: the type was altered since it was introspected.
    """
    try:
        return decode(stmt, raw, base)
    except DecodeError as exc:
        if not isinstance(exc.__cause__, st.SchemaChanged):
            raise
        reload_types(session)
        raise OutdatedSchemaCacheError(
            f"{exc.__cause__}: the type changed since this connection learnt it; "
            "its codecs are now cleared, run the query again"
        ) from exc


async def ensure_types(session: Session, stmt: Statement, params: Sequence[int] = ()) -> None:
    """Learn the types of a statement's columns (and ``params``) that have no codec yet, in
    one catalog query, and resolve the statement's decoders again; statements whose types
    are all known (the usual case) cost nothing more."""
    codecs = session.codecs
    fields = stmt.fields or ()
    missing = unknown_oids(codecs, [f.type_oid for f in fields] + list(params))
    if not missing:
        return
    listed = "{" + ",".join(map(str, missing)) + "}"
    rows = await catalog_query(session, INTROSPECT, listed)
    register_types(codecs, rows)
    for oid in missing:  # nothing in the catalog (a dropped type): text, not a retry per query
        if not codecs.knows(oid):
            codecs.register(oid, encoder=None, decoder=bytes.decode)
            codecs.derived.add(oid)
    if stmt.fields is not None:
        stmt.set_fields(stmt.fields, codecs.decoder)


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
    return decode_checked(session, stmt, raw, base), tag


async def executemany(
    session: Session,
    sql: str,
    rows: Iterator[Sequence[Any]],
    timeout: float | None,
    *,
    again: Sequence[Sequence[Any]] | None = None,
) -> None:
    """Connection.executemany(): every row encoded for the parameter types the server gives
    the statement, as asyncpg encodes them (``11.0`` for an int4 is 11, ``'bad'`` is a
    DataError naming the row), not by each value's Python type.

    The types come from a Parse/Describe of the statement, cached like any statement (one
    round trip the first time a connection runs this command, none after). A cached
    statement the server dropped (DISCARD ALL) or invalidated is prepared again and the
    rows sent again once, outside a transaction block, when they can be read again
    (``again``: the caller's list or tuple; a generator is read once).
    """
    first = next(rows, None)
    if first is None:
        return
    key = (sql, (-1,) * len(first))
    stmt, fresh = cached(session, key)
    if fresh:
        stmt, _ = await _prepare_typed(session, sql, key[1], timeout)
        remember(session, key, stmt)
    check_arg_count(len(stmt.param_oids), len(first))
    try:
        await execute_many(session, stmt, stmt.param_oids, itertools.chain((first,), rows), timeout)
    except PostgresError as exc:
        stale = not fresh and _is_stale(exc) and session.proto.transaction_status == "I"
        if not stale:
            raise
        forget_statement(session, stmt, key, close=exc.sqlstate != "26000")
        if again is None:
            raise
        stmt, _ = await _prepare_typed(session, sql, key[1], timeout)
        remember(session, key, stmt)
        await execute_many(session, stmt, stmt.param_oids, executemany_rows(again), timeout)


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

    Rows are encoded and sent in flights, as asyncpg sends them (see ``_flights``), so the
    server executes one flight while the next is encoded. A row that fails on the client
    (the iterable raises, a value cannot be encoded) ends it as asyncpg's streaming ends:
    inside a transaction block, the rows of the flights already sent are executed and stay
    in the transaction; outside one, none is (a ROLLBACK goes before the Sync). The
    client's error is raised then, unless the server failed first.
    """
    parse = parse or not stmt.name
    failure = await session.run(_many, session, stmt, types, args, parse, timeout=timeout)
    if failure is not None:
        raise failure


_MANY_BUFFER, _MANY_BUFFERS = 32768, 4  # asyncpg's executemany flight: four 32 KiB buffers


def _flights(
    session: Session, stmt: Statement, types: tuple[int, ...], args: Iterable[Sequence[Any]]
) -> Iterator[tuple[list[bytes], bool]]:
    """The rows' Bind/Execute messages in asyncpg's flights: it fills buffers of at least
    32 KiB of them and writes four at a time. Yields (messages, last); the last flight is
    what is left, maybe nothing. A row that fails raises here, and the rows of its flight
    are never sent, as with asyncpg.
    """
    codecs = session.codecs
    # One encoder per parameter, picked once; a row they refuse (or of the wrong length) goes
    # through encode(), which raises the error it would have raised.
    encoders = [codecs.param_encoder(oid) for oid in types]
    n = len(encoders)
    encode_row = (_row_encoders.get(n) or _row_encoder(n)) if 0 < n <= _BY_ROW else None
    bind_execute = m.bind_executor(stmt.name, n)
    bind_row = speedups.bind_row if n else None
    if bind_row is not None:
        fixed, head, tail = m.bind_execute_frame(stmt.name, n)
        text_encoders = tuple(codecs.param_text_encoder(oid) for oid in types)
    flight: list[bytes] = []
    size = buffers = 0
    for seqno, row in enumerate(executemany_rows(args)):
        try:
            if bind_row is not None:  # the C loop: encoders called, the Bind framed, one call
                message = bind_row(fixed, head, tail, text_encoders, row)
            else:
                if encode_row is not None:
                    values = encode_row(row, encoders)
                elif encoders:
                    values = [
                        None if v is None else e(v) for e, v in zip(encoders, row, strict=True)
                    ]
                else:
                    raise ValueError
                message = bind_execute(values)
        except Exception:
            message = bind_execute(encode(codecs, row, types if types else None, seqno)[1])
        flight.append(message)
        size += len(message)
        if size >= _MANY_BUFFER:
            size, buffers = 0, buffers + 1
            if buffers == _MANY_BUFFERS:
                yield flight, False
                flight, buffers = [], 0
    yield flight, True


# Flights sent before the replies of the oldest are read: unread, replies pile up in the input
# buffers until the server, unable to send, stops reading what is sent to it (a deadlock).
_WINDOW = 4


async def _many(
    session: Session,
    stmt: Statement,
    types: tuple[int, ...],
    args: Iterable[Sequence[Any]],
    parse: bool,
) -> Exception | None:
    """Send the flights, reading the replies of older ones as new ones go out, then the rest
    of the reply to its ReadyForQuery. The server's error stops the sending (the server
    would skip the rest).

    Returns:
        The client's failure, for the caller to raise once the session is ready again.
    """
    proto = session.proto
    failure: Exception | None = None
    opening, rollback = True, proto.transaction_status == "I"
    first_parse = (stmt.sql, stmt.param_oids) if parse else None
    flights = _flights(session, stmt, types, args)
    reply = _ManyReply()
    sent: list[int] = []  # rows sent, after each flight
    try:
        while True:
            try:
                bound, last = next(flights)
            except Exception as exc:  # a row failed on the client
                if opening:
                    return exc  # nothing was sent
                failure = exc
                proto.send_abandon_flights(rollback)
                break
            parse_now = first_parse if opening else None
            proto.send_flight(stmt.name, bound, parse=parse_now, opening=opening, sync=last)
            opening = False
            if last:
                break
            await session.flush()  # the server works on it while the next is encoded
            sent.append(len(bound) + (sent[-1] if sent else 0))
            if len(sent) > _WINDOW:
                await reply.read(session, sent[-_WINDOW - 1])
                if proto.error_pending:
                    proto.send_abandon_flights(False)  # the Sync the failed rows wait for
                    break
    except BaseException:
        if not opening and failure is None and proto.state is State.BUSY:
            # interrupted (a timeout, a cancel): the background drain needs a Sync to end on
            proto.send_abandon_flights(rollback)
        raise
    reply.quiet = failure is not None and rollback
    await reply.read(session, None)
    if reply.error is not None:
        raise PostgresError.from_fields(reply.error.fields, stmt.sql)
    return failure


class _ManyReply:
    """executemany()'s reply as it is read: rows done (their CommandComplete), the server's
    error. BindComplete/CommandComplete pairs are dropped in bulk, without an event each."""

    __slots__ = ("done", "error", "quiet")

    def __init__(self) -> None:
        self.done = 0
        self.error: m.ErrorResponse | None = None
        self.quiet = False  # drop the warning our own ROLLBACK draws

    async def read(self, session: Session, until: int | None) -> None:
        """Read until ``until`` rows are done or the server failed; with None, until the
        ReadyForQuery."""
        proto = session.proto
        skip, next_event = proto.skip_command_results, proto.next_event
        while until is None or (self.done < until and not proto.error_pending):
            done = skip()
            if done:
                self.done += done
                session.events_in_op += 1
                continue
            event = next_event()
            if not is_message(event):
                if until is not None and proto.error_pending:
                    return  # nothing more comes before a Sync
                await session.fill()
                continue
            if self.quiet and _no_transaction_warning(event):
                continue  # our own ROLLBACK's, outside a transaction block: expected
            msg = session.filter(event)
            if isinstance(msg, m.ReadyForQuery):
                return
            if isinstance(msg, m.ErrorResponse):
                self.error = msg
            elif isinstance(msg, m.CommandComplete | m.EmptyQueryResponse):
                self.done += 1


def _no_transaction_warning(event: m.BackendMessage) -> bool:
    """The WARNING "there is no transaction in progress" that a ROLLBACK draws outside a
    transaction block (25P01)."""
    return isinstance(event, m.NoticeResponse) and event.fields.get("C") == "25P01"


class UnknownTypeError(InterfaceError, ValueError):
    """set_type_codec() & co. named a type the server does not have (asyncpg raises
    ValueError; earlier versions of this driver InterfaceError: both catch it)."""


_TYPE_QUERY = """
SELECT t.oid::pg_catalog.int8,
       CASE WHEN t.typcategory = 'A' THEN 'a' ELSE t.typtype END::pg_catalog.text
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typname = $1::pg_catalog.text AND n.nspname = $2::pg_catalog.text
"""


# The SQL-standard spellings asyncpg accepts for built-in types in set_type_codec()
_ALIASES = {
    "smallint": "int2",
    "int": "int4",
    "integer": "int4",
    "bigint": "int8",
    "decimal": "numeric",
    "real": "float4",
    "double precision": "float8",
    "timestamp with timezone": "timestamptz",
    "timestamp without timezone": "timestamp",
    "time with timezone": "timetz",
    "time without timezone": "time",
    "char": "bpchar",
    "character": "bpchar",
    "character varying": "varchar",
    "bit varying": "varbit",
}


async def _type_oid(session: Session, typename: str, schema: str) -> tuple[int, str]:
    if schema == "pg_catalog":
        typename = _ALIASES.get(typename.lower(), typename)
    rows = await catalog_query(session, _TYPE_QUERY, typename, schema)
    if not rows:
        raise UnknownTypeError(f"unknown type: {schema}.{typename} (it does not exist)")
    return int(rows[0][0]), rows[0][1]


def _drop_cached(session: Session) -> None:
    """Cached statements resolved their column decoders with the old codecs: drop them."""
    for stmt in session.cache.clear():
        forget_statement(session, stmt)


async def set_type_codec(
    session: Session,
    typename: str,
    schema: str,
    encoder: Callable[[Any], Any],
    decoder: Callable[[Any], Any],
    python_type: type | None,
    format: str = "text",
) -> None:
    """Register a codec for a named type and its array type (asyncpg's set_type_codec()).

    ``format='text'``: the encoder returns the type's text and the decoder gets it.
    ``format='tuple'`` (composite types): the decoder gets a tuple of the decoded attribute
    values and the encoder returns one. ``format='binary'`` needs the binary wire format,
    which this driver does not speak.

    Raises:
        InterfaceError: the type does not exist, or the format is not possible for it.
    """
    if format == "binary":
        raise InterfaceError(
            "format='binary' codecs are not supported: this driver exchanges values in "
            "the text format only; use format='text'"
        )
    if format not in ("text", "tuple"):
        raise InterfaceError(f"invalid format: {format!r} (expected 'text' or 'tuple')")
    oid, kind = await _type_oid(session, typename, schema)
    codecs = session.codecs
    if kind == "a":
        raise InterfaceError(
            f"cannot use custom codec on type {schema}.{typename}: it is an array type "
            "(a codec set on its element type is used for its elements)"
        )
    if kind == "d":
        raise UnsupportedClientFeatureError(
            f"custom codecs on domain types are not supported ({schema}.{typename}): "
            "results of a domain are described with its base type"
        )
    if kind == "c" and format != "tuple":
        raise UnsupportedClientFeatureError(
            "only tuple-format codecs can be used on composite types"
        )
    if format == "tuple" and kind == "c":
        stmt = Statement("", "", ())
        await ensure_types(session, stmt, (oid,))
        base_decode, base_encode = codecs.decoder(oid), codecs.encoder(oid)
        if base_encode is None:
            raise InterfaceError(f"no codec to build on for {schema}.{typename}")
        composite_encode = base_encode

        def decode_tuple(data: bytes) -> Any:
            return decoder(tuple(base_decode(data)))

        def encode_tuple(value: Any) -> str:
            return composite_encode(encoder(value))

        codecs.register(oid, encoder=encode_tuple, decoder=decode_tuple, python_type=python_type)
    elif format == "tuple":
        pair = TUPLE_CODECS.get(oid)
        if pair is None:
            raise UnsupportedClientFeatureError(
                f"format='tuple' is not supported for {schema}.{typename} by this driver: "
                "it supports composite types, date, time, timetz, timestamp, timestamptz "
                "and interval"
            )
        from_text, to_text = pair

        def decode_builtin(data: bytes) -> Any:
            return decoder(from_text(data))

        def encode_builtin(value: Any) -> str:
            return to_text(encoder(value))

        codecs.register(
            oid, encoder=encode_builtin, decoder=decode_builtin, python_type=python_type
        )
    else:

        def decode_text(data: bytes) -> Any:
            return decoder(data.decode())

        rows = await catalog_query(
            session,
            "SELECT typarray::pg_catalog.int8 FROM pg_catalog.pg_type WHERE oid = $1",
            str(oid),
        )
        codecs.register(
            oid, encoder=encoder, decoder=decode_text, array_oid=int(rows[0][0]) or None,
            python_type=python_type,
        )  # fmt: skip
    codecs.custom.add(oid)
    _drop_cached(session)


async def reset_type_codec(session: Session, typename: str, schema: str) -> None:
    """Undo set_type_codec(): the type gets its built-in codec back (or is introspected
    again), as asyncpg's reset_type_codec()."""
    oid, _ = await _type_oid(session, typename, schema)
    codecs = session.codecs
    codecs.custom.discard(oid)
    codecs.forget({oid})
    if default_registry.knows(oid):
        codecs.register(
            oid, encoder=default_registry.encoder(oid), decoder=default_registry.decoder(oid),
            array_oid=default_registry.array_of(oid),
        )  # fmt: skip
    _drop_cached(session)


async def set_builtin_type_codec(
    session: Session, typename: str, schema: str, codec_name: str
) -> None:
    """Use a built-in type's codec for another type (an extension's type that has the same
    text form), as asyncpg's set_builtin_type_codec(); ``codec_name`` names the built-in
    type (``'int4'``, ``'text'``, ``'pg_catalog.jsonb'``...).

    Raises:
        InterfaceError: the type, or the codec, is unknown.
    """
    oid, _ = await _type_oid(session, typename, schema)
    name = codec_name.rpartition(".")[2]
    encode: Callable[[Any], str] | None
    decode: Callable[[bytes], Any]
    if name == "hstore":  # asyncpg's 'pg_contrib.hstore': an extension type, no fixed OID
        encode, decode = st.encode_hstore, st.decode_hstore
    else:
        codec_oid, _ = await _type_oid(session, name, "pg_catalog")
        if not default_registry.knows(codec_oid):
            raise InterfaceError(f"unknown built-in codec: {codec_name!r}")
        encode, decode = default_registry.encoder(codec_oid), default_registry.decoder(codec_oid)
    session.codecs.register(oid, encoder=encode, decoder=decode, python_type=None)
    session.codecs.custom.add(oid)
    _drop_cached(session)


def reload_types(session: Session) -> None:
    """reload_schema_state(): forget the introspected types (they may have changed) and the
    statements decoded with them; codecs set with set_type_codec() stay."""
    session.codecs.drop_derived()
    _drop_cached(session)


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
    await ensure_types(session, stmt, types)
    if not name:
        stmt.param_oids = types
    return stmt, types
