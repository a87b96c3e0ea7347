"""TLSStream over a plain loopback stream against an asyncio TLS server: data of every size
crossing record boundaries, one inner write per TLS flight, EOF and failure handling."""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import pytest

from driver.errors import TransportError
from driver.transport.base import Stream
from driver.transport.tcp import TCPStream, open_tcp
from driver.transport.tls import TLSStream
from tools.pgcluster import CertBundle, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return make_certs(tmp_path_factory.mktemp("tls-stream"))


@dataclass
class Recording:
    """A Stream that forwards to TCP and remembers each write (one write = one flight)."""

    inner: TCPStream
    writes: list[bytes] = field(default_factory=list)
    closed: bool = False
    closed_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, max_bytes: int) -> bytes:
        return await self.inner.read(max_bytes)

    async def write(self, data: bytes) -> None:
        self.writes.append(data)
        await self.inner.write(data)

    async def close(self) -> None:
        self.closed = True
        self.closed_event.set()
        await self.inner.close()


def as_stream(raw: Recording) -> Stream:
    """Recording has no abort() on purpose: TLSStream copes with such inner streams (the
    last test), though the Stream protocol declares one."""
    return cast(Stream, raw)


def record_types(flight: bytes) -> list[int]:
    """TLS record content types in one write (20 CCS, 21 alert, 22 handshake, 23 data)."""
    types, pos = [], 0
    while pos < len(flight):
        types.append(flight[pos])
        pos += 5 + struct.unpack_from("!H", flight, pos + 3)[0]
    return types


@dataclass
class Server:
    port: int
    received: bytearray = field(default_factory=bytearray)
    eof_seen: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def echo(certs: CertBundle) -> AsyncIterator[Server]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    state = Server(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                state.received += data
                if data.startswith(b"CLOSE"):
                    break
                writer.write(data)
                await writer.drain()
            else:
                state.eof_seen.set()
        except (ssl.SSLError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    state.port = server.sockets[0].getsockname()[1]
    yield state
    server.close()
    await server.wait_closed()


def client_ctx(certs: CertBundle, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


async def connect(
    port: int, ctx: ssl.SSLContext, host: str = "localhost", **kw: bool
) -> tuple[TLSStream, Recording]:
    raw = Recording(await open_tcp("127.0.0.1", port))
    return await TLSStream.wrap(as_stream(raw), ctx, server_hostname=host, **kw), raw


async def read_exactly(stream: TLSStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.read(1 << 20)
        assert chunk, "unexpected EOF"
        buf += chunk
    return bytes(buf)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
@pytest.mark.parametrize("size", [1, 5, 16383, 16384, 16385, 65536, 100_000, 262_144])
async def test_data_of_any_size_round_trips(
    echo: Server, certs: CertBundle, version: ssl.TLSVersion, size: int
) -> None:
    stream, _ = await connect(echo.port, client_ctx(certs, version))
    payload = bytes(i * 7 % 251 for i in range(size))
    await stream.write(payload)
    assert await read_exactly(stream, size) == payload
    assert stream.ssl_object.version() == version.name.replace("_", ".")
    await stream.close()


async def test_tls13_finished_leaves_with_the_first_write(echo: Server, certs: CertBundle) -> None:
    stream, raw = await connect(echo.port, client_ctx(certs))
    assert [record_types(w) for w in raw.writes] == [[22]]  # ClientHello only
    await stream.write(b"startup")
    assert len(raw.writes) == 2  # one flight: (CCS), Finished and the data
    assert record_types(raw.writes[1]) in ([20, 23, 23], [23, 23])
    assert await read_exactly(stream, 7) == b"startup"
    await stream.close()


async def test_flush_finished_sends_it_at_once(echo: Server, certs: CertBundle) -> None:
    stream, raw = await connect(echo.port, client_ctx(certs), flush_finished=True)
    assert len(raw.writes) == 2
    await stream.write(b"x")
    assert record_types(raw.writes[2]) == [23]
    await stream.close()


async def test_a_read_first_flushes_the_pending_finished(echo: Server, certs: CertBundle) -> None:
    stream, raw = await connect(echo.port, client_ctx(certs))
    reader = asyncio.create_task(stream.read(100))
    await stream.write(b"ping")  # the echo answers only after it has seen our Finished
    assert await reader == b"ping"
    await stream.close()
    assert raw.closed


async def test_close_sends_close_notify_and_closes_the_inner_stream(
    echo: Server, certs: CertBundle
) -> None:
    stream, raw = await connect(echo.port, client_ctx(certs))
    await stream.write(b"bye")
    assert await read_exactly(stream, 3) == b"bye"
    await stream.close()
    await asyncio.wait_for(echo.eof_seen.wait(), 5)  # the server saw a clean TLS EOF
    assert raw.closed and record_types(raw.writes[-1]) == [23]  # the encrypted alert
    with pytest.raises(TransportError):
        await stream.write(b"more")


async def test_server_closing_is_end_of_stream(echo: Server, certs: CertBundle) -> None:
    stream, _ = await connect(echo.port, client_ctx(certs))
    await stream.write(b"CLOSE")
    assert await stream.read(100) == b""
    assert await stream.read(100) == b""
    await stream.close()


async def test_host_name_mismatch_is_a_transport_error_and_closes(
    echo: Server, certs: CertBundle
) -> None:
    raw = Recording(await open_tcp("127.0.0.1", echo.port))
    with pytest.raises(TransportError, match=r"does not match host name 'db\.example'"):
        await TLSStream.wrap(as_stream(raw), client_ctx(certs), server_hostname="db.example")
    assert raw.closed


async def test_untrusted_server_is_refused(
    echo: Server, certs: CertBundle, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = make_certs(tmp_path_factory.mktemp("other"))
    with pytest.raises(TransportError, match="could not be verified"):
        await connect(echo.port, client_ctx(other))


async def test_server_hanging_up_mid_handshake() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ctx = ssl.create_default_context()
    raw = Recording(await open_tcp("127.0.0.1", port))
    with pytest.raises(TransportError, match="closed the connection during the TLS handshake"):
        await TLSStream.wrap(as_stream(raw), ctx, server_hostname="localhost")
    assert raw.closed
    server.close()
    await server.wait_closed()


async def test_garbage_instead_of_tls_is_a_transport_error() -> None:
    async def plaintext(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(plaintext, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    raw = Recording(await open_tcp("127.0.0.1", port))
    with pytest.raises(TransportError, match="TLS handshake failed"):
        await TLSStream.wrap(
            as_stream(raw), ssl.create_default_context(), server_hostname="localhost"
        )
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(("host", "sni"), [("localhost", "localhost"), ("127.0.0.1", None)])
async def test_sni_is_the_given_host_name_and_never_an_address(
    certs: CertBundle, host: str, sni: str | None
) -> None:
    seen: list[str | None] = []
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    ctx.sni_callback = lambda _obj, name, _ctx: seen.append(name)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    stream, _ = await connect(server.sockets[0].getsockname()[1], client_ctx(certs), host)
    await stream.close()
    server.close()
    await server.wait_closed()
    assert seen == [sni]


async def test_a_runtime_without_tls_is_a_transport_error(
    monkeypatch: pytest.MonkeyPatch, echo: Server, certs: CertBundle
) -> None:
    def stub(*args: object, **kwargs: object) -> None:  # what Pyodide's stub ssl does
        raise NotImplementedError("SSL is not supported in Pyodide")

    ctx = client_ctx(certs)
    monkeypatch.setattr(ssl.SSLContext, "wrap_bio", stub)
    raw = Recording(await open_tcp("127.0.0.1", echo.port))
    with pytest.raises(TransportError, match="TLS is not available in this Python runtime"):
        await TLSStream.wrap(as_stream(raw), ctx, server_hostname="localhost")
    await raw.close()


async def test_abort_drops_the_connection_without_close_notify(
    echo: Server, certs: CertBundle
) -> None:
    stream, raw = await connect(echo.port, client_ctx(certs))
    await stream.write(b"hi")
    assert await read_exactly(stream, 2) == b"hi"
    writes = len(raw.writes)
    stream.abort()
    assert len(raw.writes) == writes  # nothing more was sent: no close_notify
    with pytest.raises(TransportError):
        await stream.write(b"more")


async def test_abort_closes_an_inner_stream_without_abort(echo: Server, certs: CertBundle) -> None:
    raw = Recording(await open_tcp("127.0.0.1", echo.port))
    stream = await TLSStream.wrap(as_stream(raw), client_ctx(certs), server_hostname="localhost")
    assert not hasattr(raw, "abort")
    stream.abort()  # the inner close runs as a task
    await asyncio.wait_for(raw.closed_event.wait(), 5)
