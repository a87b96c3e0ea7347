"""Frontend messages ("Message Formats"): one encoder per message, returning its exact bytes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from struct import Struct

PROTOCOL_VERSION = 196608  # 3.0
SSL_REQUEST_CODE = 80877103
CANCEL_REQUEST_CODE = 80877102

_I = Struct("!I")
_i = Struct("!i")
_h = Struct("!h")
_ii = Struct("!ii")


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


# Int32 length 8, Int32 request code: sent before the StartupMessage to ask for TLS.
SSL_REQUEST = _ii.pack(8, SSL_REQUEST_CODE)


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


def _values(values: Sequence[bytes | None]) -> bytes:
    """Bind's parameter values, each length-prefixed (-1 for NULL), as one bytes (a third
    faster than appending length words and values to a list one by one)."""
    pack = _I.pack
    return b"".join([_NULL if v is None else pack(len(v)) + v for v in values])


def bind(
    portal: str,
    statement: str,
    values: Sequence[bytes | None],
    result_formats: Sequence[int] = (),
) -> bytes:
    """Bind with text-format parameters (format code list left empty, meaning all text)."""
    head, body = _bind_head(portal, statement, len(values)), _values(values)
    if result_formats:
        formats = _h.pack(len(result_formats)) + b"".join(_h.pack(f) for f in result_formats)
    else:
        formats = _TEXT_RESULTS
    return b"".join((b"B", _I.pack(4 + len(head) + len(body) + len(formats)), head, body, formats))


@lru_cache(maxsize=512)
def _bind_execute_parts(
    statement: str, n_values: int, max_rows: int, sync: bool = True
) -> tuple[bytes, bytes]:
    """What bind_execute_sync() sends around the values, the same for every execution of a
    cached statement: Bind's head, then its result formats, Execute and Sync (if ``sync``)."""
    tail = _TEXT_RESULTS + execute("", max_rows) + (SYNC if sync else b"")
    return _bind_head("", statement, n_values), tail


def bind_execute_sync(statement: str, values: Sequence[bytes | None], max_rows: int = 0) -> bytes:
    """Bind (unnamed portal, text parameters and results) + Execute + Sync, as one bytes: what
    each later execution of a prepared statement sends. Equal to
    ``bind("", statement, values) + execute("", max_rows) + SYNC``."""
    return _bind_execute(statement, values, max_rows, True)


def bind_execute(statement: str, values: Sequence[bytes | None]) -> bytes:
    """Bind + Execute without Sync: one row of executemany(). Equal to
    ``bind("", statement, values) + execute("", 0)``."""
    return _bind_execute(statement, values, 0, False)


def bind_execute_frame(statement: str, n_values: int) -> tuple[int, bytes, bytes]:
    """``(fixed, head, tail)``: a bind_execute() message of ``n_values`` values is b"B", the
    length word ``fixed`` + the values' bytes, ``head``, the values, ``tail`` (for the C
    form of bind_executor(), driver/_speedups.c bind_row)."""
    head, tail = _bind_execute_parts(statement, n_values, 0, False)
    return 6 + len(head), head, tail


def bind_executor(statement: str, n_values: int) -> Callable[[Sequence[bytes | None]], bytes]:
    """``bind_execute(statement, values)`` for rows of ``n_values`` values, the fixed parts
    looked up once: what executemany() calls per row (a fifth faster)."""
    fixed, head, tail = bind_execute_frame(statement, n_values)
    pack = _I.pack

    def bind_execute_row(values: Sequence[bytes | None]) -> bytes:
        if len(values) != n_values:
            return bind_execute(statement, values)
        body = b"".join([_NULL if v is None else pack(len(v)) + v for v in values])
        return b"".join((b"B", pack(fixed + len(body)), head, body, tail))

    return bind_execute_row


def _bind_execute(
    statement: str, values: Sequence[bytes | None], max_rows: int, sync: bool
) -> bytes:
    head, tail = _bind_execute_parts(statement, len(values), max_rows, sync)
    body = _values(values)
    # the length word, the head, the values, the result format count (in the tail)
    return b"".join((b"B", _I.pack(6 + len(head) + len(body)), head, body, tail))


def describe(kind: bytes, name: str) -> bytes:
    return _msg(b"D", kind + _cstr(name))


@lru_cache(maxsize=64)
def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return _msg(b"E", _cstr(portal) + _I.pack(max_rows))


def close(kind: bytes, name: str) -> bytes:
    return _msg(b"C", kind + _cstr(name))


SYNC = b"S\0\0\0\4"
TERMINATE = b"X\0\0\0\4"
COPY_DONE = b"c\0\0\0\4"


def copy_data(data: bytes) -> bytes:
    return b"d" + _I.pack(len(data) + 4) + data


def copy_fail(reason: str) -> bytes:
    return _msg(b"f", _cstr(reason))
