"""A scripted fake Postgres server for the sans-I/O core: backend bytes out, frontend bytes in."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from driver.protocol import NEED_DATA, PGProtocol
from driver.protocol.core import Event


def msg(tag: bytes, body: bytes = b"") -> bytes:
    return tag + struct.pack("!I", len(body) + 4) + body


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def auth(code: int, extra: bytes = b"") -> bytes:
    return msg(b"R", struct.pack("!I", code) + extra)


AUTH_OK = auth(0)


def ready(status: str = "I") -> bytes:
    return msg(b"Z", status.encode())


def param_status(name: str, value: str) -> bytes:
    return msg(b"S", cstr(name) + cstr(value))


def backend_key(pid: int = 42, key: int = 7) -> bytes:
    return msg(b"K", struct.pack("!ii", pid, key))


def row_description(*cols: tuple[str, int]) -> bytes:
    body = struct.pack("!H", len(cols))
    for name, oid in cols:
        body += cstr(name) + struct.pack("!IhIhih", 0, 0, oid, -1, -1, 0)
    return msg(b"T", body)


def data_row(*values: bytes | None) -> bytes:
    body = struct.pack("!H", len(values))
    for v in values:
        body += struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v
    return msg(b"D", body)


def command_complete(tag: str) -> bytes:
    return msg(b"C", cstr(tag))


def error(code: str = "42P01", message: str = "boom", severity: str = "ERROR") -> bytes:
    fields = {"S": severity, "V": severity, "C": code, "M": message}
    return msg(b"E", b"".join(k.encode() + cstr(v) for k, v in fields.items()) + b"\0")


def notice(message: str) -> bytes:
    return msg(b"N", b"SNOTICE\0VNOTICE\0C00000\0M" + cstr(message) + b"\0")


STARTUP_DONE = AUTH_OK + param_status("server_version", "15.0") + backend_key() + ready()


def split_frontend(data: bytes) -> list[tuple[bytes, bytes]]:
    """Cut what the client sent into (tag, body); the untagged startup packet gets tag b""."""
    out = []
    pos = 0
    if data[:4] and data[4:8] == struct.pack("!I", 196608):
        (length,) = struct.unpack_from("!I", data)
        out.append((b"", data[4:length]))
        pos = length
    while pos < len(data):
        tag = data[pos : pos + 1]
        (length,) = struct.unpack_from("!I", data, pos + 1)
        out.append((tag, data[pos + 5 : pos + 1 + length]))
        pos += 1 + length
    return out


def events(proto: PGProtocol, data: bytes = b"") -> list[Event]:
    """Feed data and drain every event until NEED_DATA."""
    if data:
        proto.receive_data(data)
    out: list[Event] = []
    while (ev := proto.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def started(
    user: str = "u", password: str | None = None, settings: dict[str, str] | None = None
) -> PGProtocol:
    """A core that has completed a trust startup."""
    proto = PGProtocol(user, "db", password, settings)
    proto.data_to_send()
    events(proto, STARTUP_DONE)
    return proto


def tags(data: bytes) -> Sequence[bytes]:
    return [t for t, _ in split_frontend(data)]
