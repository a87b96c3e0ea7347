"""This project's driver connects through the real proxy process over ws:// and wss://."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import driver
from tests.conftest import ProxyProcess
from tests.proxy.conftest import ProxyProc
from tools.pgcluster import Cluster


@pytest.fixture(scope="module")
def tls_proxy(pg: Cluster) -> Iterator[ProxyProc]:
    """The proxy serving wss:// itself, with the cluster's certificate (covers 127.0.0.1)."""
    assert pg.certs is not None
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"(127\.0\.0\.1|localhost):{pg.port}",
            "TLS_CERT": str(pg.certs.server_cert),
            "TLS_KEY": str(pg.certs.server_key),
        }
    )
    yield p
    p.stop()


@pytest.mark.parametrize(
    ("role", "sslmode"),
    # The driver sends cleartext/MD5 passwords only inside TLS to Postgres: require it there.
    [
        ("trust_user", "disable"),
        ("scram_user", "disable"),
        ("clear_user", "require"),
        ("md5_user", "require"),
    ],
)
async def test_driver_over_ws(pg: Cluster, proxy: ProxyProcess, role: str, sslmode: str) -> None:
    conn = await driver.connect(
        pg.dsn(role), ws_proxy=proxy.ws_proxy, use_secure_websocket=False, sslmode=sslmode
    )
    try:
        assert await conn.fetchval("select current_user") == role
        assert await conn.fetchval("select $1::int + 1", 41) == 42
    finally:
        await conn.close()


async def test_driver_over_ws_with_postgres_tls_inside(pg: Cluster, proxy: ProxyProcess) -> None:
    """End-to-end TLS to Postgres, carried opaquely by the relay (tls_user is hostssl-only)."""
    assert pg.certs is not None
    conn = await driver.connect(
        pg.dsn("tls_user"),
        ws_proxy=proxy.ws_proxy,
        use_secure_websocket=False,
        sslmode="verify-full",
        sslrootcert=str(pg.certs.ca_cert),
    )
    try:
        assert await conn.fetchval("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
    finally:
        await conn.close()


async def test_driver_over_wss(
    pg: Cluster, tls_proxy: ProxyProc, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pg.certs is not None
    # The driver verifies wss:// with the default trust store; point it at the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(pg.certs.ca_cert))
    conn = await driver.connect(
        pg.dsn("scram_user"),
        ws_proxy=f"localhost:{tls_proxy.port}/v2",
        use_secure_websocket=True,
        sslmode="disable",
    )
    try:
        assert await conn.fetchval("select 'over wss'") == "over wss"
    finally:
        await conn.close()
    line = tls_proxy.wait_for(r"conn \d+ close .*ws->tcp=\d+ tcp->ws=\d+")
    assert f"127.0.0.1:{pg.port}" in line
    assert "(wss)" in tls_proxy.log


async def test_plain_ws_client_is_refused_by_the_wss_proxy(
    pg: Cluster, tls_proxy: ProxyProc
) -> None:
    with pytest.raises(driver.TransportError):
        await driver.connect(
            pg.dsn("trust_user"),
            ws_proxy=f"127.0.0.1:{tls_proxy.port}/v2",
            use_secure_websocket=False,
            sslmode="disable",
            timeout=10,
        )


async def test_driver_over_wss_with_a_given_ssl_context(pg: Cluster, tls_proxy: ProxyProc) -> None:
    """ws_ssl_context verifies the proxy's certificate; an untrusted proxy is refused."""
    import ssl

    assert pg.certs is not None
    trusting = ssl.create_default_context(cafile=str(pg.certs.ca_cert))
    conn = await driver.connect(
        pg.dsn("scram_user"), ws_proxy=f"localhost:{tls_proxy.port}/v2",
        use_secure_websocket=True, sslmode="disable", ws_ssl_context=trusting,
    )  # fmt: skip
    try:
        assert await conn.fetchval("select 'verified proxy'") == "verified proxy"
    finally:
        await conn.close()
    with pytest.raises(driver.TransportError, match=r"(?i)certificate"):
        await driver.connect(
            pg.dsn("scram_user"), ws_proxy=f"localhost:{tls_proxy.port}/v2",
            use_secure_websocket=True, sslmode="disable", timeout=10,
            ws_ssl_context=ssl.create_default_context(),  # the system store: test CA unknown
        )  # fmt: skip
