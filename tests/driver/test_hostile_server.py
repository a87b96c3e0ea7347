"""The driver trusts no server: a fake Postgres on loopback that breaks the protocol on purpose
(issue 18). Each misbehaviour must surface as a typed ``driver.Error`` and, where the stream can
no longer be trusted, break the connection rather than shift later results."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

import driver
from driver.auth.scram import MAX_ITERATIONS
from driver.errors import DataError, ProtocolError
from tests.driver.fakes import (
    AUTH_OK,
    backend_key,
    command_complete,
    data_row,
    msg,
    ready,
    row_description,
)

Reply = Callable[[int], bytes]  # the reply to the n-th Sync or Query (0-based)


def _rows_reply(*rows: bytes, oid: int = 23) -> bytes:
    """What Postgres answers a first fetch (Parse/Describe/Bind/Execute/Sync) with."""
    return (
        msg(b"1")  # ParseComplete
        + msg(b"t", struct.pack("!H", 0))  # ParameterDescription: no parameters
        + row_description(("x", oid))
        + msg(b"2")  # BindComplete
        + b"".join(rows)
        + command_complete(f"SELECT {len(rows)}")
        + ready()
    )


@asynccontextmanager
async def fake_postgres(reply: Reply) -> AsyncIterator[int]:
    """A trust-auth server on 127.0.0.1 answering each Sync / Query with ``reply(n)``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            await reader.readexactly(length - 4)  # the StartupMessage
            writer.write(AUTH_OK + backend_key() + ready())
            n = 0
            while True:
                tag = await reader.readexactly(1)
                (length,) = struct.unpack("!I", await reader.readexactly(4))
                await reader.readexactly(length - 4)
                if tag == b"X":
                    break
                if tag in (b"S", b"Q"):
                    writer.write(reply(n))
                    n += 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _connect(port: int) -> driver.Connection:
    return await driver.connect(
        host="127.0.0.1", port=port, user="u", database="d", sslmode="disable", timeout=5
    )


@pytest.mark.parametrize("length", [-5, -2, -(2**31)])
async def test_negative_field_length_other_than_null_is_a_protocol_error(length: int) -> None:
    bad = msg(b"D", struct.pack("!Hi", 1, length))
    async with fake_postgres(lambda n: _rows_reply(bad)) as port:
        conn = await _connect(port)
        with pytest.raises(ProtocolError, match="only -1"):
            await conn.fetch("select x")
        with pytest.raises(driver.Error):  # broken for good, not silently reused
            await conn.fetch("select x")
        await conn.close()


async def test_null_is_still_minus_one() -> None:
    async with fake_postgres(lambda n: _rows_reply(data_row(None), data_row(b"7"))) as port:
        conn = await _connect(port)
        assert [r[0] for r in await conn.fetch("select x")] == [None, 7]
        await conn.close()


async def test_stray_ready_for_query_never_shifts_results() -> None:
    def reply(n: int) -> bytes:
        out = _rows_reply(data_row(str(n).encode()))
        return out + ready() if n == 0 else out  # one ReadyForQuery too many after the first

    async with fake_postgres(reply) as port:
        conn = await _connect(port)
        assert await conn.fetchval("select x") == 0
        with pytest.raises(ProtocolError, match="ReadyForQuery"):
            await conn.fetchval("select x")
        with pytest.raises(driver.Error):
            await conn.fetchval("select x")
        await conn.close()


async def test_message_out_of_order_is_a_protocol_error() -> None:
    copy_data = msg(b"d", b"1\n")  # CopyData where a result was due
    reply = (
        msg(b"1") + msg(b"t", struct.pack("!H", 0)) + row_description(("x", 23)) + msg(b"2")
        + copy_data + command_complete("SELECT 0") + ready()
    )  # fmt: skip
    async with fake_postgres(lambda n: reply) as port:
        conn = await _connect(port)
        with pytest.raises(ProtocolError, match="unexpected CopyData"):
            await conn.fetch("select x")
        await conn.close()


@pytest.mark.parametrize(
    ("oid", "value"),
    [(16, b"maybe"), (23, b"x"), (1700, b"1.2.3"), (1082, b"not a date"), (1007, b"{1,")],
)
async def test_undecodable_value_is_a_data_error(oid: int, value: bytes) -> None:
    async with fake_postgres(lambda n: _rows_reply(data_row(value), oid=oid)) as port:
        conn = await _connect(port)
        with pytest.raises(DataError, match="cannot decode"):
            await conn.fetch("select x")
        # the value was at fault, not the stream: the connection goes on
        assert not conn.is_closed()
        await conn.close()


@asynccontextmanager
async def scram_server(iterations: int) -> AsyncIterator[int]:
    """Asks for SCRAM-SHA-256 with ``iterations``, then waits for the proof forever."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            await reader.readexactly(length - 4)
            writer.write(msg(b"R", struct.pack("!I", 10) + b"SCRAM-SHA-256\0\0"))
            assert await reader.readexactly(1) == b"p"
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            nonce = body.split(b"r=", 1)[1]
            first = b"r=" + nonce + b"server,s=c2FsdHNhbHQ=,i=" + str(iterations).encode()
            writer.write(msg(b"R", struct.pack("!I", 11) + first))
            await writer.drain()
            await reader.read()  # until the client goes away
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_scram_iterations_over_the_cap_are_refused_at_once() -> None:
    async with scram_server(2_000_000_000) as port:
        start = time.monotonic()
        with pytest.raises(ProtocolError, match="SCRAM iterations"):
            await driver.connect(host="127.0.0.1", port=port, user="u", password="pw",
                                 database="d", sslmode="disable", timeout=5)  # fmt: skip
        assert time.monotonic() - start < 2


async def test_connect_timeout_holds_during_a_long_pbkdf2() -> None:
    # under the cap, but seconds of PBKDF2: it runs off the loop, so the deadline holds
    async with scram_server(MAX_ITERATIONS // 4) as port:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await driver.connect(host="127.0.0.1", port=port, user="u", password="pw",
                                 database="d", sslmode="disable", timeout=1)  # fmt: skip
        elapsed = time.monotonic() - start
    assert elapsed < 1.8, elapsed
