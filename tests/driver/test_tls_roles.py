"""Roles that exist only over TLS: a hostssl-only password role and certificate authentication."""

from __future__ import annotations

from typing import Any

import pytest

import driver
from tests.conftest import ProxyProcess
from tools.pgcluster import Cluster


def _via(proxy: ProxyProcess, transport: str) -> dict[str, Any]:
    if transport == "ws":
        return {"ws_proxy": proxy.ws_proxy, "use_secure_websocket": False}
    return {}


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_certificate_authentication(pg: Cluster, proxy: ProxyProcess, transport: str) -> None:
    assert pg.certs is not None
    conn = await driver.connect(
        pg.dsn("cert_user"), sslmode="verify-full", sslrootcert=str(pg.certs.ca_cert),
        sslcert=str(pg.certs.client_cert), sslkey=str(pg.certs.client_key),
        **_via(proxy, transport),
    )  # fmt: skip
    try:
        assert await conn.fetchval("select current_user") == "cert_user"
        dn = await conn.fetchval("select client_dn from pg_stat_ssl where pid = pg_backend_pid()")
        assert dn == "/CN=cert_user"
    finally:
        await conn.close()


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_certificate_role_without_a_certificate_is_refused(
    pg: Cluster, proxy: ProxyProcess, transport: str
) -> None:
    assert pg.certs is not None
    with pytest.raises(driver.PostgresError) as info:
        await driver.connect(
            pg.dsn("cert_user"), sslmode="verify-full", sslrootcert=str(pg.certs.ca_cert),
            **_via(proxy, transport),
        )  # fmt: skip
    assert str(info.value.sqlstate).startswith("28")


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_hostssl_only_role_needs_tls(
    pg: Cluster, proxy: ProxyProcess, transport: str
) -> None:
    with pytest.raises(driver.PostgresError) as info:
        await driver.connect(
            pg.dsn("tls_user"), sslmode="disable", allow_unencrypted_password=True,
            **_via(proxy, transport),
        )  # fmt: skip
    assert str(info.value.sqlstate).startswith("28")
    assert pg.certs is not None
    conn = await driver.connect(
        pg.dsn("tls_user"), sslmode="verify-full", sslrootcert=str(pg.certs.ca_cert),
        **_via(proxy, transport),
    )  # fmt: skip
    try:
        assert await conn.fetchval("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
    finally:
        await conn.close()
