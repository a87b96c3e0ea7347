"""The wire vocabulary ("Message Formats" in the docs): frontend encoders, backend messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from struct import Struct
from struct import error as StructError

from ..errors import ProtocolError

PROTOCOL_VERSION = 196608  # 3.0
SSL_REQUEST_CODE = 80877103
CANCEL_REQUEST_CODE = 80877102

_I = Struct("!I")
_i = Struct("!i")
_h = Struct("!h")
_H = Struct("!H")
_ii = Struct("!ii")
_iih = Struct("!IhIhih")

# ---- frontend: one encoder per message, each returns the exact bytes ----------------------


def _msg(tag: bytes, body: bytes) -> bytes:
    return tag + _I.pack(len(body) + 4) + body


def _cstr(s: str) -> bytes:
    b = s.encode()
    if b"\0" in b:
        raise ValueError("strings sent to the server cannot contain NUL characters")
    return b + b"\0"


def startup_message(params: dict[str, str]) -> bytes:
    body = _I.pack(PROTOCOL_VERSION) + b"".join(_cstr(k) + _cstr(v) for k, v in params.items())
    body += b"\0"
    return _I.pack(len(body) + 4) + body


def ssl_request() -> bytes:
    return _ii.pack(8, SSL_REQUEST_CODE)


def cancel_request(pid: int, key: int) -> bytes:
    return _I.pack(16) + _I.pack(CANCEL_REQUEST_CODE) + _i.pack(pid) + _i.pack(key)


def password_message(password: bytes) -> bytes:
    return _msg(b"p", password + b"\0")


def sasl_initial_response(mechanism: str, data: bytes) -> bytes:
    return _msg(b"p", _cstr(mechanism) + _i.pack(len(data)) + data)


def sasl_response(data: bytes) -> bytes:
    return _msg(b"p", data)


def query(sql: str) -> bytes:
    return _msg(b"Q", _cstr(sql))


def parse(name: str, sql: str, param_oids: Sequence[int] = ()) -> bytes:
    body = _cstr(name) + _cstr(sql) + _h.pack(len(param_oids))
    body += b"".join(_I.pack(o) for o in param_oids)
    return _msg(b"P", body)


@lru_cache(maxsize=512)
def _bind_head(portal: str, statement: str, n_values: int) -> bytes:
    """Portal, statement, "all text" parameter formats and the value count: the same bytes
    for every execution of a cached statement, so they are encoded once."""
    return _cstr(portal) + _cstr(statement) + b"\0\0" + _h.pack(n_values)


_NULL = b"\xff\xff\xff\xff"
_TEXT_RESULTS = b"\0\0"  # no result format codes: every column in text


def bind(
    portal: str,
    statement: str,
    values: Sequence[bytes | None],
    result_formats: Sequence[int] = (),
) -> bytes:
    """Bind with text-format parameters (format code list left empty, meaning all text)."""
    parts = [b"B", b"", _bind_head(portal, statement, len(values))]
    size = 4 + len(parts[2])
    pack = _I.pack
    for v in values:
        if v is None:
            parts.append(_NULL)
            size += 4
        else:
            n = len(v)
            parts.append(pack(n))
            parts.append(v)
            size += 4 + n
    if result_formats:
        parts.append(_h.pack(len(result_formats)))
        parts.extend(_h.pack(f) for f in result_formats)
        size += 2 + 2 * len(result_formats)
    else:
        parts.append(_TEXT_RESULTS)
        size += 2
    parts[1] = pack(size)
    return b"".join(parts)


@lru_cache(maxsize=512)
def _bind_execute_parts(statement: str, n_values: int, max_rows: int) -> tuple[bytes, bytes]:
    """What bind_execute_sync() sends around the values, the same for every execution of a
    cached statement: Bind's head, then its result formats, Execute and Sync."""
    return _bind_head("", statement, n_values), _TEXT_RESULTS + execute("", max_rows) + SYNC


def bind_execute_sync(statement: str, values: Sequence[bytes | None], max_rows: int = 0) -> bytes:
    """Bind (unnamed portal, text parameters and results) + Execute + Sync, as one bytes: what
    each later execution of a prepared statement sends. Equal to
    ``bind("", statement, values) + execute("", max_rows) + SYNC``."""
    head, tail = _bind_execute_parts(statement, len(values), max_rows)
    parts = [b"B", b"", head]
    size = 6 + len(head)  # the length word, the head, the result format count
    pack = _I.pack
    for v in values:
        if v is None:
            parts.append(_NULL)
            size += 4
        else:
            n = len(v)
            parts.append(pack(n))
            parts.append(v)
            size += 4 + n
    parts[1] = pack(size)
    parts.append(tail)
    return b"".join(parts)


def describe(kind: bytes, name: str) -> bytes:
    return _msg(b"D", kind + _cstr(name))


@lru_cache(maxsize=64)
def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return _msg(b"E", _cstr(portal) + _I.pack(max_rows))


def close(kind: bytes, name: str) -> bytes:
    return _msg(b"C", kind + _cstr(name))


SYNC = b"S\0\0\0\4"
FLUSH = b"H\0\0\0\4"
TERMINATE = b"X\0\0\0\4"
COPY_DONE = b"c\0\0\0\4"


def copy_data(data: bytes) -> bytes:
    return b"d" + _I.pack(len(data) + 4) + data


def copy_fail(reason: str) -> bytes:
    return _msg(b"f", _cstr(reason))


# ---- backend: one frozen dataclass per message ------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthenticationOk:
    pass


@dataclass(frozen=True, slots=True)
class AuthenticationCleartextPassword:
    pass


@dataclass(frozen=True, slots=True)
class AuthenticationMD5Password:
    salt: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationSASL:
    mechanisms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthenticationSASLContinue:
    data: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationSASLFinal:
    data: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationOther:
    """Kerberos, SCM, GSS, SSPI: methods this driver does not implement."""

    code: int


@dataclass(frozen=True, slots=True)
class BackendKeyData:
    pid: int
    key: int


@dataclass(frozen=True, slots=True)
class ParameterStatus:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ReadyForQuery:
    status: str  # "I" idle, "T" in a transaction block, "E" in a failed transaction block


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    table_oid: int
    column: int
    type_oid: int
    type_size: int
    type_modifier: int
    format: int


@dataclass(frozen=True, slots=True)
class RowDescription:
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class DataRow:
    values: tuple[bytes | None, ...]


@dataclass(frozen=True, slots=True)
class CommandComplete:
    tag: str


@dataclass(frozen=True, slots=True)
class EmptyQueryResponse:
    pass


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class NoticeResponse:
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class NotificationResponse:
    pid: int
    channel: str
    payload: str


@dataclass(frozen=True, slots=True)
class ParseComplete:
    pass


@dataclass(frozen=True, slots=True)
class BindComplete:
    pass


@dataclass(frozen=True, slots=True)
class CloseComplete:
    pass


@dataclass(frozen=True, slots=True)
class NoData:
    pass


@dataclass(frozen=True, slots=True)
class PortalSuspended:
    pass


@dataclass(frozen=True, slots=True)
class ParameterDescription:
    type_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CopyInResponse:
    format: int
    column_formats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CopyOutResponse:
    format: int
    column_formats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CopyData:
    data: bytes


@dataclass(frozen=True, slots=True)
class CopyDone:
    pass


@dataclass(frozen=True, slots=True)
class NegotiateProtocolVersion:
    newest_minor: int
    unsupported: tuple[str, ...]


BackendMessage = (
    AuthenticationOk | AuthenticationCleartextPassword | AuthenticationMD5Password
    | AuthenticationSASL | AuthenticationSASLContinue | AuthenticationSASLFinal
    | AuthenticationOther | BackendKeyData | ParameterStatus | ReadyForQuery | RowDescription
    | DataRow | CommandComplete | EmptyQueryResponse | ErrorResponse | NoticeResponse
    | NotificationResponse | ParseComplete | BindComplete | CloseComplete | NoData
    | PortalSuspended | ParameterDescription | CopyInResponse | CopyOutResponse | CopyData
    | CopyDone | NegotiateProtocolVersion
)  # fmt: skip

_SINGLETONS: dict[bytes, BackendMessage] = {
    b"1": ParseComplete(), b"2": BindComplete(), b"3": CloseComplete(), b"n": NoData(),
    b"s": PortalSuspended(), b"I": EmptyQueryResponse(), b"c": CopyDone(),
}  # fmt: skip


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
        if size < 0:
            append(None)
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


def _copy_response(
    cls: type[CopyInResponse] | type[CopyOutResponse], body: bytes
) -> BackendMessage:
    fmt = body[0]
    n = _H.unpack_from(body, 1)[0]
    cols = tuple(_H.unpack_from(body, 3 + 2 * i)[0] for i in range(n))
    if 3 + 2 * n != len(body):
        raise ProtocolError("CopyResponse has a wrong length")
    return cls(fmt, cols)


def parse_message(tag: bytes, body: bytes) -> BackendMessage:
    """Decode one framed backend message.

    Raises:
        ProtocolError: unknown tag or a body that does not match its format.
    """
    try:
        if tag == b"D":
            return _data_row(body)
        single = _SINGLETONS.get(tag)
        if single is not None:
            if body:
                raise ProtocolError(f"message {tag!r} should have no body")
            return single
        if tag == b"Z":
            ready = _READY.get(body)
            if ready is None:
                raise ProtocolError(f"bad ReadyForQuery status {body!r}")
            return ready
        if tag == b"C":
            if body[-1:] != b"\0":
                raise ProtocolError("unterminated string in message")
            return CommandComplete(body[: body.index(b"\0")].decode())
        if tag == b"T":
            return _row_description(body)
        if tag == b"E":
            return ErrorResponse(_fields(body))
        if tag == b"N":
            return NoticeResponse(_fields(body))
        if tag == b"R":
            return _auth(body)
        if tag == b"S":
            name, value = _cstrings(body)
            return ParameterStatus(name, value)
        if tag == b"K":
            if len(body) != 8:
                raise ProtocolError("BackendKeyData must be 8 bytes")
            pid, key = _ii.unpack(body)
            return BackendKeyData(pid, key)
        if tag == b"t":
            n = _H.unpack_from(body)[0]
            if len(body) != 2 + 4 * n:
                raise ProtocolError("ParameterDescription has a wrong length")
            return ParameterDescription(tuple(_I.unpack_from(body, 2 + 4 * i)[0] for i in range(n)))
        if tag == b"d":
            return CopyData(body)
        if tag == b"G":
            return _copy_response(CopyInResponse, body)
        if tag == b"H":
            return _copy_response(CopyOutResponse, body)
        if tag == b"A":
            pid = _I.unpack_from(body)[0]
            channel, payload = _cstrings(body[4:])
            return NotificationResponse(pid, channel, payload)
        if tag == b"v":
            minor = _I.unpack_from(body)[0]
            return NegotiateProtocolVersion(minor, tuple(_cstrings(body[8:])) if body[8:] else ())
    except ProtocolError:
        raise
    except (StructError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed {tag!r} message: {exc}") from exc
    raise ProtocolError(f"unknown backend message type {tag!r}")
