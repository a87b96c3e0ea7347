"""The wire vocabulary ("Message Formats"): backend messages decoded from their frames, and
the frontend encoders and backend classes re-exported, so ``messages as m`` names them all."""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from struct import error as StructError

from ..errors import ProtocolError
from .backend import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationOther,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    BackendMessage,
    BindComplete,
    CloseComplete,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    EmptyQueryResponse,
    ErrorResponse,
    Field,
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    ParseComplete,
    PortalSuspended,
    ReadyForQuery,
    RowDescription,
)
from .frontend import (
    CANCEL_REQUEST_CODE,
    COPY_DONE,
    PROTOCOL_VERSION,
    SSL_REQUEST,
    SSL_REQUEST_CODE,
    SYNC,
    TERMINATE,
    bind,
    bind_execute,
    bind_execute_frame,
    bind_execute_sync,
    bind_executor,
    cancel_request,
    close,
    copy_data,
    copy_fail,
    describe,
    execute,
    parse,
    password_message,
    query,
    sasl_initial_response,
    sasl_response,
    startup_message,
)

__all__ = [
    "CANCEL_REQUEST_CODE",
    "COPY_DONE",
    "PROTOCOL_VERSION",
    "SSL_REQUEST",
    "SSL_REQUEST_CODE",
    "SYNC",
    "TERMINATE",
    "AuthenticationCleartextPassword",
    "AuthenticationMD5Password",
    "AuthenticationOk",
    "AuthenticationOther",
    "AuthenticationSASL",
    "AuthenticationSASLContinue",
    "AuthenticationSASLFinal",
    "BackendKeyData",
    "BackendMessage",
    "BindComplete",
    "CloseComplete",
    "CommandComplete",
    "CopyData",
    "CopyDone",
    "CopyInResponse",
    "CopyOutResponse",
    "DataRow",
    "EmptyQueryResponse",
    "ErrorResponse",
    "Field",
    "NegotiateProtocolVersion",
    "NoData",
    "NoticeResponse",
    "NotificationResponse",
    "ParameterDescription",
    "ParameterStatus",
    "ParseComplete",
    "PortalSuspended",
    "ReadyForQuery",
    "RowDescription",
    "bind",
    "bind_execute",
    "bind_execute_frame",
    "bind_execute_sync",
    "bind_executor",
    "cancel_request",
    "close",
    "copy_data",
    "copy_fail",
    "describe",
    "execute",
    "parse",
    "parse_message",
    "password_message",
    "query",
    "sasl_initial_response",
    "sasl_response",
    "startup_message",
]

_I = Struct("!I")
_i = Struct("!i")
_H = Struct("!H")
_ii = Struct("!ii")
_iih = Struct("!IhIhih")
_Parser = Callable[[bytes], BackendMessage]

# ReadyForQuery is immutable and has three values: one instance each, made once.
_READY = {b"I": ReadyForQuery("I"), b"T": ReadyForQuery("T"), b"E": ReadyForQuery("E")}


def _cstrings(body: bytes) -> list[str]:
    if not body.endswith(b"\0"):
        raise ProtocolError("unterminated string in message")
    return [s.decode() for s in body[:-1].split(b"\0")]


def _fields(body: bytes) -> dict[str, str]:
    if not body.endswith(b"\0"):
        raise ProtocolError("unterminated ErrorResponse/NoticeResponse")
    out: dict[str, str] = {}
    for item in body[:-1].split(b"\0"):
        if item:
            out[chr(item[0])] = item[1:].decode(errors="replace")
    return out


def _data_row(body: bytes) -> DataRow:
    n = _H.unpack_from(body)[0]
    values: list[bytes | None] = []
    append = values.append
    pos = 2
    unpack = _i.unpack_from
    for _ in range(n):
        size = unpack(body, pos)[0]
        pos += 4
        if size == -1:
            append(None)
        elif size < 0:
            raise ProtocolError(f"DataRow value length {size}: only -1 (NULL) is negative")
        else:
            end = pos + size
            if end > len(body):
                raise ProtocolError("DataRow value runs past the end of the message")
            append(body[pos:end])
            pos = end
    if pos != len(body):
        raise ProtocolError("DataRow has trailing bytes")
    return DataRow(tuple(values))


def _row_description(body: bytes) -> RowDescription:
    n = _H.unpack_from(body)[0]
    pos = 2
    fields = []
    for _ in range(n):
        end = body.index(b"\0", pos)
        name = body[pos:end].decode()
        t, c, o, s, m, f = _iih.unpack_from(body, end + 1)
        fields.append(Field(name, t, c, o, s, m, f))
        pos = end + 19
    if pos != len(body):
        raise ProtocolError("RowDescription has trailing bytes")
    return RowDescription(tuple(fields))


def _auth(body: bytes) -> BackendMessage:
    code = _I.unpack_from(body)[0]
    rest = body[4:]
    if code == 0:
        return AuthenticationOk()
    if code == 3:
        return AuthenticationCleartextPassword()
    if code == 5:
        if len(rest) != 4:
            raise ProtocolError("MD5 salt must be 4 bytes")
        return AuthenticationMD5Password(rest)
    if code == 10:
        return AuthenticationSASL(tuple(m for m in _cstrings(rest) if m))
    if code == 11:
        return AuthenticationSASLContinue(rest)
    if code == 12:
        return AuthenticationSASLFinal(rest)
    return AuthenticationOther(code)


def _copy_response(cls: type[CopyInResponse] | type[CopyOutResponse]) -> _Parser:
    def parse(body: bytes) -> BackendMessage:
        fmt = body[0]
        n = _H.unpack_from(body, 1)[0]
        cols = tuple(_H.unpack_from(body, 3 + 2 * i)[0] for i in range(n))
        if 3 + 2 * n != len(body):
            raise ProtocolError("CopyResponse has a wrong length")
        return cls(fmt, cols)

    return parse


def _singleton(msg: BackendMessage) -> _Parser:
    def parse(body: bytes) -> BackendMessage:
        if body:
            raise ProtocolError(f"{type(msg).__name__} should have no body")
        return msg

    return parse


def _ready(body: bytes) -> BackendMessage:
    ready = _READY.get(body)
    if ready is None:
        raise ProtocolError(f"bad ReadyForQuery status {body!r}")
    return ready


def _command_complete(body: bytes) -> BackendMessage:
    if body[-1:] != b"\0":
        raise ProtocolError("unterminated string in message")
    return CommandComplete(body[: body.index(b"\0")].decode())


def _parameter_status(body: bytes) -> BackendMessage:
    name, value = _cstrings(body)
    return ParameterStatus(name, value)


def _backend_key_data(body: bytes) -> BackendMessage:
    if len(body) != 8:
        raise ProtocolError("BackendKeyData must be 8 bytes")
    pid, key = _ii.unpack(body)
    return BackendKeyData(pid, key)


def _parameter_description(body: bytes) -> BackendMessage:
    n = _H.unpack_from(body)[0]
    if len(body) != 2 + 4 * n:
        raise ProtocolError("ParameterDescription has a wrong length")
    return ParameterDescription(tuple(_I.unpack_from(body, 2 + 4 * i)[0] for i in range(n)))


def _notification(body: bytes) -> BackendMessage:
    pid = _I.unpack_from(body)[0]
    channel, payload = _cstrings(body[4:])
    return NotificationResponse(pid, channel, payload)


def _negotiate(body: bytes) -> BackendMessage:
    minor = _I.unpack_from(body)[0]
    return NegotiateProtocolVersion(minor, tuple(_cstrings(body[8:])) if body[8:] else ())


# One parser per backend message type byte ("Message Formats").
_PARSERS: dict[bytes, _Parser] = {
    b"D": _data_row, b"T": _row_description, b"C": _command_complete, b"Z": _ready,
    b"1": _singleton(ParseComplete()), b"2": _singleton(BindComplete()),
    b"3": _singleton(CloseComplete()), b"n": _singleton(NoData()),
    b"s": _singleton(PortalSuspended()), b"I": _singleton(EmptyQueryResponse()),
    b"c": _singleton(CopyDone()), b"E": lambda body: ErrorResponse(_fields(body)),
    b"N": lambda body: NoticeResponse(_fields(body)), b"R": _auth, b"S": _parameter_status,
    b"K": _backend_key_data, b"t": _parameter_description, b"d": CopyData,
    b"G": _copy_response(CopyInResponse), b"H": _copy_response(CopyOutResponse),
    b"A": _notification, b"v": _negotiate,
}  # fmt: skip


def parse_message(tag: bytes, body: bytes) -> BackendMessage:
    """Decode one framed backend message.

    Raises:
        ProtocolError: unknown tag or a body that does not match its format.
    """
    parser = _PARSERS.get(tag)
    if parser is None:
        raise ProtocolError(f"unknown backend message type {tag!r}")
    try:
        return parser(body)
    except ProtocolError:
        raise
    except (StructError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed {tag!r} message: {exc}") from exc
