"""A deliberately small Postgres client (startup, auth, simple query) over any driver Stream.

Tests of the layers under the driver's connection (TLS negotiation, channel binding, the
authentication policy) use it to reach a real server without depending on the connection
code, and it shows in ~100 lines how those layers are meant to be wired: ``negotiate()``
first, then an ``AuthGuard`` consulted before every answer to an authentication request.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Protocol

from scramp import ScramClient

from driver.auth.policy import AuthGuard


class _Stream(Protocol):
    async def read(self, max_bytes: int) -> bytes: ...
    async def write(self, data: bytes) -> None: ...


class ServerError(Exception):
    """An ErrorResponse, with its fields by code (b"C" sqlstate, b"M" message, ...)."""

    def __init__(self, fields: dict[bytes, str]) -> None:
        super().__init__(f"{fields.get(b'C')}: {fields.get(b'M')}")
        self.fields = fields
        self.sqlstate = fields.get(b"C", "")


def message(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


def startup_message(user: str, database: str) -> bytes:
    params = f"user\0{user}\0database\0{database}\0\0".encode()
    body = struct.pack("!i", 196608) + params
    return struct.pack("!i", len(body) + 4) + body


class MiniClient:
    """One conversation on ``stream``; ``await login(...)`` then ``await query(sql)``."""

    def __init__(self, stream: _Stream) -> None:
        self.stream = stream
        self._buf = bytearray()
        self.mechanism: str | None = None
        self.parameters: dict[str, str] = {}

    async def _message(self) -> tuple[bytes, bytes]:
        while True:
            if len(self._buf) >= 5:
                length = struct.unpack_from("!i", self._buf, 1)[0]
                if len(self._buf) >= length + 1:
                    tag, body = bytes(self._buf[:1]), bytes(self._buf[5:length + 1])
                    del self._buf[:length + 1]
                    if tag == b"E":
                        raise ServerError(_fields(body))
                    return tag, body
            data = await self.stream.read(65536)
            if not data:
                raise EOFError("server closed the connection")
            self._buf += data

    async def login(self, user: str, password: str | None, guard: AuthGuard, *,
                    database: str = "testdb", first: bytes = b"",
                    scram_client: type | None = None) -> None:
        """Startup and authentication up to ReadyForQuery, checked by ``guard``.

        ``first`` is sent in the same write as the startup message (a pipelined query).
        ``scram_client``: a class with ``driver.auth.scram.SCRAMClient``'s interface to use
        instead of scramp.
        """
        await self.stream.write(startup_message(user, database) + first)
        scram: ScramClient | None = None
        ours = None
        pw = password or ""
        while True:
            tag, body = await self._message()
            if tag == b"Z":
                return
            if tag == b"S":
                k, v, _ = body.split(b"\0", 2)
                self.parameters[k.decode()] = v.decode()
            if tag != b"R":
                continue
            code = struct.unpack_from("!i", body)[0]
            if code == 0:
                guard.on_ok()
                continue
            guard.on_request(code)
            if code == 3:
                await self.stream.write(message(b"p", pw.encode() + b"\0"))
            elif code == 5:
                inner = hashlib.md5((pw + user).encode()).hexdigest().encode()
                outer = b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode()
                await self.stream.write(message(b"p", outer + b"\0"))
            elif code == 10:
                mechs = [m.decode() for m in body[4:].split(b"\0") if m]
                mech, cb = guard.choose_mechanism(mechs)
                self.mechanism = mech
                if scram_client is not None:
                    ours = scram_client(mech, user, pw, cb)
                    data = ours.first_message()
                else:
                    scram = ScramClient([mech], user, pw, channel_binding=(
                        ("tls-server-end-point", cb) if cb is not None else None))
                    data = scram.get_client_first().encode()
                await self.stream.write(message(
                    b"p", mech.encode() + b"\0" + struct.pack("!i", len(data)) + data))
            elif code == 11 and ours is not None:
                await self.stream.write(message(b"p", ours.final_message(body[4:])))
            elif code == 12 and ours is not None:
                ours.verify(body[4:])
            elif code == 11 and scram is not None:
                scram.set_server_first(body[4:].decode())
                await self.stream.write(message(b"p", scram.get_client_final().encode()))
            elif code == 12 and scram is not None:
                scram.set_server_final(body[4:].decode())  # verifies the server signature
            else:
                raise RuntimeError(f"authentication request {code} not supported here")

    async def query(self, sql: str) -> list[list[str | None]]:
        """Simple query; the rows of the last result, as text."""
        await self.stream.write(message(b"Q", sql.encode() + b"\0"))
        return await self.rows()

    async def rows(self) -> list[list[str | None]]:
        """Read one simple-query answer up to ReadyForQuery (for pipelined queries)."""
        rows: list[list[str | None]] = []
        while True:
            tag, body = await self._message()
            if tag == b"T":
                rows = []
            elif tag == b"D":
                rows.append(_row(body))
            elif tag == b"Z":
                return rows


def _row(body: bytes) -> list[str | None]:
    (n,) = struct.unpack_from("!h", body)
    pos, out = 2, []
    for _ in range(n):
        (size,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if size < 0:
            out.append(None)
            continue
        out.append(body[pos:pos + size].decode())
        pos += size
    return out


def _fields(body: bytes) -> dict[bytes, str]:
    return {p[:1]: p[1:].decode("utf-8", "replace") for p in body.split(b"\0") if p}
