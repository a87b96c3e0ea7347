"""COPY FROM STDIN / TO STDOUT against a Session ("COPY Operations" in the PostgreSQL docs)."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import inspect
import os
import re
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Any, BinaryIO

from . import query
from .errors import InterfaceError, PostgresError
from .protocol import messages as m
from .session import Session, is_message

__all__ = ["copy_from_query", "copy_from_table", "copy_records_to_table", "copy_to_table"]

Source = str | os.PathLike[str] | BinaryIO | AsyncIterable[bytes] | Iterable[bytes]
Output = str | os.PathLike[str] | BinaryIO | Callable[[bytes], Awaitable[Any] | Any]
_FLUSH_AT = 1 << 16
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_PARAM = re.compile(r"\$(\d+)")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _target(name: str, schema: str | None, columns: Sequence[str] | None) -> str:
    out = f"{_ident(schema)}.{_ident(name)}" if schema else _ident(name)
    if columns:
        out += "(" + ", ".join(_ident(c) for c in columns) + ")"
    return out


def _options(
    format: str | None = None,
    delimiter: str | None = None,
    null: str | None = None,
    header: bool | None = None,
    quote: str | None = None,
    escape: str | None = None,
    force_quote: bool | Sequence[str] | None = None,
    force_not_null: Sequence[str] | None = None,
    force_null: Sequence[str] | None = None,
    encoding: str | None = None,
) -> str:
    """The ``WITH (...)`` clause, from asyncpg's keyword names."""
    opts = []
    if format is not None:
        if format not in ("text", "csv", "binary"):
            raise InterfaceError(f"COPY format must be text, csv or binary, got {format!r}")
        opts.append(f"FORMAT {format}")
    for key, value in (("DELIMITER", delimiter), ("NULL", null), ("QUOTE", quote),
                       ("ESCAPE", escape), ("ENCODING", encoding)):  # fmt: skip
        if value is not None:
            opts.append(f"{key} {_literal(value)}")
    if header is not None:
        opts.append(f"HEADER {'true' if header else 'false'}")
    if force_quote is True:
        opts.append("FORCE_QUOTE *")
    elif force_quote:
        opts.append("FORCE_QUOTE (" + ", ".join(_ident(c) for c in force_quote) + ")")
    for key, cols in (("FORCE_NOT_NULL", force_not_null), ("FORCE_NULL", force_null)):
        if cols:
            opts.append(f"{key} (" + ", ".join(_ident(c) for c in cols) + ")")
    return f" WITH ({', '.join(opts)})" if opts else ""


async def _chunks(source: Source) -> AsyncIterable[bytes]:
    """The source's bytes in pieces of at most 64 KiB (asyncpg's kinds of source: a path, a
    binary file, an async iterable, a bytes-like object; also a plain iterable of bytes)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:  # noqa: ASYNC230 - local file, read in 64 KiB pieces
            while chunk := f.read(_FLUSH_AT):
                yield chunk
    elif hasattr(source, "read"):
        while chunk := source.read(_FLUSH_AT):
            yield chunk
    elif isinstance(source, AsyncIterable):
        async for chunk in source:
            yield bytes(chunk)
    elif isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), _FLUSH_AT):
            yield bytes(view[start : start + _FLUSH_AT])
    else:
        for chunk in source:
            yield bytes(chunk)


def _check_source(source: object) -> None:
    """Refuse, before anything is sent, a source none of ``_chunks``' branches can read."""
    if isinstance(source, str | os.PathLike | bytes | bytearray | memoryview | AsyncIterable):
        return
    if hasattr(source, "read") or isinstance(source, Iterable):
        return
    raise TypeError(
        "source is expected to be a file-like object, a path-like object, an asynchronous "
        f"iterable or a bytes-like object, not {type(source).__name__}"
    )


def _writer(output: object) -> tuple[Callable[[bytes], Any], BinaryIO | None]:
    """The callable COPY data goes to, and the file to close afterwards (opened here for a
    path); checked before anything is sent, with asyncpg's message."""
    if isinstance(output, str | os.PathLike):
        f = open(output, "wb")  # the caller closes it
        return f.write, f
    if hasattr(output, "write"):
        return output.write, None
    if callable(output):
        return output, None
    raise TypeError(
        "output is expected to be a file-like object, a path-like object or a coroutine "
        f"function, not {type(output).__name__}"
    )


async def _copy_in(session: Session, sql: str, chunks: AsyncIterable[bytes]) -> str:
    proto = session.proto
    proto.send_query(sql)
    tag = ""
    failure: Exception | None = None

    async def on_event(event: m.BackendMessage) -> None:
        nonlocal tag, failure
        if isinstance(event, m.CopyInResponse):
            try:
                queued = 0
                async for chunk in chunks:
                    proto.send_copy_data(chunk)
                    queued += len(chunk)
                    if queued >= _FLUSH_AT:  # bounded memory for any source size
                        await session.flush()
                        queued = 0
            except Exception as exc:
                # Tell the server to abandon the COPY, and raise the caller's error.
                failure = exc
                proto.send_copy_fail(f"client error: {type(exc).__name__}")
            else:
                proto.send_copy_done()
        elif isinstance(event, m.CommandComplete):
            tag = event.tag

    try:
        await session.until_ready(on_event)
    except PostgresError:
        if failure is None:
            raise
    if failure is not None:
        raise failure
    return tag


async def _copy_out(session: Session, sql: str, write: Callable[[bytes], Any]) -> str:
    """COPY TO STDOUT, handing ``write`` the data in chunks: everything that arrived in one
    read of the stream goes in one call (asyncpg's granularity), not one call per row."""
    proto = session.proto
    proto.send_query(sql)
    next_event, filter_event, read_copy_data = (
        proto.next_event,
        session.filter,
        proto.read_copy_data,
    )
    tag = ""
    error: m.ErrorResponse | None = None
    buffered: list[bytes] = []

    async def deliver() -> None:
        data = b"".join(buffered)
        buffered.clear()
        result = write(data)
        if inspect.isawaitable(result):
            await result

    while True:
        read_copy_data(buffered)  # the rows' CopyData, without an event each
        event = next_event()
        if not is_message(event):
            if buffered:
                await deliver()
            await session.fill()
            continue
        msg = filter_event(event)
        if msg is None:
            continue
        if isinstance(msg, m.CopyData):
            buffered.append(msg.data)
            continue
        if buffered:
            await deliver()
        if isinstance(msg, m.ReadyForQuery):
            break
        if isinstance(msg, m.ErrorResponse):
            error = msg
        elif isinstance(msg, m.CommandComplete):
            tag = msg.tag
    if error is not None:
        raise PostgresError.from_fields(error.fields, sql)
    return tag


async def _copy_out_to(session: Session, sql: str, output: Output, timeout: float | None) -> str:
    write, opened = _writer(output)
    try:
        return await session.run(_copy_out, session, sql, write, timeout=timeout)
    finally:
        if opened is not None:
            opened.close()


async def copy_to_table(
    session: Session,
    table_name: str,
    *,
    source: Source,
    columns: Sequence[str] | None = None,
    schema_name: str | None = None,
    timeout: float | None = None,
    **options: Any,
) -> str:
    """COPY ``source`` (a path, a binary file, or an (async) iterable of bytes) into a table.

    ``options`` are asyncpg's: format ('text', 'csv', 'binary'), delimiter, null, header,
    quote, escape, force_not_null, force_null, encoding. Returns the tag, e.g. "COPY 3".
    """
    _check_source(source)
    sql = f"COPY {_target(table_name, schema_name, columns)} FROM STDIN{_options(**options)}"
    return await session.run(_copy_in, session, sql, _chunks(source), timeout=timeout)


async def copy_records_to_table(
    session: Session,
    table_name: str,
    *,
    records: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
    columns: Sequence[str] | None = None,
    schema_name: str | None = None,
    timeout: float | None = None,
) -> str:
    """COPY Python rows into a table, as COPY text format encoded by the type registry.

    Values are encoded for their column's type, learnt first with one Describe (asyncpg
    introspects the table too): a Python type alone does not say it ("char" values are
    bytes, which would be sent as bytea text; a JSON array is a list, not an SQL array).
    """
    oids = await _column_types(session, table_name, schema_name, columns, timeout)
    encode = session.codecs.encode

    def line(record: Sequence[Any]) -> bytes:
        if len(record) != len(oids):
            raise InterfaceError(f"a record has {len(record)} values for {len(oids)} columns")
        fields = []
        for value, oid in zip(record, oids, strict=True):
            data = encode(value, oid)[1]
            fields.append("\\N" if data is None else data.decode().translate(_ESCAPES))
        return ("\t".join(fields) + "\n").encode()

    async def each() -> AsyncIterable[Sequence[Any]]:
        if isinstance(records, AsyncIterable):
            async for rec in records:
                yield rec
        else:
            for rec in records:
                yield rec

    async def lines() -> AsyncIterable[bytes]:
        batch: list[bytes] = []
        size = 0
        async for rec in each():
            batch.append(line(rec))
            size += len(batch[-1])
            if size >= _FLUSH_AT:
                yield b"".join(batch)
                batch, size = [], 0
        if batch:
            yield b"".join(batch)

    sql = f"COPY {_target(table_name, schema_name, columns)} FROM STDIN"
    return await session.run(_copy_in, session, sql, lines(), timeout=timeout)


async def _column_types(
    session: Session,
    table_name: str,
    schema_name: str | None,
    columns: Sequence[str] | None,
    timeout: float | None,
) -> tuple[int, ...]:
    """Type OIDs of the columns COPY will fill, in order (``*`` is what COPY takes by
    default, except generated columns, which COPY skips: name ``columns`` then)."""
    cols = ", ".join(_ident(c) for c in columns) if columns else "*"
    table = _target(table_name, schema_name, None)
    stmt, _ = await query.prepare_named(session, f"select {cols} from {table} limit 0", timeout)
    try:
        return tuple(f.type_oid for f in stmt.fields or ())
    finally:
        query.forget_statement(session, stmt)


async def copy_from_table(
    session: Session,
    table_name: str,
    *,
    output: Output,
    columns: Sequence[str] | None = None,
    schema_name: str | None = None,
    timeout: float | None = None,
    **options: Any,
) -> str:
    """COPY a table to ``output``: a path, a binary file, or a (coroutine) callable."""
    sql = f"COPY {_target(table_name, schema_name, columns)} TO STDOUT{_options(**options)}"
    return await _copy_out_to(session, sql, output, timeout)


async def copy_from_query(
    session: Session,
    sql_query: str,
    *args: Any,
    output: Output,
    timeout: float | None = None,
    **options: Any,
) -> str:
    """COPY a query's result to ``output``.

    COPY takes no bind parameters, so ``$n`` arguments are inlined as quoted literals
    of their text form (as asyncpg does).
    """
    if args:
        texts = []
        for value in args:
            data = session.codecs.encode(value, 0)[1]
            texts.append("NULL" if data is None else _literal(data.decode()))
        sql_query = _PARAM.sub(lambda mt: texts[int(mt.group(1)) - 1], sql_query)
    sql = f"COPY ({sql_query}) TO STDOUT{_options(**options)}"
    return await _copy_out_to(session, sql, output, timeout)
