"""TLS in front of other hops: wss:// to the proxy (alone and together with Postgres TLS), and
pgbouncer, which speaks TLS but not SCRAM-SHA-256-PLUS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import driver
from driver.auth.policy import AuthPolicyError
from driver.errors import TransportError
from tests.conftest import running_proxy
from tools.pgbouncer import Bouncer
from tools.pgcluster import Cluster
from tools.relay import CountingRelay

SSL_STAT = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def wss_proxy(pg: Cluster) -> Iterator[str]:
    """The proxy serving wss:// with a certificate from the test CA (not in the system store)."""
    assert pg.certs is not None
    with running_proxy(
        r"(127\.0\.0\.1|localhost|\[::1\]):[0-9]+",
        TLS_CERT=str(pg.certs.server_cert), TLS_KEY=str(pg.certs.server_key),
    ) as p:  # fmt: skip
        yield f"localhost:{p.port}/v2"


async def test_wss_is_verified_against_the_system_trust_store(pg: Cluster,
                                                               wss_proxy: str) -> None:
    with pytest.raises(TransportError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        await driver.connect(pg.dsn("scram_user"), sslmode="disable", ws_proxy=wss_proxy,
                             use_secure_websocket=True)


@pytest.mark.parametrize("sslmode", ["disable", "verify-full"])
async def test_wss_alone_and_with_postgres_tls_inside(
        pg: Cluster, wss_proxy: str, sslmode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both layers at once: TLS to the proxy outside, TLS to Postgres inside it. For the wss
    hop, the default trust store is pointed at the test CA (OpenSSL reads SSL_CERT_FILE when a
    context loads it) for this test only; Postgres gets its CA as sslrootcert."""
    assert pg.certs is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(pg.certs.ca_cert))
    port = int(wss_proxy.split(":")[1].split("/")[0])
    async with CountingRelay("127.0.0.1", port) as relay:
        via = wss_proxy.replace(str(port), str(relay.port))
        conn = await driver.connect(pg.dsn("scram_user"), host="localhost", sslmode=sslmode,
                                    sslrootcert=str(pg.certs.ca_cert), ws_proxy=via,
                                    use_secure_websocket=True)
        try:
            assert await conn.fetchval(SSL_STAT) is (sslmode == "verify-full")
            assert await conn.fetchval("select 'inside'") == "inside"
        finally:
            await conn.close()
        seen = bytes(relay.last().up) + bytes(relay.last().down)
    assert b"inside" not in seen and b"scram_user" not in seen  # wss hides it on this hop


async def test_pgbouncer_tls_without_plus_falls_back_to_scram(pgbouncer: Bouncer) -> None:
    conn = await driver.connect(pgbouncer.dsn("scram_user"), sslmode="require",
                                statement_cache_size=0)
    try:
        assert await conn.fetchval("select current_user") == "scram_user"
    finally:
        await conn.close()


async def test_pgbouncer_cannot_satisfy_channel_binding_require(pgbouncer: Bouncer) -> None:
    with pytest.raises(AuthPolicyError, match="does not offer SCRAM-SHA-256-PLUS"):
        await driver.connect(pgbouncer.dsn("scram_user"), sslmode="require",
                             channel_binding="require", statement_cache_size=0)
