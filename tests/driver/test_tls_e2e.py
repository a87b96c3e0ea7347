"""TLS through driver.connect(), over TCP and through the WebSocket proxy: every sslmode, the
checks that must refuse, the proof that the proxy only sees ciphertext, and what TLS costs in
round trips (counted by a relay, never timed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import driver
from driver.auth.policy import AuthPolicyError
from driver.errors import TransportError
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster, make_certs
from tools.relay import CountingRelay

SSL_STAT = "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("e2e-other-ca")).ca_cert


async def connect(args: dict[str, Any]) -> driver.Connection:
    return await driver.connect(**args)


@pytest.fixture
async def closing() -> AsyncIterator[list[driver.Connection]]:
    conns: list[driver.Connection] = []
    yield conns
    for c in conns:
        await c.close()


@pytest.mark.parametrize(("sslmode", "tls"), [
    ("disable", False), ("allow", False), ("prefer", True), ("require", True),
    ("verify-ca", True), ("verify-full", True),
])
async def test_each_sslmode(connect_args: ConnectArgs, transport: str, pg: Cluster,
                            sslmode: str, tls: bool, closing: list[driver.Connection]) -> None:
    conn = await connect(connect_args("scram_user", transport, sslmode=sslmode,
                                      sslrootcert=str(pg.certs.ca_cert)))  # type: ignore[union-attr]
    closing.append(conn)
    row = await conn.fetchrow(SSL_STAT)
    assert row is not None and (row["ssl"], row["version"]) == (
        (True, "TLSv1.3") if tls else (False, None))


@pytest.mark.parametrize("role", ["clear_user", "md5_user", "scram_user", "trust_user"])
async def test_every_auth_method_over_tls_with_the_default_policy(
        connect_args: ConnectArgs, transport: str, role: str,
        closing: list[driver.Connection]) -> None:
    conn = await connect(connect_args(role, transport, sslmode="require",
                                      allow_unencrypted_password=False))
    closing.append(conn)
    assert await conn.fetchval("select current_user") == role


async def test_verify_full_fails_on_a_wrong_host_name(
        connect_args: ConnectArgs, transport: str, pg: Cluster, open_proxy: str) -> None:
    # "127.1" is 127.0.0.1 to the resolver, but a host NAME to the certificate check, and
    # the certificate only has localhost, 127.0.0.1 and ::1.
    args = connect_args("scram_user", transport, sslmode="verify-full", host="127.1",
                        sslrootcert=str(pg.certs.ca_cert))  # type: ignore[union-attr]
    if transport == "ws":
        args["ws_proxy"] = open_proxy
    with pytest.raises(TransportError, match=r"does not match host name '127\.1'"):
        await connect(args)


@pytest.mark.parametrize("sslmode", ["verify-ca", "verify-full"])
async def test_verification_fails_on_an_untrusted_ca(
        connect_args: ConnectArgs, transport: str, other_ca: Path, sslmode: str) -> None:
    with pytest.raises(TransportError, match="could not be verified"):
        await connect(connect_args("scram_user", transport, sslmode=sslmode,
                                   sslrootcert=str(other_ca)))
    with pytest.raises(TransportError, match="could not be verified"):  # system trust store
        await connect(connect_args("scram_user", transport, sslmode=sslmode))


async def test_channel_binding_required_and_used(
        connect_args: ConnectArgs, transport: str, closing: list[driver.Connection]) -> None:
    conn = await connect(connect_args("scram_user", transport, sslmode="require",
                                      channel_binding="require"))
    closing.append(conn)
    assert await conn.fetchval("select 1") == 1
    with pytest.raises(AuthPolicyError, match="without channel binding"):
        await connect(connect_args("trust_user", transport, sslmode="require",
                                   channel_binding="require"))
    with pytest.raises(AuthPolicyError, match="TLS is not in use"):
        await connect(connect_args("scram_user", transport, sslmode="disable",
                                   channel_binding="require"))


@pytest.mark.parametrize("role", ["clear_user", "md5_user"])
async def test_password_refused_in_clear_by_default(connect_args: ConnectArgs, transport: str,
                                                    role: str) -> None:
    """Through a WebSocket proxy without TLS, refused by default; over direct TCP sent, as
    libpq and asyncpg send it (issue 12)."""
    args = connect_args(role, transport, sslmode="disable", allow_unencrypted_password=False)
    if transport == "tcp":
        conn = await connect(args)
        assert await conn.fetchval("select current_user") == role
        await conn.close()
        return
    with pytest.raises(AuthPolicyError, match="allow_unencrypted_password=True"):
        await connect(args)


async def test_require_auth_refusal(connect_args: ConnectArgs, transport: str) -> None:
    with pytest.raises(AuthPolicyError, match="server requested a cleartext password"):
        await connect(connect_args("clear_user", transport, sslmode="require",
                                   require_auth="scram-sha-256"))


@pytest.mark.parametrize("sslmode", ["disable", "require"])
async def test_the_proxy_sees_no_plaintext_when_postgres_tls_is_on(
        pg: Cluster, open_proxy: str, sslmode: str) -> None:
    """A relay between the proxy and Postgres sees exactly what the proxy forwards. With TLS
    the marker never appears there; without it, it does (so the check can fail)."""
    marker = "marker-7f3a9c-not-for-the-proxy"
    async with CountingRelay("127.0.0.1", pg.port) as relay:
        conn = await driver.connect(pg.dsn("scram_user"), port=relay.port, sslmode=sslmode,
                                    ws_proxy=open_proxy, use_secure_websocket=False)
        try:
            assert await conn.fetchval(f"select '{marker}' || $1::text", "!") == marker + "!"
        finally:
            await conn.close()
        seen = bytes(relay.last().up) + bytes(relay.last().down)
    assert (marker.encode() in seen) is (sslmode == "disable")
    assert (b"scram_user" in seen) is (sslmode == "disable")


@pytest.mark.parametrize("role", ["trust_user", "scram_user"])
async def test_tls_adds_exactly_two_round_trips(pg: Cluster, proxy: Any, transport: str,
                                                role: str) -> None:
    """SSLRequest + one TLS 1.3 flight each way (no HelloRetryRequest; the client's Finished
    rides with the startup message), on top of whatever connect + auth + first query cost."""
    counts = {}
    for sslmode in ("disable", "require"):
        target = proxy.port if transport == "ws" else pg.port
        async with CountingRelay("127.0.0.1", target) as relay:
            kw: dict[str, Any] = {"sslmode": sslmode, "allow_unencrypted_password": True}
            if transport == "ws":
                kw.update(ws_proxy=f"127.0.0.1:{relay.port}/v2", use_secure_websocket=False)
            else:
                kw.update(port=relay.port)
            conn = await driver.connect(pg.dsn(role), **kw)
            assert await conn.fetchval("select 1") == 1
            counts[sslmode] = relay.round_trips
            if transport == "ws":  # and every flight was one WebSocket message
                assert all(m == 1 for _, m in relay.last().up_flights()[1:])
            await conn.close()
    assert counts["require"] - counts["disable"] == 2, counts


@pytest.mark.parametrize("size", [1, 100, 16_000, 16_384, 16_500, 65_536, 100_000, 262_144])
async def test_statements_of_any_size_cross_tls_records_and_ws_messages(
        connect_args: ConnectArgs, transport: str, size: int,
        closing: list[driver.Connection]) -> None:
    conn = await connect(connect_args("scram_user", transport, sslmode="require"))
    closing.append(conn)
    filler = "x" * max(0, size - len("select length('')"))
    assert await conn.fetchval(f"select length('{filler}')") == len(filler)
    assert await conn.fetchval("select repeat('y', $1::int)", size) == "y" * size


async def _silent_server(answer: bytes) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)
        writer.write(answer)
        await writer.drain()
        await reader.read()  # then say nothing more until the client gives up
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("answer", [b"", b"S"])
async def test_a_server_that_stops_answering_fails_at_the_deadline(answer: bytes) -> None:
    """connect's one deadline covers the SSLRequest answer and the TLS handshake."""
    server = await _silent_server(answer)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError, match=r"timed out after 0\.3 s"):
            await driver.connect(host="127.0.0.1", port=port, user="u", database="d",
                                 sslmode="require", timeout=0.3)
    finally:
        server.close()
        await server.wait_closed()


async def test_sni_through_the_proxy_names_the_database_not_the_proxy(
        open_proxy: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A stand-in Postgres behind the proxy answers 'S' and records the TLS server name."""
    import ssl

    from driver.tlsconfig import TLSSettings
    from driver.tlsconnect import negotiate
    from driver.transport.websocket import open_websocket

    certs = make_certs(tmp_path_factory.mktemp("sni"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    names: list[str | None] = []
    ctx.sni_callback = lambda _obj, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]

    async def fake_postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)
        writer.write(b"S")
        await writer.drain()
        await writer.start_tls(ctx)
        await reader.read()
        writer.close()

    server = await asyncio.start_server(fake_postgres, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        raw = await open_websocket(f"ws://{open_proxy}?address=localhost:{port}")
        neg = await negotiate(raw, TLSSettings(sslmode="verify-full", sslrootcert=str(
            certs.ca_cert)), "localhost")
        assert neg.encrypted
        await neg.stream.close()
    finally:
        server.close()
        await server.wait_closed()
    assert names == ["localhost"]  # the proxy is 127.0.0.1 and sends no name of its own


async def test_a_pipelined_password_waits_for_tls(pg: Cluster, open_proxy: str) -> None:
    """pipeline_connect="password" sends the password with the startup message only when the
    policy would accept the server's request anyway: never in clear by default."""
    async with CountingRelay("127.0.0.1", pg.port) as relay:
        with pytest.raises(AuthPolicyError, match="allow_unencrypted_password"):
            await driver.connect(pg.dsn("clear_user"), port=relay.port, sslmode="disable",
                                 pipeline_connect="password", ws_proxy=open_proxy,
                                 use_secure_websocket=False)
        assert b"clear pass" not in bytes(relay.last().up)
        conn = await driver.connect(pg.dsn("clear_user"), port=relay.port, sslmode="require",
                                    pipeline_connect="password", ws_proxy=open_proxy,
                                    use_secure_websocket=False)
        try:
            assert await conn.fetchval("select current_user") == "clear_user"
            # SSLRequest, TLS, then startup + password in one flight, then the query
            assert relay.last().round_trips == 4
        finally:
            await conn.close()


async def test_root_certs_text_and_an_ssl_context_through_connect(
        connect_args: ConnectArgs, transport: str, pg: Cluster, other_ca: Path,
        closing: list[driver.Connection]) -> None:
    import ssl

    assert pg.certs is not None
    conn = await connect(connect_args("scram_user", transport, sslmode="verify-full",
                                      root_certs=pg.certs.ca_pem))
    closing.append(conn)
    assert await conn.fetchval(SSL_STAT.replace(", version", "")) is True
    ctx = ssl.create_default_context(cafile=str(pg.certs.ca_cert))
    conn = await connect(connect_args("scram_user", transport, sslmode=None, ssl=ctx))
    closing.append(conn)  # asyncpg's ssl=<SSLContext>: used as given, TLS required
    assert await conn.fetchval(SSL_STAT.replace(", version", "")) is True
    with pytest.raises(TransportError, match="could not be verified"):
        await connect(connect_args("scram_user", transport, sslmode=None,
                                   ssl=ssl.create_default_context(cafile=str(other_ca))))


async def test_first_query_waits_for_the_servers_proof_when_only_auth_can_give_it(
        pg: Cluster) -> None:
    """connect(wait_ready=False) lets the first query ride the last authentication flight,
    except when channel binding is the only proof of the server (TLS not verified): then a
    man in the middle would get the query before SCRAM-PLUS unmasks him."""
    assert pg.certs is not None

    async def round_trips(sslmode: str, wait_ready: bool) -> int:
        async with CountingRelay("127.0.0.1", pg.port) as relay:
            conn = await driver.connect(
                pg.dsn("scram_user"), host="localhost", port=relay.port, sslmode=sslmode,
                sslrootcert=str(pg.certs.ca_cert) if sslmode == "verify-full" else None,  # type: ignore[union-attr]
                channel_binding="require", wait_ready=wait_ready)
            try:
                assert await conn.fetchval("select 1") == 1
                return relay.round_trips
            finally:
                await conn.close()

    unverified = await round_trips("require", True)
    assert await round_trips("require", False) == unverified  # no early query
    assert await round_trips("verify-full", False) == unverified - 1  # the certificate proved it
