"""Connection: the asyncpg-compatible facade over one Session; each method delegates."""
# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import copy as _copy
from .argcheck import executemany_rows
from .batch import BatchResult, BatchStatement, batch
from .cursor import CursorFactory, Source
from .errors import InterfaceError
from .listen import Listener, Listeners, LogListener, QueryLogger, TerminationListener
from .params import ConnectParams
from .prepared import PreparedStatement, Type, describe_types
from .protocol import PGProtocol
from .query import (
    executemany,
    prepare_named,
    reload_types,
    reset_type_codec,
    set_builtin_type_codec,
    set_type_codec,
    simple,
)
from .query import query as _query
from .record import Record, check_record_class
from .serverversion import ServerVersion, parse_server_version
from .session import Session
from .transaction import Transaction

if TYPE_CHECKING:
    from .transport.base import Stream

__all__ = ["RESET_QUERY", "Connection", "ConnectionProxy", "ConnectionSettings"]

# What DISCARD ALL does, minus DEALLOCATE ALL and DISCARD PLANS: the connection's statement
# cache stays valid, so a pooled connection keeps its prepared statements across borrowers.
RESET_QUERY = (
    "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)


class ConnectionSettings:
    """The server's run-time parameters as attributes (``conn.get_settings().TimeZone``):
    what it reported with ParameterStatus, kept current as it reports changes."""

    __slots__ = ("_parameters",)

    def __init__(self, parameters: dict[str, str]) -> None:
        self._parameters = parameters

    def __getattr__(self, name: str) -> str:
        try:
            return self._parameters[name]
        except KeyError:
            raise AttributeError(f"the server reported no parameter {name!r}") from None

    def __repr__(self) -> str:
        return f"<ConnectionSettings {self._parameters!r}>"


class ConnectionProxy:
    """Base of objects that stand for a connection of some class (a pool's
    ``PoolConnectionProxy``): ``isinstance(proxy, Connection)`` holds for them, as for
    asyncpg's proxies, so code that checks for a Connection accepts what a pool lends.
    """

    __slots__ = ("_connection_class",)

    def __init__(self, connection_class: type[Connection]) -> None:
        self._connection_class = connection_class


class _ConnectionType(type):
    """Connection's metaclass: a ConnectionProxy is an instance of the connection class it
    stands for (and of that class's bases), as asyncpg's ``ConnectionMeta`` makes it."""

    def __instancecheck__(cls, instance: object) -> bool:
        if type.__instancecheck__(cls, instance):
            return True
        return isinstance(instance, ConnectionProxy) and issubclass(instance._connection_class, cls)


class Connection(metaclass=_ConnectionType):
    """A connection to one database, used by one task at a time (use a Pool to share).

    Every operation runs on the connection's Session (``driver/session.py``), which owns
    the stream and the protocol core. After any exception the connection is either back in
    a known state (a ``PostgresError`` raised after ReadyForQuery) or broken and closed.
    """

    def __init__(
        self,
        stream: Stream,
        proto: PGProtocol,
        params: ConnectParams,
        *,
        cache_size: int = 100,
        record_class: type[Record] = Record,
    ) -> None:
        self._session = Session(stream, proto, params, cache_size=cache_size)
        self._listeners = Listeners(self._session, self)
        self._record_class = check_record_class(record_class)
        self._types: dict[int, Type] = {}  # described for PreparedStatement, by OID

    async def _startup(
        self,
        *,
        pipeline: bool = False,
        hear_first: bool = False,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """For connect(): see ``Session.startup``."""
        await self._session.startup(
            pipeline=pipeline, hear_first=hear_first, deadline=deadline, timeout=timeout
        )

    # ---- queries -----------------------------------------------------------------------

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Execute an SQL command (or several) and return its status tag, e.g.
        ``"INSERT 0 1"``.

        Without arguments this is a simple Query: several statements may be separated by
        semicolons and the tag is the last one's. With arguments it is one extended query.
        """
        operation = self._execute(query, args, timeout)
        if self._listeners.query_loggers:
            return await self._listeners.log_query(operation, query, args, timeout)
        return await operation

    async def _execute(self, query: str, args: tuple[Any, ...], timeout: float | None) -> str:
        session = self._session
        if not args:
            return await session.run(simple, session, query, timeout=timeout)
        _, tag = await _query(session, query, args, 0, timeout)
        return tag

    async def _rows(
        self,
        query: str,
        args: tuple[Any, ...],
        max_rows: int,
        timeout: float | None,
        record_class: type[Record] | None,
    ) -> list[Record]:
        """fetch() and fetchrow(): through the query loggers if there are any."""
        base = self._record_class if record_class is None else check_record_class(record_class)
        operation = _query(self._session, query, args, max_rows, timeout, base)
        if self._listeners.query_loggers:
            rows, _ = await self._listeners.log_query(operation, query, args, timeout)
        else:
            rows, _ = await operation
        return rows

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        """Run a command once per argument tuple, all pipelined before a single Sync."""
        self._check_open()
        rows = executemany_rows(args)  # lazily: a row that fails later is asyncpg's case
        first = next(rows, None)
        if first is None:
            return
        again = args if isinstance(args, list | tuple) else None
        operation = executemany(
            self._session, command, itertools.chain((first,), rows), timeout, again=again
        )
        if self._listeners.query_loggers:
            logged = tuple(args) if isinstance(args, list | tuple) else (first,)
            await self._listeners.log_query(operation, command, logged, timeout)
        else:
            await operation

    async def fetch(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> list[Record]:
        return await self._rows(query, args, 0, timeout, record_class)

    async def fetchrow(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> Record | None:
        rows = await self._rows(query, args, 1, timeout, record_class)
        return rows[0] if rows else None

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        rows = await self._rows(query, args, 1, timeout, None)
        return rows[0][column] if rows else None

    async def fetchmany(
        self,
        query: str,
        args: Iterable[Sequence[Any]],
        *,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> list[Record]:
        """Run a query once per argument sequence, in one round trip; every row of every run."""
        stmt = await self.prepare(query, timeout=timeout, record_class=record_class)
        try:
            return await stmt.fetchmany(args, timeout=timeout)
        finally:
            await stmt.close()

    async def prepare(
        self,
        query: str,
        *,
        name: str | None = None,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> PreparedStatement:
        """Prepare a statement (named ``name`` on the server if given); the server infers
        every parameter type.

        With ``statement_cache_size=0`` (PgBouncer in transaction mode) and no ``name``, the
        statement is the unnamed one, parsed again, with the learnt types, in the same flight
        as each execution: a named statement would live on a backend the next transaction may
        not get.
        """
        base = self._record_class if record_class is None else check_record_class(record_class)
        session = self._session
        stmt, types = await prepare_named(session, query, timeout, name)
        oids = [*types, *(f.type_oid for f in stmt.fields or ())]
        await describe_types(session, self._types, oids)
        return PreparedStatement(session, stmt, types, base, self._types)

    def cursor(
        self,
        query: str,
        *args: Any,
        prefetch: int | None = None,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> CursorFactory:
        """A cursor over a query's rows (inside a transaction only, as in asyncpg).

        ``async for row in conn.cursor(query, *args, prefetch=50)`` reads ``prefetch`` rows
        per round trip; ``cur = await conn.cursor(query, *args)`` gives a Cursor with
        ``fetch(n)``, ``fetchrow()`` and ``forward(n)``. See ``driver/cursor.py``.
        """
        self._check_open()
        base = self._record_class if record_class is None else check_record_class(record_class)
        return CursorFactory(self._session, Source(query, args), prefetch, timeout, base)

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
        return await batch(
            self._session, statements, transaction=transaction, isolation=isolation,
            readonly=readonly, deferrable=deferrable, timeout=timeout,
        )  # fmt: skip

    # ---- COPY --------------------------------------------------------------------------

    async def copy_to_table(
        self,
        table_name: str,
        *,
        source: _copy.Source,
        columns: Sequence[str] | None = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> str:
        """COPY ``source`` (a path, a binary file, or an (async) iterable of bytes) into a table.

        ``options`` are asyncpg's: format ('text', 'csv', 'binary'), delimiter, null, header,
        quote, escape, force_not_null, force_null, encoding. Returns the tag, e.g. "COPY 3".
        """
        return await _copy.copy_to_table(
            self._session, table_name, source=source, columns=columns,
            schema_name=schema_name, timeout=timeout, **options,
        )  # fmt: skip

    async def copy_records_to_table(
        self,
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
        return await _copy.copy_records_to_table(
            self._session, table_name, records=records, columns=columns,
            schema_name=schema_name, timeout=timeout,
        )  # fmt: skip

    async def copy_from_table(
        self,
        table_name: str,
        *,
        output: _copy.Output,
        columns: Sequence[str] | None = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> str:
        """COPY a table to ``output``: a path, a binary file, or a (coroutine) callable."""
        return await _copy.copy_from_table(
            self._session, table_name, output=output, columns=columns,
            schema_name=schema_name, timeout=timeout, **options,
        )  # fmt: skip

    async def copy_from_query(
        self,
        query: str,
        *args: Any,
        output: _copy.Output,
        timeout: float | None = None,
        **options: Any,
    ) -> str:
        """COPY a query's result to ``output``.

        COPY takes no bind parameters, so ``$n`` arguments are inlined as quoted literals
        of their text form (as asyncpg does).
        """
        return await _copy.copy_from_query(
            self._session, query, *args, output=output, timeout=timeout, **options
        )

    # ---- notices, LISTEN/NOTIFY, type codecs -------------------------------------------

    def add_log_listener(self, callback: LogListener) -> None:
        """Call ``callback(connection, message)`` for each NoticeResponse instead of logging;
        ``message`` is a PostgresLogMessage subclass (PostgresWarning, ...)."""
        self._check_open()
        if callback not in self._listeners.log_listeners:
            self._listeners.log_listeners.append(callback)

    def remove_log_listener(self, callback: LogListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.log_listeners.remove(callback)

    def add_termination_listener(self, callback: TerminationListener) -> None:
        """Call ``callback(connection)`` once the connection ends (closed, terminated or
        lost)."""
        if callback not in self._listeners.termination:
            self._listeners.termination.append(callback)

    def remove_termination_listener(self, callback: TerminationListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.termination.remove(callback)

    def add_query_logger(self, callback: QueryLogger) -> None:
        """Call ``callback(record)`` after each execute()/fetch*() with a LoggedQuery
        (query, args, timeout, elapsed, exception, conn_addr, conn_params)."""
        if callback not in self._listeners.query_loggers:
            self._listeners.query_loggers.append(callback)

    def remove_query_logger(self, callback: QueryLogger) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.query_loggers.remove(callback)

    @contextlib.contextmanager
    def query_logger(self, callback: QueryLogger) -> Iterator[None]:
        """``with conn.query_logger(callback):`` a query logger for the block."""
        self.add_query_logger(callback)
        try:
            yield
        finally:
            self.remove_query_logger(callback)

    async def add_listener(self, channel: str, callback: Listener) -> None:
        """LISTEN on ``channel``; ``callback(conn, pid, channel, payload)`` gets notifications.

        While any listener is registered, a reader task owned by the connection delivers
        notifications between operations; it hands the stream back when an operation starts
        and records (never raises) a failure, which the next call then raises.
        """
        self._check_open()
        await self._listeners.add(channel, callback)

    async def remove_listener(self, channel: str, callback: Listener) -> None:
        await self._listeners.remove(channel, callback)

    async def set_type_codec(
        self,
        typename: str,
        *,
        schema: str = "public",
        encoder: Callable[[Any], Any],
        decoder: Callable[[Any], Any],
        format: str = "text",
        python_type: type | None = None,
    ) -> None:
        """Use ``decoder(text)`` / ``encoder(value) -> text`` for a type (asyncpg's signature;
        ``format='tuple'`` for composite types; ``'binary'`` raises InterfaceError: the
        driver speaks the text format). Also covers the type's array type; with
        ``python_type``, bare values of that Python type are sent as this type."""
        self._check_open()
        await set_type_codec(self._session, typename, schema, encoder, decoder, python_type, format)

    async def reset_type_codec(self, typename: str, *, schema: str = "public") -> None:
        """Give a type back the codec it had before set_type_codec()."""
        await reset_type_codec(self._session, typename, schema)

    async def set_builtin_type_codec(
        self,
        typename: str,
        *,
        schema: str = "public",
        codec_name: str,
        format: str | None = None,
    ) -> None:
        """Decode and encode a type with a built-in type's codec (e.g. an extension's type
        whose text form is a built-in one's)."""
        if format not in (None, "text"):
            raise InterfaceError("only the text format is supported by this driver")
        await set_builtin_type_codec(self._session, typename, schema, codec_name)

    # ---- the rest of the public surface ------------------------------------------------

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> Transaction:
        """``async with conn.transaction():`` BEGIN/COMMIT, or a SAVEPOINT when nested."""
        self._check_open()
        return Transaction(self._session, isolation, readonly, deferrable)

    async def ready(self, *, timeout: float | None = None) -> None:
        """Wait until the server has accepted the connection.

        ``connect()`` returns before the server confirmed authentication (pipelined start-up:
        the first query travels with the last authentication message). Call this to learn at
        once, rather than from the first query, that the password is right and the database
        exists. Costs one round trip if nothing else was sent yet, nothing afterwards.

        Raises:
            PostgresError: the server refused (InvalidPassword, InvalidCatalogName...); the
                connection is then closed.
            TimeoutError: connect's deadline (or ``timeout``) passed first.
        """
        session = self._session
        if not session.started:
            await session.run(session.finish_startup, timeout=timeout)

    def _check_open(self) -> None:
        """For methods that would only fail later (or not at all) on a closed connection."""
        if self._session.is_closed():
            raise InterfaceError("connection is closed")

    def is_closed(self) -> bool:
        return self._session.is_closed()

    def is_in_transaction(self) -> bool:
        return self._session.proto.transaction_status != "I"

    def get_server_pid(self) -> int | None:
        return self._session.proto.backend_pid

    def get_server_version(self) -> ServerVersion:
        """The server's version, e.g. ``ServerVersion(major=15, minor=0, micro=4,
        releaselevel='final', serial=0)`` for 15.4 (see ``driver/serverversion.py``)."""
        return parse_server_version(self._session.proto.parameters.get("server_version", ""))

    def get_settings(self) -> ConnectionSettings:
        """The server's reported parameters as attributes (``.client_encoding``, ...)."""
        return ConnectionSettings(self._session.proto.parameters)

    async def reset(self, *, timeout: float | None = None) -> None:
        """Make the session as a new one would be: roll back, close cursors, UNLISTEN, reset
        settings, release advisory locks, and forget listener and log-listener callbacks."""
        await self.reset_session(timeout=timeout)

    async def reload_schema_state(self) -> None:
        """Forget what was learnt about the schema (statements, type descriptions): to call
        after changing a type or table that cached statements use."""
        self._types.clear()
        reload_types(self._session)  # learnt codecs, and the statements decoded with them

    @property
    def server_parameters(self) -> dict[str, str]:
        """ParameterStatus values the server reported (server_version, TimeZone, ...)."""
        return dict(self._session.proto.parameters)

    async def close(self, *, timeout: float | None = 5.0) -> None:
        """Send Terminate and close the stream, within ``timeout`` seconds."""
        await self._session.close(timeout)

    def terminate(self) -> None:
        """Close at once without a goodbye (for callers that cannot await)."""
        self._session.terminate()

    # ---- for the pool --------------------------------------------------------------------

    async def cancel_server_query(self) -> bool:
        """Ask the server, on a new stream, to cancel what this connection's backend runs
        (the pool's close() uses it on connections it had to cut).

        Returns:
            False if the server never told its backend key (nothing was sent).
        """
        return await self._session.cancel_server_query()

    def lend(self, face: object | None, on_end: Callable[[], None] | None = None) -> None:
        """For the pool: while lent, callbacks receive ``face`` (the borrower's proxy, as
        asyncpg's do) and ``on_end`` runs if the connection ends; ``None`` when given back,
        which also retires the statements, cursors and transactions the borrower made."""
        if face is None:
            self._session.returned += 1
        self._listeners.lend(self if face is None else face, on_end)

    def warn_dangling_listeners(self) -> None:
        """On release to a pool: asyncpg's InterfaceWarning for each kind of listener
        (notification, log) the borrower left registered; the reset then forgets them."""
        self._listeners.warn_dangling()

    async def reset_session(self, *, timeout: float | None = None) -> None:
        """The pool's default reset: roll back, then undo session state as DISCARD ALL
        would, keeping prepared statements (see RESET_QUERY).

        Listener callbacks go too: they belonged to the borrower, and the server no longer
        sends their notifications after UNLISTEN *.
        """
        self._listeners.clear()
        sql = ("ROLLBACK; " + RESET_QUERY) if self.is_in_transaction() else RESET_QUERY
        await self.execute(sql, timeout=timeout)

    def __repr__(self) -> str:
        session = self._session
        state = "closed" if session.is_closed() else session.proto.state.name.lower()
        return f"<Connection {session.params.user}@{session.params.describe()} {state}>"

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
