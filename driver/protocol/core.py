"""PGProtocol: the state of one frontend/backend conversation, with no I/O of its own."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from ..errors import InterfaceError, ProtocolError
from . import messages as m
from .auth import PASSWORD, Authenticator, AuthGuard, Learn
from .buffer import ReceiveBuffer
from .requests import Requests
from .state import NEED_DATA, State, _NeedData

__all__ = ["NEED_DATA", "AuthGuard", "Event", "PGProtocol", "State"]


Event = m.BackendMessage | _NeedData


_ASYNC = (m.NoticeResponse, m.NotificationResponse)


class PGProtocol(Requests):
    """One conversation, from StartupMessage to Terminate.

    The contract: ``send_*()`` (see ``Requests``) queues bytes, ``data_to_send()`` drains
    them, ``receive_data()`` feeds input and ``next_event()`` returns the next event or
    ``NEED_DATA``. Authentication replies are queued by the core itself, so check
    ``data_to_send()`` after every event.

    Each operation ends with exactly one ReadyForQuery ("Message Flow"); pending operations sit
    in a FIFO, so several may be in flight at once. An ErrorResponse is held back and reported
    just before its operation's ReadyForQuery, so a caller sees one error per operation.
    Start-up is the first of them: once ``startup_queued``, operations may queue behind it.
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

    # ---- output ------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued so far; the caller must write it all, in order."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    @property
    def pending(self) -> int:
        """How many operations still await their ReadyForQuery (parsed but held counts too)."""
        return len(self._pending) + len(self._held)

    # ---- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the server; ``b""`` means the server closed the stream."""
        if not data:
            if self.state is not State.FAILED:
                self.state = State.CLOSED
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
        try:
            self._buf.read_data_rows(rows)
        except ProtocolError as exc:
            self._failure = exc
            self.state = State.FAILED
            raise

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
        try:
            done = self._buf.read_result(rows)
        except ProtocolError as exc:
            self._failure = exc
            self.state = State.FAILED
            raise
        if done is None:
            return None
        tag, self.transaction_status = done
        pending = self._pending
        pending.popleft()  # BUSY: an operation is pending
        self.state = State.BUSY if pending else State.READY
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
                msg = m.parse_message(*frame)
                event = self._handle(msg)
            except (ProtocolError, InterfaceError) as exc:
                self._failure = exc
                self.state = State.FAILED
                raise
            if event is not None:
                return event

    def _handle(self, msg: m.BackendMessage) -> m.BackendMessage | None:
        if self.state is State.BUSY:  # the hot path: the operation in progress
            cls = type(msg)
            if cls in _PLAIN_RESULTS and self._error is None:
                return msg  # rows, BindComplete, CommandComplete...: nothing to track
            if cls is m.ReadyForQuery:
                return self._ready(msg)  # type: ignore[arg-type]
        if isinstance(msg, _ASYNC):
            return msg
        if isinstance(msg, m.ParameterStatus):
            self.parameters[msg.name] = msg.value
            return None
        if self.state in (State.STARTUP, State.AUTH):
            return self._handle_startup(msg)
        if isinstance(msg, m.ReadyForQuery):
            return self._ready(msg)
        if isinstance(msg, m.ErrorResponse):
            if msg.fields.get("V", msg.fields.get("S")) in ("FATAL", "PANIC"):
                self.state = State.CLOSED
                return msg
            if not self._pending:
                raise ProtocolError(f"ErrorResponse with no operation pending: {msg.fields}")
            if self._error is None:
                self._error = msg
            if self.state in (State.COPY_IN, State.COPY_OUT):
                self.state = State.BUSY
            return None
        if self._error is not None:
            return None  # the failed operation's leftovers, until its ReadyForQuery
        if not self._pending:
            raise ProtocolError(f"unexpected {type(msg).__name__} with no operation pending")
        if isinstance(msg, m.CopyInResponse):
            self.state = State.COPY_IN
        elif isinstance(msg, m.CopyOutResponse):
            self.state = State.COPY_OUT
        elif isinstance(msg, m.CopyDone) and self.state is State.COPY_OUT:
            self.state = State.BUSY
        elif not isinstance(msg, _RESULTS):
            raise ProtocolError(f"unexpected {type(msg).__name__} in state {self.state.name}")
        return msg

    def _ready(self, msg: m.ReadyForQuery) -> m.BackendMessage:
        if not self._pending:
            raise ProtocolError("ReadyForQuery with no operation pending")
        self._pending.popleft()
        self.transaction_status = msg.status
        self.state = State.BUSY if self._pending else State.READY
        if self._error is not None:
            error, self._error = self._error, None
            self._held.append(msg)
            return error
        return msg

    def _handle_startup(self, msg: m.BackendMessage) -> m.BackendMessage | None:
        if isinstance(msg, m.AuthenticationOk):
            self._auth.on_ok()
            self.state = State.AUTH
            return None
        if isinstance(msg, m.ReadyForQuery):
            if self.state is not State.AUTH:
                raise ProtocolError("ReadyForQuery before authentication completed")
            return self._ready(msg)
        if isinstance(msg, m.BackendKeyData):
            self.backend_pid, self.backend_key = msg.pid, msg.key
            return None
        if isinstance(msg, m.ErrorResponse):
            self.state = State.CLOSED  # the server closes the connection after a startup error
            self._pending.clear()
            return msg
        if isinstance(msg, m.NegotiateProtocolVersion):
            return None  # we ask for no protocol extensions, so any minor version will do
        if self.state is State.AUTH:
            raise ProtocolError(f"unexpected {type(msg).__name__} after AuthenticationOk")
        # "Message Flow": answer the request; anything queued behind the start-up (a first
        # query) would be read by the server as the answer to an unpredicted request.
        self._out.extend(self._auth.on_request(msg, committed=len(self._pending) > 1))
        return None


_RESULTS = (
    m.RowDescription, m.DataRow, m.CommandComplete, m.EmptyQueryResponse, m.ParseComplete,
    m.BindComplete, m.CloseComplete, m.NoData, m.PortalSuspended, m.ParameterDescription,
    m.CopyData, m.CopyDone,
)  # fmt: skip
# Results that change no state while BUSY (not the COPY ones): passed through at once.
_PLAIN_RESULTS = frozenset(_RESULTS) - {m.CopyData, m.CopyDone}
