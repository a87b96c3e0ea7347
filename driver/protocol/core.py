"""PGProtocol: the state of one frontend/backend conversation, with no I/O of its own."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Literal

from ..auth.exchange import Authenticator, AuthGuard, Learn
from ..auth.methods import PASSWORD
from ..errors import InterfaceError, ProtocolError
from . import messages as m
from .batch import batch_messages
from .buffer import ReceiveBuffer

__all__ = ["NEED_DATA", "AuthGuard", "Event", "NeedData", "PGProtocol", "State"]


class State(enum.Enum):
    """Where the conversation is ("Message Flow"); ``PGProtocol._to`` makes every move."""

    STARTUP = "STARTUP"
    AUTH = "AUTH"
    READY = "READY"
    BUSY = "BUSY"
    COPY_IN = "COPY_IN"
    COPY_OUT = "COPY_OUT"
    FAILED = "FAILED"
    CLOSED = "CLOSED"


class NeedData(enum.Enum):
    """ "Need more bytes" is a value, not an exception: ``next_event()`` returns it."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA
Event = m.BackendMessage | Literal[NeedData.NEED_DATA]

# Operations whose whole reply may be a ReadyForQuery (a lone Sync): for any other, a
# ReadyForQuery before anything of the operation's own is a stray one ("Message Flow").
_SYNC_ONLY = "sync"
_RESULTS = (
    m.RowDescription, m.DataRow, m.CommandComplete, m.EmptyQueryResponse, m.ParseComplete,
    m.BindComplete, m.CloseComplete, m.NoData, m.PortalSuspended, m.ParameterDescription,
)  # fmt: skip
_PLAIN_RESULTS = frozenset(_RESULTS)  # results that change no state while BUSY


class PGProtocol:
    """One conversation, from StartupMessage to Terminate.

    The contract: ``send_*()`` queues bytes, ``data_to_send()`` drains them,
    ``receive_data()`` feeds input and ``next_event()`` returns the next event or
    ``NEED_DATA``. Authentication replies are queued by the core itself, so check
    ``data_to_send()`` after every event.

    Each operation ends with exactly one ReadyForQuery ("Message Flow"); pending operations sit
    in a FIFO, so several may be in flight at once. An ErrorResponse is held back and reported
    just before its operation's ReadyForQuery, so a caller sees one error per operation.
    Start-up is the first of them: once ``startup_queued``, operations may queue behind it.
    Every change of ``state`` goes through ``_to()``, and a failure through ``_fail()``.
    """

    def __init__(
        self,
        user: str,
        database: str,
        password: str | None = None,
        server_settings: dict[str, str] | None = None,
        *,
        pipeline_password: bool = False,
        channel_binding: bytes | None = None,
        guard: AuthGuard | None = None,
        predict: str | None = None,
        mechanisms: Sequence[str] = (),
        learn: Learn | None = None,
    ) -> None:
        """Queue the StartupMessage, and what is predicted of authentication after it.

        Args:
            predict: the authentication method the server is expected to ask for; its
                answer, when it has one without a challenge (the SCRAM client-first message,
                or the cleartext password if the guard allows it), is queued now. See
                ``driver.protocol.auth.Authenticator``. ``pipeline_password=True`` is
                ``predict="password"`` (Neon's ``pipelineConnect: "password"``).
            mechanisms, learn: passed to the Authenticator.
        """
        self.state = State.STARTUP
        self.transaction_status = "I"
        self.parameters: dict[str, str] = {}
        self.backend_pid: int | None = None
        self.backend_key: int | None = None
        self._out: list[bytes] = []
        self._buf = ReceiveBuffer()
        self._pending: deque[str] = deque(["startup"])
        self._replied = False  # the operation at the head of _pending has had a reply
        self._held: deque[m.BackendMessage] = deque()
        self._error: m.ErrorResponse | None = None
        self._failure: Exception | None = None
        self._auth = Authenticator(
            user, password, channel_binding=channel_binding, guard=guard,
            predict=PASSWORD if pipeline_password and predict is None else predict,
            mechanisms=mechanisms, learn=learn,
        )  # fmt: skip
        params = {"user": user, "database": database, "client_encoding": "UTF8"}
        # DateStyle is one of the parameters PgBouncer tracks per client; IntervalStyle is not
        # (a default PgBouncer refuses clients that send it), and 'postgres' is the server
        # default anyway: the interval codec reads the style the server reports instead.
        params["DateStyle"] = "ISO"
        params.update(server_settings or {})
        self._out.append(m.startup_message(params))
        self._out.extend(self._auth.start())

    @property
    def auth_method(self) -> str | None:
        """The method the server asked for ("trust", "password", "md5", "scram-sha-256")."""
        return self._auth.method

    @property
    def startup_queued(self) -> bool:
        """Everything the client will send for start-up is queued, if the server does what
        was predicted: operations may now be queued behind it, in the same flight (their
        results follow the start-up's ReadyForQuery, "Pipelining")."""
        return self.state is not State.STARTUP or self._auth.complete

    @property
    def work(self) -> Callable[[], None] | None:
        """CPU-heavy work (SCRAM's PBKDF2) the caller must run, off its event loop, before
        the conversation can go on; then call ``work_done()``. None when there is none."""
        return self._auth.work

    def work_done(self) -> None:
        """``work`` has run: queue the reply that waited for it (check ``data_to_send()``)."""
        self._out.extend(self._auth.resume())

    @property
    def pending(self) -> int:
        """How many operations still await their ReadyForQuery (parsed but held counts too)."""
        return len(self._pending) + len(self._held)

    @property
    def error_pending(self) -> bool:
        """The operation in progress failed: its ErrorResponse is held until its
        ReadyForQuery, which comes only after a Sync (the server skips the rest until then)."""
        return self._error is not None

    # ---- state transitions -------------------------------------------------------------

    def _to(self, state: State) -> None:
        """Move to ``state``; FAILED is reached only through ``_fail()``."""
        if self.state is not State.FAILED:
            self.state = state

    def _fail(self, exc: Exception) -> None:
        """The conversation cannot go on: every later call raises ``exc``."""
        self._failure = exc
        self.state = State.FAILED

    def _ready(self, msg: m.ReadyForQuery) -> m.BackendMessage:
        """The operation at the head of the FIFO ended ("Message Flow")."""
        pending = self._pending
        if not pending:
            raise ProtocolError("ReadyForQuery with no operation pending")
        if not self._replied and pending[0] != _SYNC_ONLY and self._error is None:
            # Nothing of this operation arrived yet: the ReadyForQuery belongs to no request
            # of ours, and taking it would shift every later result by one.
            raise ProtocolError(f"unexpected ReadyForQuery before any reply to {pending[0]}")
        pending.popleft()
        self._replied = False
        self.transaction_status = msg.status
        self._to(State.BUSY if pending else State.READY)
        if self._error is not None:
            error, self._error = self._error, None
            self._held.append(msg)
            return error
        return msg

    # ---- output ------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued so far; the caller must write it all, in order."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _check_can_send(self) -> None:
        if self._failure is not None:
            raise ProtocolError(f"connection unusable after protocol failure: {self._failure}")
        match self.state:
            case State.CLOSED:
                raise InterfaceError("connection is closed")
            case State.STARTUP | State.AUTH if not self.startup_queued:
                raise InterfaceError("connection is still starting up")
            case State.COPY_IN | State.COPY_OUT:
                raise InterfaceError("a COPY is in progress on this connection")

    def _queue(self, kind: str, parts: Iterable[bytes]) -> None:
        self._check_can_send()
        self._out.extend(parts)
        self._pending.append(kind)
        if self.state is State.READY:
            self._to(State.BUSY)  # during start-up, its ReadyForQuery moves us on

    def send_query(self, sql: str) -> None:
        """Simple Query: any number of statements, one ReadyForQuery at the end."""
        self._queue("query", (m.query(sql),))

    def send_prepare(self, name: str, sql: str, param_oids: Sequence[int] = ()) -> None:
        """Parse + Describe(statement) + Sync: yields ParameterDescription and RowDescription."""
        self._queue("prepare", (m.parse(name, sql, param_oids), m.describe(b"S", name), m.SYNC))

    def send_prepare_execute(
        self,
        name: str,
        sql: str,
        param_oids: Sequence[int],
        values: Sequence[bytes | None],
        *,
        max_rows: int = 0,
    ) -> None:
        """Parse + Describe(statement) + Bind + Execute + Sync: a first execution in one trip.

        Results are in text format, so the row description is not needed before Bind.
        """
        parts = (
            m.parse(name, sql, param_oids),
            m.describe(b"S", name),
            m.bind("", name, values),
            m.execute("", max_rows),
            m.SYNC,
        )
        self._queue("execute", parts)

    def send_execute(
        self, statement: str, values: Sequence[bytes | None], *, max_rows: int = 0
    ) -> None:
        """Bind + Execute + Sync on a prepared statement ("Extended Query")."""
        if self.state is State.READY:  # the hot path (READY: nothing for _check_can_send)
            self._out.append(m.bind_execute_sync(statement, values, max_rows))
            self._pending.append("execute")
            self.state = State.BUSY  # _to(BUSY), inline: READY is never FAILED
            return
        self._queue("execute", (m.bind_execute_sync(statement, values, max_rows),))

    def send_portal(
        self,
        portal: str,
        statement: str,
        values: Sequence[bytes | None],
        *,
        max_rows: int | None = None,
        parse: tuple[str, Sequence[int]] | None = None,
    ) -> None:
        """Bind a named portal (a cursor) + Sync, with Execute(portal, ``max_rows``) before
        the Sync unless ``max_rows`` is None, and the statement parsed and described first
        with ``parse=(sql, param_oids)``.

        Inside a transaction block the portal outlives the Sync, until the block ends or
        ``send_close_portal()``; an Execute with a row limit stops at it with
        PortalSuspended ("Extended Query").
        """
        parts: list[bytes] = []
        if parse is not None:
            parts.append(m.parse(statement, parse[0], parse[1]))
            parts.append(m.describe(b"S", statement))
        parts.append(m.bind(portal, statement, values))
        if max_rows is not None:
            parts.append(m.execute(portal, max_rows))
        parts.append(m.SYNC)
        self._queue("portal", parts)

    def send_portal_execute(self, portal: str, max_rows: int) -> None:
        """Execute(portal, max_rows) + Sync: the next rows of an open portal."""
        self._queue("portal", (m.execute(portal, max_rows), m.SYNC))

    def send_close_portal(self, portal: str) -> None:
        """Close(portal) + Sync."""
        self._queue("portal", (m.close(b"P", portal), m.SYNC))

    def send_execute_many(
        self,
        statement: str,
        rows: Iterable[Sequence[bytes | None]],
        *,
        parse: tuple[str, Sequence[int]] | None = None,
    ) -> None:
        """One Bind + Execute per row, then a single Sync: the whole batch is one round trip.

        With ``parse=(sql, param_oids)`` the statement is parsed and described first.
        """
        bound = [m.bind_execute(statement, values) for values in rows]
        self.send_flight(statement, bound, parse=parse, opening=True, sync=True)

    def send_flight(
        self,
        statement: str,
        bound: Iterable[bytes],
        *,
        parse: tuple[str, Sequence[int]] | None = None,
        opening: bool,
        sync: bool,
    ) -> None:
        """Part of an executemany() sent in flights, as asyncpg sends it: ``bound`` holds
        ``m.bind_execute()`` messages. The ``opening`` flight starts the operation (with
        Parse + Describe first if ``parse=(sql, param_oids)``); the one with ``sync`` ends
        it. Until then the rows run in one implicit transaction (or the open block).
        """
        parts: list[bytes] = []
        if parse is not None:
            parts.append(m.parse(statement, parse[0], parse[1]))
            parts.append(m.describe(b"S", statement))
        parts.extend(bound)
        if sync:
            parts.append(m.SYNC)
        if opening:
            self._queue("execute_many" if len(parts) > 1 else _SYNC_ONLY, parts)
        else:
            self._check_can_send()
            self._out.extend(parts)

    def send_abandon_flights(self, rollback: bool) -> None:
        """End an executemany() opened by ``send_flight()`` early (the client failed): with
        ``rollback`` a ROLLBACK first, so that the Sync commits none of the rows sent (outside
        a transaction block, where they form an implicit one), else just the Sync (inside
        one, the rows sent stay in it, as asyncpg leaves them).

        ROLLBACK goes as an extended query, which the server skips, as the rest, after an
        error; the Sync then ends the failed implicit transaction anyway.
        """
        self._check_can_send()
        if rollback:
            self._out += (m.parse("", "ROLLBACK"), m.bind("", "", ()), m.execute("", 0))
        self._out.append(m.SYNC)

    def send_batch(
        self,
        statements: Sequence[tuple[str, Sequence[int], Sequence[bytes | None]]],
        *,
        before: str | None = None,
        after: str | None = None,
        sync_each: bool = False,
        then: str | None = None,
    ) -> int:
        """Several statements in one flight; see ``driver.protocol.batch.batch_messages``.

        Returns:
            How many ReadyForQuery messages the batch produces (one pending operation each).
        """
        parts, syncs = batch_messages(
            statements, before=before, after=after, sync_each=sync_each, then=then
        )
        self._queue("batch" if parts[0] != m.SYNC else _SYNC_ONLY, parts)
        self._pending.extend(["batch"] * (syncs - 1))
        return syncs

    def send_close_statement(self, name: str) -> None:
        """Close a named statement; no Sync, so it travels with the next operation."""
        self._check_can_send()
        self._out.append(m.close(b"S", name))

    def send_copy_data(self, data: bytes) -> None:
        if self.state is State.COPY_IN:
            self._out.append(m.copy_data(data))
        elif not self._copy_aborted():
            raise InterfaceError("not in COPY IN mode")

    def send_copy_done(self) -> None:
        self._end_copy_in(m.COPY_DONE)

    def send_copy_fail(self, reason: str) -> None:
        self._end_copy_in(m.copy_fail(reason))

    def _end_copy_in(self, message: bytes) -> None:
        if self.state is State.COPY_IN:
            self._out.append(message)
            self._to(State.BUSY)
        elif not self._copy_aborted():
            raise InterfaceError("not in COPY IN mode")

    def _copy_aborted(self) -> bool:
        # After an error during COPY IN the server drops CopyData/CopyDone ("COPY Operations").
        return self.state is State.BUSY and bool(self._pending) and self._error is not None

    def send_terminate(self) -> None:
        if self.state not in (State.CLOSED, State.FAILED):
            self._out.append(m.TERMINATE)
        self._to(State.CLOSED)

    # ---- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the server; ``b""`` means the server closed the stream."""
        if not data:
            self._to(State.CLOSED)
            return
        self._buf.feed(data)

    def read_rows(self, rows: list[tuple[bytes | None, ...]]) -> None:
        """Append the values of the DataRows now at the head of the input to ``rows``.

        A shortcut past ``next_event()`` for result rows (the bulk of any result): it stops
        at the first message that is not a complete DataRow, which ``next_event()`` then
        handles as usual.
        """
        if self.state is not State.BUSY or self._error is not None or self._held:
            return
        before = len(rows)
        try:
            self._buf.read_data_rows(rows)
        except ProtocolError as exc:
            self._fail(exc)
            raise
        if len(rows) != before:
            self._replied = True

    def read_copy_data(self, chunks: list[bytes]) -> None:
        """Append the payloads of the CopyData messages now at the head of the input to
        ``chunks``: a shortcut past ``next_event()`` for COPY TO STDOUT's rows, as
        ``read_rows()`` is for a result's. It stops at the first message that is not a
        complete CopyData, which ``next_event()`` then handles as usual.
        """
        if self.state is not State.COPY_OUT or self._held:
            return
        before = len(chunks)
        try:
            self._buf.read_copy_data(chunks)
        except ProtocolError as exc:
            self._fail(exc)
            raise
        if len(chunks) != before:
            self._replied = True

    def skip_command_results(self) -> int:
        """Drop the BindComplete and CommandComplete messages now at the head of the input;
        return how many CommandComplete were dropped. A shortcut past ``next_event()`` for a
        caller that only counts the statements done (executemany(): a pair per row); it
        stops at anything else, which ``next_event()`` then handles as usual.
        """
        if self.state is not State.BUSY or self._error is not None or self._held:
            return 0
        before = len(self._buf)
        done = self._buf.skip_command_results()
        if len(self._buf) != before:
            self._replied = True
        return done

    def read_result(self, rows: list[tuple[bytes | None, ...]]) -> str | None:
        """Finish the operation in progress at once if the rest of its result is here.

        A shortcut past ``next_event()`` for the common end of an extended query: rows,
        then CommandComplete (or PortalSuspended) and ReadyForQuery, all in the input.

        Returns:
            The command tag ("" after PortalSuspended) once the operation's ReadyForQuery is
            consumed (its values appended to ``rows``); None otherwise, having consumed no
            more than ``read_rows()`` would: carry on with ``next_event()``.
        """
        if self.state is not State.BUSY or self._error is not None or self._held:
            return None
        before = len(rows)
        try:
            done = self._buf.read_result(rows)
        except ProtocolError as exc:
            self._fail(exc)
            raise
        if done is None:
            if len(rows) != before:
                self._replied = True
            return None
        tag, self.transaction_status = done
        pending = self._pending
        pending.popleft()  # BUSY: an operation is pending; it had its CommandComplete
        self._replied = False
        self.state = State.BUSY if pending else State.READY  # _to(), inline: not FAILED
        return tag

    def next_event(self) -> Event:
        """The next event for the caller, or NEED_DATA.

        Raises:
            ProtocolError: the input is malformed or out of place (the state becomes FAILED and
                every later call raises too).
            InterfaceError: the server asked for an auth method or a password we do not have.
        """
        if self._failure is not None:
            raise self._failure
        if self._held:
            return self._held.popleft()
        buf = self._buf
        while True:
            try:
                frame = buf.next_message()
                if frame is None:
                    return NEED_DATA
                event = self._handle(m.parse_message(*frame))
            except (ProtocolError, InterfaceError) as exc:
                self._fail(exc)
                raise
            if event is not None:
                return event

    def _handle(self, msg: m.BackendMessage) -> m.BackendMessage | None:
        if self.state is State.BUSY:  # the hot path: the operation in progress
            if msg.__class__ in _PLAIN_RESULTS and self._error is None:
                self._replied = True
                return msg  # rows, BindComplete, CommandComplete...: nothing to track
        match msg:
            case m.NoticeResponse() | m.NotificationResponse():
                return msg
            case m.ParameterStatus(name, value):
                self.parameters[name] = value
                return None
        if self.state in (State.STARTUP, State.AUTH):
            return self._handle_startup(msg)
        match msg:
            case m.ReadyForQuery():
                return self._ready(msg)
            case m.ErrorResponse(fields):
                if fields.get("V", fields.get("S")) in ("FATAL", "PANIC"):
                    self._to(State.CLOSED)
                    return msg
                if not self._pending:
                    raise ProtocolError(f"ErrorResponse with no operation pending: {fields}")
                self._replied = True
                if self._error is None:
                    self._error = msg
                if self.state in (State.COPY_IN, State.COPY_OUT):
                    self._to(State.BUSY)
                return None
        if self._error is not None:
            return None  # the failed operation's leftovers, until its ReadyForQuery
        if not self._pending:
            raise ProtocolError(f"unexpected {type(msg).__name__} with no operation pending")
        match msg, self.state:
            case m.CopyInResponse(), State.BUSY:
                self._to(State.COPY_IN)
            case m.CopyOutResponse(), State.BUSY:
                self._to(State.COPY_OUT)
            case m.CopyData(), State.COPY_OUT:
                pass
            case m.CopyDone(), State.COPY_OUT:
                self._to(State.BUSY)
            case _:
                raise ProtocolError(f"unexpected {type(msg).__name__} in state {self.state.name}")
        self._replied = True
        return msg

    def _handle_startup(self, msg: m.BackendMessage) -> m.BackendMessage | None:
        match msg:
            case m.AuthenticationOk():
                self._auth.on_ok()
                self._to(State.AUTH)
                return None
            case m.ReadyForQuery():
                if self.state is not State.AUTH:
                    raise ProtocolError("ReadyForQuery before authentication completed")
                self._replied = True
                return self._ready(msg)
            case m.BackendKeyData(pid, key):
                self.backend_pid, self.backend_key = pid, key
                return None
            case m.ErrorResponse():
                # the server closes the connection after a start-up error
                self._to(State.CLOSED)
                self._pending.clear()
                return msg
            case m.NegotiateProtocolVersion():
                return None  # we ask for no protocol extensions, so any minor version will do
        if self.state is State.AUTH:
            raise ProtocolError(f"unexpected {type(msg).__name__} after AuthenticationOk")
        # "Message Flow": answer the request; anything queued behind the start-up (a first
        # query) would be read by the server as the answer to an unpredicted request.
        self._out.extend(self._auth.on_request(msg, committed=len(self._pending) > 1))
        return None
