"""SSLRequest + TLS against the private PostgreSQL 15 cluster, over TCP and over the WebSocket
proxy: every sslmode, certificate and host name checks, TLS 1.2/1.3, channel binding, and the
round trips TLS costs (a P-256 key share first means no HelloRetryRequest)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from driver.auth.policy import AuthPolicy, AuthPolicyError
from driver.errors import TransportError
from driver.tlsconfig import TLSSettings
from driver.tlsconnect import Negotiated, negotiate, tls_attempts
from driver.transport.base import Stream
from driver.transport.tcp import open_tcp
from driver.transport.websocket import open_websocket
from tools.pgcluster import make_certs
from tools.pgwire import MiniClient, ServerError
from tools.relay import CountingRelay

Opener = Callable[[str, int], Awaitable[Stream]]
SSL_STAT = "select ssl::text, version from pg_stat_ssl where pid = pg_backend_pid()"


@pytest.fixture(params=["tcp", "ws"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def opener(transport: str, request: pytest.FixtureRequest) -> Opener:
    if transport == "tcp":
        return open_tcp
    proxy = request.getfixturevalue("proxy")

    async def open_ws(host: str, port: int) -> Stream:
        return await open_websocket(f"ws://{proxy.ws_proxy}?address={host}:{port}")

    return open_ws


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the server's certificate."""
    return make_certs(tmp_path_factory.mktemp("other-ca")).ca_cert


async def session(opener: Opener, pg: object, settings: TLSSettings, *, host: str = "127.0.0.1",
                  role: str = "scram_user", policy: AuthPolicy | None = None
                  ) -> tuple[Negotiated, MiniClient]:
    neg = await negotiate(await opener(host, pg.port), settings, host)  # type: ignore[attr-defined]
    policy = policy or AuthPolicy.parse(allow_unencrypted_password=True)
    client = MiniClient(neg.stream)
    await client.login(role, pg.password(role),  # type: ignore[attr-defined]
                       policy.guard(encrypted=neg.encrypted, channel_binding=neg.channel_binding))
    return neg, client


@pytest.fixture
async def closing() -> AsyncIterator[list[Stream]]:
    streams: list[Stream] = []
    yield streams
    for s in streams:
        await s.close()


@pytest.mark.parametrize(("sslmode", "encrypted"), [
    ("disable", False), ("allow", False), ("prefer", True), ("require", True),
    ("verify-ca", True), ("verify-full", True),
])
async def test_each_sslmode_reaches_the_server_as_libpq_would(
        opener: Opener, pg: object, sslmode: str, encrypted: bool,
        closing: list[Stream]) -> None:
    ca = str(pg.certs.ca_cert)  # type: ignore[attr-defined]
    settings = TLSSettings(sslmode=sslmode, sslrootcert=ca if "verify" in sslmode else None)
    neg, client = await session(opener, pg, settings)
    closing.append(neg.stream)
    assert neg.encrypted is encrypted
    assert neg.verified is ("verify" in sslmode)  # the server is authenticated by TLS
    assert await client.query(SSL_STAT) == [
        ["true", "TLSv1.3"] if encrypted else ["false", None]]
    # SCRAM-SHA-256-PLUS whenever TLS is up (PostgreSQL offers it, the policy prefers it)
    assert client.mechanism == ("SCRAM-SHA-256-PLUS" if encrypted else "SCRAM-SHA-256")


def test_attempt_order_follows_libpq() -> None:
    assert tls_attempts("allow") == (False, True)
    assert tls_attempts("prefer") == (True, False)
    assert tls_attempts("disable") == (False,)
    assert tls_attempts("verify-full") == (True,)


async def test_allow_tries_clear_then_tls_on_fresh_connections(
        opener: Opener, pg: object, closing: list[Stream]) -> None:
    # connect() retries with the second attempt when the first fails (libpq: a server that
    # only has hostssl lines for the role); here both attempts are run to show what each does.
    settings = TLSSettings(sslmode="allow")
    seen = []
    for use_tls in tls_attempts("allow"):
        neg = await negotiate(await opener("127.0.0.1", pg.port),  # type: ignore[attr-defined]
                              settings, "127.0.0.1", use_tls=use_tls)
        closing.append(neg.stream)
        client = MiniClient(neg.stream)
        await client.login("scram_user", pg.password("scram_user"),  # type: ignore[attr-defined]
                           AuthPolicy.parse().guard(encrypted=neg.encrypted,
                                                    channel_binding=neg.channel_binding))
        seen.append((await client.query(SSL_STAT))[0][0])
    assert seen == ["false", "true"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_verify_full_accepts_the_names_in_the_certificate(
        opener: Opener, pg: object, host: str, closing: list[Stream]) -> None:
    settings = TLSSettings(sslmode="verify-full", root_certs=pg.certs.ca_pem)  # type: ignore[attr-defined]
    neg, client = await session(opener, pg, settings, host=host)
    closing.append(neg.stream)
    assert await client.query("select 1") == [["1"]]


async def test_verify_full_refuses_a_host_name_not_in_the_certificate(
        opener: Opener, pg: object) -> None:
    # "vm" would be a name that resolves to the same server; the check is on the DATABASE
    # host, whatever stream (TCP or proxy) carries the bytes.
    settings = TLSSettings(sslmode="verify-full", sslrootcert=str(pg.certs.ca_cert))  # type: ignore[attr-defined]
    raw = await opener("127.0.0.1", pg.port)  # type: ignore[attr-defined]
    with pytest.raises(TransportError, match=r"does not match host name 'db\.example'"):
        await negotiate(raw, settings, "db.example")
    # verify-ca does not check the name, so the same server passes
    raw = await opener("127.0.0.1", pg.port)  # type: ignore[attr-defined]
    neg = await negotiate(raw, TLSSettings(sslmode="verify-ca",
                                           sslrootcert=str(pg.certs.ca_cert)),  # type: ignore[attr-defined]
                          "db.example")
    assert neg.encrypted and neg.verified
    await neg.stream.close()


@pytest.mark.parametrize("sslmode", ["verify-ca", "verify-full", "require"])
async def test_an_untrusted_ca_is_refused(opener: Opener, pg: object, other_ca: Path,
                                          sslmode: str) -> None:
    # require + a named root certificate verifies the chain, as libpq does
    settings = TLSSettings(sslmode=sslmode, sslrootcert=str(other_ca))
    with pytest.raises(TransportError, match="could not be verified"):
        await negotiate(await opener("127.0.0.1", pg.port), settings, "127.0.0.1")  # type: ignore[attr-defined]


async def test_the_system_trust_store_is_the_default_and_lacks_the_test_ca(
        opener: Opener, pg: object) -> None:
    with pytest.raises(TransportError, match="could not be verified"):
        await negotiate(await opener("localhost", pg.port),  # type: ignore[attr-defined]
                        TLSSettings(sslmode="verify-full"), "localhost")


async def test_tls12_works_and_binds_the_channel(opener: Opener, pg: object,
                                                 closing: list[Stream]) -> None:
    settings = TLSSettings(sslmode="require", ssl_max_protocol_version="TLSv1.2")
    policy = AuthPolicy.parse(channel_binding="require")
    neg, client = await session(opener, pg, settings, policy=policy)
    closing.append(neg.stream)
    assert neg.tls_version == "TLSv1.2"
    assert await client.query(SSL_STAT) == [["true", "TLSv1.2"]]
    assert client.mechanism == "SCRAM-SHA-256-PLUS"


async def test_client_certificate_is_presented_and_verified_by_the_server(
        opener: Opener, pg: object, closing: list[Stream]) -> None:
    certs = pg.certs  # type: ignore[attr-defined]
    settings = TLSSettings(sslmode="verify-full", sslrootcert=str(certs.ca_cert),
                           sslcert=str(certs.client_cert), sslkey=str(certs.client_key))
    neg, client = await session(opener, pg, settings)
    closing.append(neg.stream)
    rows = await client.query("select client_dn from pg_stat_ssl where pid = pg_backend_pid()")
    assert rows == [["/CN=cert_user"]]


async def test_the_server_checks_our_channel_binding_data(opener: Opener, pg: object) -> None:
    neg = await negotiate(await opener("127.0.0.1", pg.port),  # type: ignore[attr-defined]
                          TLSSettings(sslmode="require"), "127.0.0.1")
    assert neg.channel_binding is not None and len(neg.channel_binding) == 32  # SHA-256
    guard = AuthPolicy.parse(channel_binding="require").guard(
        encrypted=True, channel_binding=b"\0" * 32)
    with pytest.raises(ServerError, match="channel binding"):
        await MiniClient(neg.stream).login("scram_user", pg.password("scram_user"), guard)  # type: ignore[attr-defined]
    await neg.stream.close()


async def test_channel_binding_require_refuses_a_server_that_skips_scram(
        opener: Opener, pg: object) -> None:
    policy = AuthPolicy.parse(channel_binding="require")
    with pytest.raises(AuthPolicyError, match="without channel binding"):
        await session(opener, pg, TLSSettings(sslmode="require"), role="trust_user",
                      policy=policy)
    with pytest.raises(AuthPolicyError, match="TLS is not in use"):
        await session(opener, pg, TLSSettings(sslmode="disable"), policy=policy)


async def test_tls_costs_two_round_trips_and_no_hello_retry(pg: object) -> None:
    """SSLRequest/'S' + one TLS 1.3 flight each way; OpenSSL's default X25519 share costs one
    more (PostgreSQL 15 only takes prime256v1): the reason for the P-256-first group list."""
    counts = {}
    default_ctx = ssl.create_default_context()
    default_ctx.check_hostname, default_ctx.verify_mode = False, ssl.CERT_NONE
    for name, settings in [("ours", TLSSettings(sslmode="require")),
                           ("openssl-default", TLSSettings(sslmode="require",
                                                           ssl_context=default_ctx))]:
        async with CountingRelay("127.0.0.1", pg.port) as relay:  # type: ignore[attr-defined]
            neg = await negotiate(await open_tcp("127.0.0.1", relay.port), settings, "127.0.0.1")
            counts[name] = relay.round_trips
            await neg.stream.close()
    assert counts == {"ours": 2, "openssl-default": 3}


async def test_login_and_query_round_trips_over_tls_with_finished_riding_along(
        pg: object) -> None:
    """Unpipelined SCRAM-PLUS after TLS: 2 (TLS) + 3 (startup, SCRAM first, SCRAM final) + 1
    (query). The client's TLS Finished leaves in the same write as the startup message."""
    async with CountingRelay("127.0.0.1", pg.port) as relay:  # type: ignore[attr-defined]
        neg, client = await session(open_tcp, _at(pg, relay.port), TLSSettings(sslmode="require"))
        assert await client.query("select 42") == [["42"]]
        assert relay.round_trips == 6
        conn = relay.last()
        # up flights: SSLRequest, ClientHello, Finished+Startup, SCRAM first, final, query
        assert len(conn.up_flights()) == 6
        await neg.stream.close()


def _at(pg: object, port: int) -> object:
    class Via:
        def __init__(self) -> None:
            self.port = port

        def password(self, role: str) -> str | None:
            return pg.password(role)  # type: ignore[attr-defined, no-any-return]

    return Via()
